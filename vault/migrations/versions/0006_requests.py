"""document requests and their items

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "document_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("folder_id", sa.Uuid(), sa.ForeignKey("folders.id"), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("recurrence", sa.String(length=16), nullable=False),
        sa.Column("anchor_day", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Uuid(), sa.ForeignKey("document_requests.id"), nullable=True),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("closed_at", _dt(), nullable=True),
        sa.Column("closed_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reminded_due_soon_at", _dt(), nullable=True),
        sa.Column("reminded_overdue_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("previous_id"),
    )
    with op.batch_alter_table("document_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_requests_client_id"), ["client_id"])
        batch_op.create_index("ix_document_requests_open_due", ["closed_at", "due_date"])
    op.create_table(
        "request_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), sa.ForeignKey("document_requests.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("submitted_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("submitted_at", _dt(), nullable=True),
        sa.Column("answered_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("answered_at", _dt(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("request_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_items_request_id"), ["request_id"])


def downgrade() -> None:
    op.drop_table("request_items")
    op.drop_table("document_requests")
