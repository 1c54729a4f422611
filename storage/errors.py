"""Errors raised by object stores. Third-party exceptions are translated at this edge."""


class StorageError(Exception):
    """Base of every object-store error."""


class ObjectNotFoundError(StorageError):
    """The key (or multipart upload) does not exist."""


class BucketNotFoundError(StorageError):
    """The configured bucket does not exist."""


class StorageAccessDeniedError(StorageError):
    """The credentials are wrong or lack permission."""


class StorageUnavailableError(StorageError):
    """The store could not be reached or kept failing after retries."""


class StorageFullError(StorageUnavailableError):
    """The store has no room left: a full disk or an exhausted quota."""


class InvalidKeyError(StorageError):
    """The key is not acceptable (e.g. it would escape the store's root)."""
