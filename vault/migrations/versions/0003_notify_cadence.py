"""notification cadences, digests, per-user language and time zone

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the rows that already exist; new rows get them from the model.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locale", sa.String(length=16), nullable=False, server_default="en")
        )
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    with op.batch_alter_table("notification_prefs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_hour", sa.Integer(), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_notifications_client_id_clients", "clients", ["client_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_notifications_client_id"), ["client_id"])


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_client_id"))
        batch_op.drop_constraint("fk_notifications_client_id_clients", type_="foreignkey")
        batch_op.drop_column("client_id")
    with op.batch_alter_table("notification_prefs", schema=None) as batch_op:
        batch_op.drop_column("daily_hour")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("locale")
