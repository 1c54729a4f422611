"""The vault's errors: one documented base, `VaultError`."""


class VaultError(Exception):
    """Base of every error raised by the vault."""


class IntegrityError(VaultError):
    """Stored ciphertext failed authentication: tampered, truncated, reordered or swapped."""


class FormatError(IntegrityError):
    """An encrypted object's header is malformed or names an unsupported version or suite."""


class KeyNotFoundError(VaultError):
    """A key-encryption key named by a stored row is not in the keyring."""


class KeyringError(VaultError):
    """The keyring is unusable (missing file, bad permissions, wrong key)."""


class NonceReuseError(VaultError):
    """A resumed upload sent different bytes for a part already encrypted under this key.

    The caller must restart the upload with a fresh data key.
    """


class NotFoundError(VaultError):
    """The resource does not exist, or the caller may not know that it does (deny = 404)."""


class PermissionDeniedError(VaultError):
    """The caller can see the resource but may not do this to it."""


class ConflictError(VaultError):
    """The request conflicts with the current state (e.g. a name already taken)."""


class IncompleteUploadError(VaultError):
    """The upload ended before the announced number of bytes arrived."""


class TooLargeError(VaultError):
    """The upload is larger than the configured maximum."""
