"""thumbnail jobs: the versions whose thumbnails the worker is still to draw

Revision ID: 0022
Revises: 0021

Versions stored before this revision that could have a thumbnail and have none recorded are
queued too, so listings come to show them without anyone opening each document first.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime
# As vault/thumbnail_render.py had them when this revision was written.
_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "application/pdf",
)


def upgrade() -> None:
    jobs = op.create_table(
        "thumbnail_jobs",
        sa.Column("version_id", sa.Uuid(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("due_at", _dt(), nullable=False),
        sa.Column("claim", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("version_id"),
    )
    with op.batch_alter_table("thumbnail_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_thumbnail_jobs_due_at"), ["due_at"])
    assert jobs is not None
    versions = sa.table(
        "versions",
        sa.column("id", sa.Uuid()),
        sa.column("content_type", sa.String()),
        sa.column("size", sa.BigInteger()),
    )
    thumbnails = sa.table("thumbnails", sa.column("version_id", sa.Uuid()))
    now = datetime.now(UTC)
    waiting = sa.select(
        versions.c.id,
        sa.literal(now, _dt()),
        sa.literal(0),
        sa.literal(now, _dt()),
    ).where(
        versions.c.content_type.in_(_MEDIA_TYPES),
        versions.c.size > 0,
        ~sa.exists().where(thumbnails.c.version_id == versions.c.id),
    )
    op.execute(
        jobs.insert().from_select(["version_id", "due_at", "attempts", "created_at"], waiting)
    )


def downgrade() -> None:
    with op.batch_alter_table("thumbnail_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thumbnail_jobs_due_at"))
    op.drop_table("thumbnail_jobs")
