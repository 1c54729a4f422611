"""share and upload-request links, their unlock grants and codes, per-client link policy

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
        "links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("folder_id", sa.Uuid(), sa.ForeignKey("folders.id"), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _dt(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("recipient_email", sa.String(length=320), nullable=True),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_files", sa.Integer(), nullable=True),
        sa.Column("max_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("files_received", sa.Integer(), nullable=False),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("revoked_at", _dt(), nullable=True),
        sa.Column("revoked_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_links_client_id"), ["client_id"])
        batch_op.create_index(batch_op.f("ix_links_document_id"), ["document_id"])
        batch_op.create_index(batch_op.f("ix_links_folder_id"), ["folder_id"])
        batch_op.create_index(batch_op.f("ix_links_created_by"), ["created_by"])
    op.create_table(
        "link_grants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Uuid(), sa.ForeignKey("links.id"), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("expires_at", _dt(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("link_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_grants_link_id"), ["link_id"])
    op.create_table(
        "link_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), sa.ForeignKey("links.id"), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("expires_at", _dt(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", _dt(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_codes_link_id"), ["link_id"])
    op.create_table(
        "link_policies",
        sa.Column("client_id", sa.Uuid(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=True),
        sa.Column("creators", sa.String(length=32), nullable=True),
        sa.Column("max_expiry_days", sa.Integer(), nullable=True),
        sa.Column("require_password", sa.Boolean(), nullable=True),
        sa.Column("require_recipient", sa.Boolean(), nullable=True),
        sa.Column("scan_drops", sa.Boolean(), nullable=True),
        sa.Column("updated_at", _dt(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade() -> None:
    op.drop_table("link_policies")
    op.drop_table("link_codes")
    op.drop_table("link_grants")
    op.drop_table("links")
