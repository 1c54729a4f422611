"""thumbnails: stored, encrypted thumbnails of versions, and who first saw each one

Revision ID: 0020
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
# 0019 is being written on another branch; re-chained onto it when both are merged.
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "thumbnails",
        sa.Column("version_id", sa.Uuid(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=True),
        sa.Column("object_size", sa.Integer(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=True),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=True),
        sa.Column("header", sa.LargeBinary(), nullable=True),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(length=255), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("version_id"),
        sa.UniqueConstraint("storage_key"),
    )
    with op.batch_alter_table("thumbnails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_thumbnails_kek_id"), ["kek_id"])
    op.create_table(
        "thumbnail_views",
        sa.Column("version_id", sa.Uuid(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("viewed_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("thumbnail_views")
    with op.batch_alter_table("thumbnails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thumbnails_kek_id"))
    op.drop_table("thumbnails")
