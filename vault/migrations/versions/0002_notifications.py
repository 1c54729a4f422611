"""notifications: outbox, pending items, preferences

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "notification_prefs",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("cadence", sa.String(length=16), nullable=False),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_id"),
    )
    op.create_table(
        "notification_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("due_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "seq"),
    )
    with op.batch_alter_table("notification_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notification_items_user_id"), ["user_id"])
        batch_op.create_index(batch_op.f("ix_notification_items_due_at"), ["due_at"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("seqs", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _dt(), nullable=False),
        sa.Column("claimed_at", _dt(), nullable=True),
        sa.Column("claim_token", sa.String(length=36), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("sent_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_user_id"), ["user_id"])
        batch_op.create_index(batch_op.f("ix_notifications_state"), ["state"])
        batch_op.create_index(batch_op.f("ix_notifications_next_attempt_at"), ["next_attempt_at"])
    # The notifier starts at the current end of the log: upgrading must not mail history.
    op.execute(
        "INSERT INTO cursors (name, seq) SELECT 'notify', seq FROM audit_head WHERE id = 1 "
        "AND NOT EXISTS (SELECT 1 FROM cursors WHERE name = 'notify')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM cursors WHERE name = 'notify'")
    op.drop_table("notifications")
    op.drop_table("notification_items")
    op.drop_table("notification_prefs")
