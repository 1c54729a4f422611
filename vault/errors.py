"""The vault's errors: one documented base, `VaultError`, and every error the vault raises.

Web maps each of them to one status (`web.errors.status_for`); a new class here needs an
entry there, and a test walks this tree to hold both to it.

    VaultError
    ├── InvalidInput ............. bad user input; `field` and `rule` say what and why
    │   ├── InvalidEmailError
    │   ├── WeakPasswordError
    │   ├── InvalidNameError
    │   ├── InvalidPathError
    │   ├── InvalidRequestError
    │   ├── InvalidLinkError
    │   ├── InvalidLinkPolicyError
    │   ├── InvalidDropError
    │   ├── InvalidAnnouncementError
    │   ├── InvalidMessageError
    │   ├── ProfileError
    │   └── AuditQueryError
    ├── MfaError
    ├── NotFoundError
    │   ├── LinkNotFoundError
    │   └── ThumbnailError
    ├── PermissionDeniedError
    ├── ConflictError
    │   ├── NameTakenError
    │   ├── HeldError
    │   └── InvalidHoldError
    │       └── InvalidPolicyError
    ├── IncompleteUploadError
    ├── TooLargeError
    │   └── LinkFullError
    ├── QuotaExceededError
    ├── NonceReuseError
    ├── IntegrityError
    │   └── FormatError
    ├── KeyNotFoundError
    ├── KeyringError
    ├── NotMigratedError
    ├── ScannerUnavailableError
    ├── AuditTreeError
    ├── CheckpointError
    ├── ProofError
    ├── NoteError
    ├── BackupError
    └── FsckError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from vault.links import Link, LinkRef

__all__ = [
    "AuditQueryError",
    "AuditTreeError",
    "BackupError",
    "CheckpointError",
    "ConflictError",
    "FormatError",
    "FsckError",
    "HeldError",
    "IncompleteUploadError",
    "IntegrityError",
    "InvalidAnnouncementError",
    "InvalidDropError",
    "InvalidEmailError",
    "InvalidHoldError",
    "InvalidInput",
    "InvalidLinkError",
    "InvalidLinkPolicyError",
    "InvalidMessageError",
    "InvalidNameError",
    "InvalidPolicyError",
    "InvalidRequestError",
    "KeyNotFoundError",
    "KeyringError",
    "LinkFullError",
    "LinkNotFoundError",
    "MfaError",
    "NameRule",
    "NameTakenError",
    "NonceReuseError",
    "NotFoundError",
    "NotMigratedError",
    "NoteError",
    "PermissionDeniedError",
    "ProfileError",
    "ProofError",
    "QuotaExceededError",
    "ScannerUnavailableError",
    "ThumbnailError",
    "TooLargeError",
    "VaultError",
    "WeakPasswordError",
]


class VaultError(Exception):
    """Base of every error raised by the vault."""


# --- bad input -------------------------------------------------------------------------


class InvalidInput(VaultError):
    """Something a person typed or sent breaks a rule; nothing was changed.

    Attributes:
        field: The offending input (a form or JSON field), or "" when it is the whole request.
        rule: Stable machine-readable id of the broken rule, or "".
    """

    def __init__(self, message: str, *, field: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class InvalidEmailError(InvalidInput):
    """The text is not an email address."""

    def __init__(self, message: str = "not an email address", *, field: str = "email") -> None:
        super().__init__(message, field=field, rule="email")


class WeakPasswordError(InvalidInput):
    """A new password breaks the policy; the message names the rule, for the user to read.

    `rule` is a stable identifier of the rule (for an API's error type or a form's field
    hint): one of "too-short", "too-long", "control-characters", "personal", "common",
    "repetitive".
    """

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message, field="password", rule=rule)


NameRule = Literal[
    "empty",
    "too_long",
    "invalid_unicode",
    "control_character",
    "bidi_control",
    "path_separator",
    "dot_name",
    "leading_whitespace",
    "trailing_dot_or_space",
    "reserved_name",
    "invisible_character",
    "confusable",
]


class InvalidPathError(InvalidInput):
    """A relative folder path (an uploaded folder's tree) is absolute, climbs out with `..`,
    or names a folder that breaks the naming rules."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message, field="relative_path", rule=rule)


class InvalidNameError(InvalidInput):
    """A name broke one of the naming rules.

    Attributes:
        rule: Stable machine-readable id of the broken rule (see `NameRule`).
        message: Human explanation; never echoes the name itself, which may be hostile.
    """

    def __init__(self, rule: NameRule, message: str) -> None:
        super().__init__(message, field="name", rule=rule)
        self.rule: NameRule = rule
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidNameError], tuple[NameRule, str]]:
        # Keep the two-argument constructor picklable (BaseException pickles only `args`).
        return (type(self), (self.rule, self.message))


class InvalidRequestError(InvalidInput):
    """A document request or an answer to one is malformed."""


