"""Object stores for the vault's ciphertext: a local directory or an S3 bucket.

Both satisfy `vault.store.ObjectStore` structurally; this package imports nothing of ours.
The S3 store loads botocore (about 16 MiB in a process) only when it is first named, so a
node on the local store never holds it.
"""

from typing import TYPE_CHECKING

from storage.budget import ByteBudget
from storage.errors import (
    BucketNotFoundError,
    InvalidKeyError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from storage.local import LocalObjectStore
from storage.types import MultipartUploadInfo, ObjectInfo, PartInfo

if TYPE_CHECKING:
    from storage.s3 import S3ObjectStore
    from storage.s3_client import make_s3_client

__all__ = [
    "BucketNotFoundError",
    "ByteBudget",
    "InvalidKeyError",
    "LocalObjectStore",
    "MultipartUploadInfo",
    "ObjectInfo",
    "ObjectNotFoundError",
    "PartInfo",
    "S3ObjectStore",
    "StorageAccessDeniedError",
    "StorageError",
    "StorageFullError",
    "StorageUnavailableError",
    "make_s3_client",
]


def __getattr__(name: str) -> object:
    if name == "S3ObjectStore":
        from storage.s3 import S3ObjectStore

        return S3ObjectStore
    if name == "make_s3_client":
        from storage.s3_client import make_s3_client

        return make_s3_client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
