"""alerts: rules evaluated over the audit log, and their cursor (issue 12, item 4)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("seqs", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("raised_at", _dt(), nullable=False),
        sa.Column("emailed_at", _dt(), nullable=True),
    )
    op.create_index("ix_alerts_rule", "alerts", ["rule"])
    op.create_index("ix_alerts_subject", "alerts", ["subject"])
    op.create_index("ix_alerts_seq", "alerts", ["seq"])
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])
    op.create_index("ix_alerts_emailed_at", "alerts", ["emailed_at"])
    # Alerts start with the events that come after the upgrade: the past is not re-judged.
    op.execute(
        "INSERT INTO cursors (name, seq) SELECT 'alerts', seq FROM audit_head WHERE id = 1 "
        "AND NOT EXISTS (SELECT 1 FROM cursors WHERE name = 'alerts')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM cursors WHERE name = 'alerts'")
    for column in ("emailed_at", "raised_at", "seq", "subject", "rule"):
        op.drop_index(f"ix_alerts_{column}", table_name="alerts")
    op.drop_table("alerts")
