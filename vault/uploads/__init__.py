"""Resumable uploads: the upload rows and their lifecycle (`resumable`), the client's
metadata (`metadata`), appending parts (`append`), the staging of short writes
(`staging`) and turning a complete upload into a version (`finish`). The names below are
the lifecycle's surface."""

from __future__ import annotations

from vault.uploads.metadata import MAX_METADATA, parse_metadata
from vault.uploads.resumable import (
    MAX_LENGTH,
    Resumable,
    StagedRun,
    Upload,
    UploadPart,
    UploadState,
    create_upload,
    delete_rows,
    discard,
    expire_uploads,
    get_upload,
    is_live,
    lease_held,
    live_storage_keys,
    locked,
    part_count,
    plan_new_document,
    reported_offset,
    terminate,
)

__all__ = [
    "MAX_LENGTH",
    "MAX_METADATA",
    "Resumable",
    "StagedRun",
    "Upload",
    "UploadPart",
    "UploadState",
    "create_upload",
    "delete_rows",
    "discard",
    "expire_uploads",
    "get_upload",
    "is_live",
    "lease_held",
    "live_storage_keys",
    "locked",
    "parse_metadata",
    "part_count",
    "plan_new_document",
    "reported_offset",
    "terminate",
]
