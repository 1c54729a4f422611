"""Object stores for the vault's ciphertext: a local directory or an S3 bucket.

Both satisfy `vault.store.ObjectStore` structurally; this package imports nothing of ours.
"""

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
from storage.s3 import S3ObjectStore
from storage.s3_client import make_s3_client
from storage.types import MultipartUploadInfo, ObjectInfo, PartInfo

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
