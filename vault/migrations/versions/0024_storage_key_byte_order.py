"""storage keys in byte order: PostgreSQL indexes for fsck's key-ordered walk

`clientvault fsck` walks versions and thumbnails by storage key in byte order (the store's
listing order), which on PostgreSQL is `COLLATE "C"`. The unique indexes on `storage_key`
use the database's collation, so each page of the walk sorted the whole table: about 0.6 s
a page at a million versions, 2,000 pages. An index in the "C" collation makes each page a
short range scan. SQLite compares text bytewise already and needs nothing.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_versions_storage_key_bytes", "versions"),
    ("ix_thumbnails_storage_key_bytes", "thumbnails"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in _INDEXES:
        op.execute(f'CREATE INDEX {name} ON {table} (storage_key COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _ in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
