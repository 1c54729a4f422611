"""quarantine rows give up their copy of the wrapped data key once they no longer hold
their version (published: the version's row has it; deleted: nothing may have it), so that
shredding a version leaves no key that decrypts an earlier copy of its object

Erases the copies already there, and the finished resumable uploads of versions that no
longer exist (their rows kept a copy of the key until they expired).

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_uploads = sa.table("uploads", sa.column("id"), sa.column("state"), sa.column("version_id"))
_versions = sa.table("versions", sa.column("id"))
_quarantine = sa.table(
    "quarantine",
    sa.column("version_id"),
    sa.column("published_version"),
    sa.column("deleted_at"),
)
_held = sa.select(_quarantine.c.version_id).where(
    _quarantine.c.published_version.is_(None), _quarantine.c.deleted_at.is_(None)
)
# Finished uploads of versions that were shredded (or of held versions deleted) meanwhile.
_gone = sa.select(_uploads.c.id).where(
    _uploads.c.state == "complete",
    _uploads.c.version_id.not_in(sa.select(_versions.c.id)),
    _uploads.c.version_id.not_in(_held),
)


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column("kek_id", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("wrapped_dek", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.alter_column("header", existing_type=sa.LargeBinary(), nullable=True)
    op.execute(
        "UPDATE quarantine SET kek_id = NULL, wrapped_dek = NULL, header = NULL "
        "WHERE published_version IS NOT NULL OR deleted_at IS NOT NULL"
    )
    for table in ("upload_parts", "upload_staged"):
        rows = sa.table(table, sa.column("upload_id"))
        op.execute(sa.delete(rows).where(rows.c.upload_id.in_(_gone)))
    op.execute(sa.delete(_uploads).where(_uploads.c.id.in_(_gone)))


def downgrade() -> None:
    # The erased keys cannot come back: empty values satisfy the old constraints, and no row
    # with one is ever read again (it is published or deleted).
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE quarantine SET kek_id = '', wrapped_dek = :empty, header = :empty "
            "WHERE wrapped_dek IS NULL"
        ),
        {"empty": b""},
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column("kek_id", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("wrapped_dek", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("header", existing_type=sa.LargeBinary(), nullable=False)
