"""audit events that read on their own: actor and target labels, entry format 2 (issue 12)

Existing rows stay format 1 (`v` = 1) and keep their hashes; only new events carry labels.
On PostgreSQL, adding nullable columns and one with a constant default rewrites no row, so
the append-only trigger of migration 0008 is not involved.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("v", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("actor_email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("actor_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("target_label", sa.String(length=1024), nullable=True))
    # The auditor's search filters by address too; like the others, the index ends with seq.
    op.create_index("ix_audit_events_ip_seq", "audit_events", ["ip", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_ip_seq", table_name="audit_events")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("target_label")
        batch_op.drop_column("actor_name")
        batch_op.drop_column("actor_email")
        batch_op.drop_column("v")
