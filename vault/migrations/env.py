"""Alembic environment: runs on the connection handed over by `vault.db.migrate`."""

from alembic import context
from sqlmodel import SQLModel

import vault.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from vault import drops as _drops  # noqa: F401  (files dropped through upload links)
from vault import link_access as _link_access  # noqa: F401  (link grants and codes)
from vault import link_policy as _link_policy  # noqa: F401  (per-client link policy)
from vault import links as _links  # noqa: F401  (share and upload-request links)
from vault import notifications as _notifications  # noqa: F401  (notifier tables)
from vault import quarantine as _quarantine  # noqa: F401  (versions held for scanning)
from vault import records as _records  # noqa: F401  (quota, retention and hold tables)
from vault import refusals as _refusals  # noqa: F401  (refused-request windows)
from vault import request_tables as _requests  # noqa: F401  (document request tables)
from vault import thumbnail_jobs as _thumbnail_jobs  # noqa: F401  (thumbnails to draw)
from vault import thumbnails as _thumbnails  # noqa: F401  (stored thumbnails, first views)
from vault import uploads as _uploads  # noqa: F401  (resumable upload tables)
from vault.accounts import identity as _identity  # noqa: F401  (sign-in tables)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
