"""look-alike keys: a new name's look-alikes found by index, not by reading its folder

The check that a new name is no look-alike of a sibling (TR39 skeletons) read every name of
the folder, so each upload into a folder of n names cost n skeletons and n rows. Each folder
and document now keeps the digests of its name's two skeletons (`vault.lookalikes
.lookalike_keys`), indexed under its parent: the check reads only the names that share one.

Existing rows get theirs here, a thousand at a time. A later change to the skeletons (the
confusables data, or a Unicode version that normalises differently) needs a migration that
computes them again.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vault.lookalikes import lookalike_keys

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_KEYS = ("lookalike_key", "lookalike_folded_key")
_INDEXES = {
    "folders": ("client_id", "parent_ref"),
    "documents": ("folder_id",),
}


def upgrade() -> None:
    for table, parent in _INDEXES.items():
        for key in _KEYS:
            op.add_column(
                table, sa.Column(key, sa.String(length=32), nullable=False, server_default="")
            )
        _fill(table)
        op.create_index(f"ix_{table}_lookalike", table, [*parent, "lookalike_key"])
        op.create_index(f"ix_{table}_lookalike_folded", table, [*parent, "lookalike_folded_key"])


def _fill(name: str) -> None:
    bind = op.get_bind()
    table = sa.table(
        name,
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        *(sa.column(key, sa.String()) for key in _KEYS),
    )
    fill = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row"))
        .values(lookalike_key=sa.bindparam("own"), lookalike_folded_key=sa.bindparam("folded"))
    )
    after = None
    while True:
        page = sa.select(table.c.id, table.c.name).order_by(table.c.id).limit(_BATCH)
        if after is not None:
            page = page.where(table.c.id > after)
        rows = bind.execute(page).all()
        if not rows:
            return
        values = []
        for row_id, row_name in rows:
            own, folded = lookalike_keys(row_name)
            values.append({"row": row_id, "own": own, "folded": folded})
        bind.execute(fill, values)
        after = rows[-1][0]


def downgrade() -> None:
    for table in _INDEXES:
        op.drop_index(f"ix_{table}_lookalike_folded", table_name=table)
        op.drop_index(f"ix_{table}_lookalike", table_name=table)
        # Not through a batch: on SQLite that copies the table, which every table that
        # refers to it forbids. SQLite drops a column in place since 3.35.
        for key in reversed(_KEYS):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {key}")
