"""resumable uploads of any PATCH size: per-segment claims and staged segments

Revision ID: 0010
Revises: 0009

A part is now claimed segment by segment (`upload_parts.tags`, one keyed tag per 64 KiB
segment), so a PATCH that ends inside a part can claim, encrypt and keep the whole segments
it brought. Those sealed segments wait in `upload_staged` (ciphertext only, less than one
part per upload) until a later PATCH completes the part. Rows claimed before this revision
keep `tags` NULL and are checked by their whole-part fingerprint, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("upload_parts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tags", sa.LargeBinary(), nullable=True))
    op.create_table(
        "upload_staged",
        sa.Column("upload_id", sa.Uuid(), sa.ForeignKey("uploads.id"), nullable=False),
        sa.Column("first_segment", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "first_segment"),
    )


def downgrade() -> None:
    op.drop_table("upload_staged")
    with op.batch_alter_table("upload_parts", schema=None) as batch_op:
        batch_op.drop_column("tags")
