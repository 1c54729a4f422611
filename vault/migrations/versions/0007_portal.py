"""the browser portal: shared resources, visits, delivery receipts, announcements

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", _dt(), nullable=True))
        batch_op.add_column(sa.Column("previous_seen_at", _dt(), nullable=True))
    op.create_table(
        "version_receipts",
        sa.Column("version_id", sa.Uuid(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("completed_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "user_id"),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("expires_at", _dt(), nullable=True),
        sa.Column("withdrawn_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_announcements_created_at"), ["created_at"])


def downgrade() -> None:
    op.drop_table("announcements")
    op.drop_table("version_receipts")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("previous_seen_at")
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("shared")
