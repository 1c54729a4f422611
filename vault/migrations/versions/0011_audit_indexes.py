"""audit search indexes: each filter of the auditor's search with the seq keyset order

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A search pages newest first by `seq` (keyset: `seq < cursor ORDER BY seq DESC`). An index
# on the filter column alone makes the database fetch every matching row and sort them, or
# walk the primary key backwards testing each row: both grow with the log. With `seq` as
# the last column, a page is a short backward range scan. Each composite index replaces
# the single-column index it starts with, so an append updates no more indexes than before.
_REPLACED = {
    "ix_audit_events_client_id": ("ix_audit_events_client_seq", ["client_id", "seq"]),
    "ix_audit_events_actor_id": ("ix_audit_events_actor_seq", ["actor_id", "seq"]),
    "ix_audit_events_document_id": ("ix_audit_events_document_seq", ["document_id", "seq"]),
    "ix_audit_events_action": ("ix_audit_events_action_outcome_seq", ["action", "outcome", "seq"]),
}
_ADDED = {
    # An action group (`document.*`) spans several actions, so no single range of the
    # index above is in seq order; the outcome alone is, and the action is checked per row.
    "ix_audit_events_outcome_seq": ["outcome", "seq"],
    # A client over a time range (the access report): without it the database intersects
    # the client's events with every event of the range (85,000 for 30 days of a million).
    "ix_audit_events_client_ts": ["client_id", "ts"],
}


def upgrade() -> None:
    for old, (new, columns) in _REPLACED.items():
        op.create_index(new, "audit_events", columns)
        op.drop_index(old, table_name="audit_events")
    for name, columns in _ADDED.items():
        op.create_index(name, "audit_events", columns)


def downgrade() -> None:
    for name in _ADDED:
        op.drop_index(name, table_name="audit_events")
    for old, (new, columns) in _REPLACED.items():
        op.create_index(old, "audit_events", columns[:1])
        op.drop_index(new, table_name="audit_events")
