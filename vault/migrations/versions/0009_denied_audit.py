"""refused requests: per-subject windows that rate-limit `access.denied` events

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "refusal_windows",
        sa.Column("key", sa.String(length=128), primary_key=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("window_started_at", _dt(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_refusal_windows_window_started_at", "refusal_windows", ["window_started_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_refusal_windows_window_started_at", table_name="refusal_windows")
    op.drop_table("refusal_windows")
