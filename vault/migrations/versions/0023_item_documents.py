"""item documents: a request item holds several submitted documents

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_dt = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "request_item_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("item_id", sa.Uuid(), sa.ForeignKey("request_items.id"), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("submitted_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "document_id"),
    )
    with op.batch_alter_table("request_item_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_item_documents_item_id"), ["item_id"])
        batch_op.create_index(batch_op.f("ix_request_item_documents_document_id"), ["document_id"])
    # Each item's one submitted document so far becomes its first listed document. The
    # new row's id is the item's: one row per item here, and ids need no function that
    # differs between SQLite and PostgreSQL.
    op.execute(
        "INSERT INTO request_item_documents"
        " (id, item_id, document_id, version, submitted_by, submitted_at)"
        " SELECT id, id, document_id, version, submitted_by, submitted_at"
        " FROM request_items"
        " WHERE document_id IS NOT NULL AND version IS NOT NULL AND submitted_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("request_item_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_item_documents_document_id"))
        batch_op.drop_index(batch_op.f("ix_request_item_documents_item_id"))
    op.drop_table("request_item_documents")
