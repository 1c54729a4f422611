"""Plain records returned by object stores."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    etag: str = ""


@dataclass(frozen=True, slots=True)
class PartInfo:
    part_number: int
    etag: str
    size: int


@dataclass(frozen=True, slots=True)
class MultipartUploadInfo:
    key: str
    upload_id: str
    initiated: datetime


class StoredPart(Protocol):
    """What `list_parts` returns: the shape `vault.store.StoredPart` expects.

    Declared again here because `storage` must not import `vault`, and `list` is invariant:
    a `list[PartInfo]` would not satisfy the vault's `list[StoredPart]`.
    """

    @property
    def part_number(self) -> int: ...

    @property
    def etag(self) -> str: ...

    @property
    def size(self) -> int: ...


class PendingUpload(Protocol):
    """What `list_multipart_uploads` returns: the shape `vault.store.PendingUpload` expects."""

    @property
    def key(self) -> str: ...

    @property
    def upload_id(self) -> str: ...

    @property
    def initiated(self) -> datetime: ...