class InvalidLinkError(InvalidInput):
    """A link's settings are malformed or break the client's link policy; `field` names
    the offending setting."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class InvalidLinkPolicyError(InvalidInput):
    """A link policy override is malformed."""


class InvalidDropError(InvalidInput):
    """The visitor's name or email is missing or malformed; `field` names which."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)


class InvalidAnnouncementError(InvalidInput):
    """An announcement is malformed.

    Attributes:
        field: The offending input: `title`, `body` or `expires`.
        code: Which rule it broke: `empty`, `long`, `control` or `past`.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message, field=field, rule=code)
        self.code = code


class InvalidMessageError(InvalidInput):
    """A publishing message is too long or holds control characters; `code` says which
    (`long` or `control`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, field="message", rule=code)
        self.code = code


class ProfileError(InvalidInput):
    """A profile field is not acceptable; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class AuditQueryError(InvalidInput):
    """A filter of an audit query is malformed."""


class MfaError(VaultError):
    """A second-factor code was not accepted."""


# --- access and state ------------------------------------------------------------------


class NotFoundError(VaultError):
    """The resource does not exist, or the caller may not know that it does (deny = 404)."""


class LinkNotFoundError(NotFoundError):
    """No usable link: unknown, expired, revoked, exhausted or its target gone. `link` and
    `reason` say which (for the audit log only; the visitor is told nothing)."""

    def __init__(self, reason: str, link: Link | LinkRef | None = None) -> None:
        # Imported here: vault.links raises this error, so it imports this module first.
        from vault.links import ref

        super().__init__("link not found")
        self.reason = reason
        self.link = None if link is None else ref(link)


class ThumbnailError(NotFoundError):
    """A version has no thumbnail: its type has none, it is too large to draw, or it cannot be
    drawn safely (damaged, encrypted, a decompression bomb)."""


class PermissionDeniedError(VaultError):
    """The caller can see the resource but may not do this to it."""


class ConflictError(VaultError):
    """The request conflicts with the current state (e.g. a name already taken)."""


class NameTakenError(ConflictError):
    """A rename or move would put two things of one name side by side; nothing was changed.

    Attributes:
        name: The name already taken in the target folder (a page names the file with it).
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is already in the target folder")
        self.name = name

    def __reduce__(self) -> tuple[type[NameTakenError], tuple[str]]:
        return (type(self), (self.name,))


class HeldError(ConflictError):
    """A legal hold forbids deleting this; it stays until the hold is released."""


class InvalidHoldError(ConflictError):
    """A hold or its release lacks a reason, or names a folder of another client."""


class InvalidPolicyError(InvalidHoldError):
    """A retention rule is negative or absurdly large."""


# --- uploads and quotas ----------------------------------------------------------------


class IncompleteUploadError(VaultError):
    """The upload ended before the announced number of bytes arrived."""


class TooLargeError(VaultError):
    """The upload is larger than the configured maximum."""


class LinkFullError(TooLargeError):
    """The file is larger than the link allows (`reason` "too_large"), or the link takes no
    more files or bytes ("limit")."""

    def __init__(self, message: str, *, reason: str = "limit") -> None:
        super().__init__(message)
        self.reason = reason


class QuotaExceededError(VaultError):
    """The upload would take the client past its quota; nothing of it was stored."""

    def __init__(self, *, quota: int, used: int, requested: int | None) -> None:
        self.quota = quota
        self.used = used
        self.requested = requested
        wanted = "" if requested is None else f" and this upload needs {requested}"
        super().__init__(f"the client's quota is {quota} bytes, {used} are in use{wanted}")


class NonceReuseError(VaultError):
    """A resumed upload sent different bytes for a part already encrypted under this key.

    The caller must restart the upload with a fresh data key.
    """


# --- keys, stored data and the audit log -----------------------------------------------


class IntegrityError(VaultError):
    """Stored ciphertext failed authentication: tampered, truncated, reordered or swapped."""


class FormatError(IntegrityError):
    """An encrypted object's header is malformed or names an unsupported version or suite."""


class KeyNotFoundError(VaultError):
    """A key-encryption key named by a stored row is not in the keyring."""


class KeyringError(VaultError):
    """The keyring is unusable (missing file, bad permissions, wrong key)."""


class NotMigratedError(VaultError):
    """The database schema is not at the version this code expects."""


class ScannerUnavailableError(VaultError):
    """The scanner could not be reached or gave no verdict; the scan must be tried again."""


class AuditTreeError(VaultError):
    """The log cannot form the tree asked for (a gap, or a size beyond the log)."""


class CheckpointError(VaultError):
    """A checkpoint cannot be written, or the stored ones contradict the log."""


class ProofError(VaultError):
    """A Merkle proof does not verify, or its parameters are out of range."""


class NoteError(VaultError):
    """A note or key is malformed, or its signature does not verify."""


class BackupError(VaultError):
    """A backup cannot be taken or restored, or does not match its manifest."""


class FsckError(VaultError):
    """The check cannot go on (e.g. the store lists keys out of order)."""
