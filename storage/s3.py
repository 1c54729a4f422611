"""Objects in an S3 bucket (AWS S3, Ceph RGW, MinIO, ...) through boto3.

boto3 blocks, so every call runs in a worker thread. botocore's exceptions are translated
into `storage.errors` here and go no further.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio.to_thread
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    UnseekableStreamError,
)

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
from storage.s3_reads import get_range, get_range_into
from storage.types import MultipartUploadInfo, ObjectInfo, PartInfo, PendingUpload, StoredPart
from storage.windows import read_windows

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

T = TypeVar("T")

MiB = 1024 * 1024
MAX_KEY_BYTES = 1024
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_DENIED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "403"}
)


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"start must not be negative, got {start}")
    if end is not None and end < start:
        raise ValueError(f"end ({end}) must not be before start ({start})")


class S3ObjectStore:
    """An object store in one S3 bucket, optionally under a key prefix.

    Args:
        client: A boto3 S3 client, e.g. from `make_s3_client`.
        bucket: The bucket; it must exist.
        prefix: Prepended (with one `/`) to every key, so several installations or other
            data can share the bucket.
        part_concurrency: Ranged GETs in flight at once while reading one object.
        read_chunk_size: The most bytes per ranged GET.
        read_ahead: The most bytes one read holds at a time (fetched ahead, or handed
            out and not yet consumed).
        first_window: Bytes of a read's first ranged GET; later ones double up to
            `read_chunk_size`.
        budget: Shared by all reads of the process (and of other stores given the same
            budget): the most bytes they hold together. A new one of
            `4 × read_ahead` bytes when omitted.
    """

    def __init__(
        self,
        *,
        client: S3Client,
        bucket: str,
        prefix: str = "",
        part_concurrency: int = 4,
        read_chunk_size: int = 8 * MiB,
        read_ahead: int = 16 * MiB,
        first_window: int = 1 * MiB,
        budget: ByteBudget | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        if part_concurrency < 1:
            raise ValueError("part_concurrency must be at least 1")
        if min(read_chunk_size, read_ahead, first_window) < 1:
            raise ValueError("read_chunk_size, read_ahead and first_window must be positive")
        self._client = client
        self._bucket = bucket
        prefix = prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        self._part_concurrency = part_concurrency
        self._read_chunk_size = read_chunk_size
        self._read_ahead = read_ahead
        self._first_window = first_window
        self._budget = ByteBudget(4 * read_ahead) if budget is None else budget

    @property
    def bucket(self) -> str:
        """The bucket holding the objects."""
        return self._bucket

    @property
    def etags_pin_parts(self) -> bool:
        """True: S3 changes a part only by a new UploadPart, which the store checks against
        its signed SHA-256 on receipt and which gets a new ETag unless its bytes are the same,
        so a part listed with the ETag `upload_part` returned holds the bytes it sent."""
        return True

    @property
    def prefix(self) -> str:
        """What is prepended to every key: empty, or ending in exactly one `/`."""
        return self._prefix

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self._bucket!r}, prefix={self._prefix!r})"

    def _key(self, key: str) -> str:
        if not key:
            raise InvalidKeyError("the key is empty")
        full = self._prefix + key
        try:
            encoded = full.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidKeyError(f"the key {key!r} is not valid UTF-8") from None
        if len(encoded) > MAX_KEY_BYTES:
            raise InvalidKeyError(f"the key {key!r} is longer than S3 allows")
        return full

    def _translate(
        self,
        exc: Exception,
        *,
        key: str | None = None,
        upload_id: str | None = None,
        bucket_level: bool = False,
    ) -> StorageError:
        """The store error for a botocore exception (the caller chains it with `from`)."""
        if isinstance(exc, ClientError):
            error: Any = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = str(error.get("Message", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            operation = exc.operation_name
            # HEAD responses carry no body, so a missing bucket only shows as a bare 404.
            if code == "NoSuchBucket" or (bucket_level and code in _NOT_FOUND):
                return BucketNotFoundError(f"the bucket {self._bucket!r} does not exist")
            if code == "NoSuchUpload":
                return ObjectNotFoundError(f"no multipart upload {upload_id!r} of {key!r}")
            if code in _NOT_FOUND:
                return ObjectNotFoundError(f"no object {key!r} in bucket {self._bucket!r}")
            if code in ("QuotaExceeded", "InsufficientCapacity"):
                return StorageFullError(f"the bucket {self._bucket!r} is full: {code} {message}")
            if code in _DENIED or status == 403:
                return StorageAccessDeniedError(
                    f"access to bucket {self._bucket!r} denied ({code or status} on "
                    f"{operation}): check the credentials and their permissions"
                )
            if status >= 500:
                return StorageUnavailableError(
                    f"S3 kept failing on {operation}: {code or status} {message}".rstrip()
                )
            return StorageError(f"S3 {operation} failed: {code or status} {message}".rstrip())
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageAccessDeniedError(f"{exc}: check the credentials")
        if isinstance(exc, ParamValidationError):
            return StorageError(f"invalid S3 request: {exc}")
        return StorageUnavailableError(f"the S3 endpoint could not be used: {exc}")

    async def _call(
        self,
        func: Callable[[], T],
        *,
        key: str | None = None,
        upload_id: str | None = None,
        bucket_level: bool = False,
    ) -> T:
        try:
            return await anyio.to_thread.run_sync(func)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(
                exc, key=key, upload_id=upload_id, bucket_level=bucket_level
            ) from exc

    # Multipart writes

    async def create_multipart(self, key: str) -> str:
        """Start a multipart upload of `key`.

        Returns:
            S3's upload id.
        """
        full = self._key(key)
        response = await self._call(
            lambda: self._client.create_multipart_upload(Bucket=self._bucket, Key=full), key=key
        )
        return response["UploadId"]

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
    ) -> str:
        """Store part `part_number` (1 to 10000); a repeated number replaces it.

        Every part but the last must be at least 5 MiB, or S3 refuses to complete the upload.

        Returns:
            The part's etag, as S3 gives it (quoted).

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        full = self._key(key)
        retries: dict[str, Any] = getattr(self._client.meta.config, "retries", None) or {}
        attempts = int(retries.get("total_max_attempts", 1))

        def put() -> str:
            # No Content-MD5: the signed payload SHA-256 (see `make_s3_client`) is checked by
            # the store as it receives the part, so a second digest would only cost time.
            response = self._client.upload_part(
                Bucket=self._bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=cast(bytes, data),  # any bytes-like body (see `make_s3_client`)
            )
            return response["ETag"]

        def send() -> str:
            # botocore retries a failed call (a 5xx, throttling, a dropped connection) after
            # its backoff only if it can rewind the body, which it can for files and bytes but
            # not for the memoryview of a sealed part: it raises instead, and the retry is ours.
            for _ in range(attempts - 1):
                with contextlib.suppress(UnseekableStreamError):
                    return put()
            try:
                return put()
            except UnseekableStreamError:
                raise StorageUnavailableError(
                    f"S3 kept failing on UploadPart ({attempts} attempts)"
                ) from None

        return await self._call(send, key=key, upload_id=upload_id)

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """The parts stored so far, in part-number order.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
        """
        full = self._key(key)
        parts: list[StoredPart] = []
        page: dict[str, Any] = {"Bucket": self._bucket, "Key": full, "UploadId": upload_id}
        while True:
            response = await self._call(
                functools.partial(self._client.list_parts, **page), key=key, upload_id=upload_id
            )
            for part in response.get("Parts", []):
                parts.append(PartInfo(part["PartNumber"], part["ETag"], part["Size"]))
            if not response.get("IsTruncated"):
                return parts
            page["PartNumberMarker"] = response["NextPartNumberMarker"]

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join `(part_number, etag)` parts into the object `key`; S3 makes it visible atomically.

        Raises:
            ObjectNotFoundError: There is no such upload of `key`.
            StorageError: A part is missing, out of order, too small or not the one `etag` names.
        """
        full = self._key(key)
        completed: list[CompletedPartTypeDef] = [
            {"PartNumber": number, "ETag": etag} for number, etag in parts
        ]
        await self._call(
            lambda: self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": completed},
            ),
            key=key,
            upload_id=upload_id,
        )

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; a missing upload is not an error."""
        full = self._key(key)
        with contextlib.suppress(ObjectNotFoundError):
            await self._call(
                lambda: self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=full, UploadId=upload_id
                ),
                key=key,
                upload_id=upload_id,
            )

    async def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Unfinished multipart uploads of keys starting with `prefix`."""
        uploads: list[PendingUpload] = []
        page: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._prefix + prefix}
        while True:
            response = await self._call(
                functools.partial(self._client.list_multipart_uploads, **page), bucket_level=True
            )
            for upload in response.get("Uploads", []):
                full = upload["Key"]
                if full.startswith(self._prefix):
                    uploads.append(
                        MultipartUploadInfo(
                            full[len(self._prefix) :], upload["UploadId"], upload["Initiated"]
                        )
                    )
            if not response.get("IsTruncated"):
                return uploads
            page["KeyMarker"] = response["NextKeyMarker"]
            page["UploadIdMarker"] = response["NextUploadIdMarker"]

    async def put_new(self, key: str, data: bytes) -> str | None:
        """Store the small object `key` (one PUT, held in memory) unless the key is taken:
        never replaces an object, so what was written there once stays.

        Returns:
            The stored object's etag (as `head` gives it); None if `key` already held an
            object, which is left as it was.
        """
        full = self._key(key)
        # The PUT is conditional (If-None-Match: *): AWS S3, Ceph RGW (Pacific and later) and
        # moto refuse it with 412 when the key exists, atomically. Some S3-compatible servers
        # ignore the header and would replace the object, so a HEAD comes first; on those,
        # only a writer racing between the HEAD and the PUT could still replace it. RGW
        # ignores the condition on CompleteMultipartUpload, hence one plain PUT here.
        with contextlib.suppress(ObjectNotFoundError):
            await self.head(key)
            return None
        body = bytes(data)
        try:
            response = await anyio.to_thread.run_sync(
                lambda: self._client.put_object(
                    Bucket=self._bucket, Key=full, Body=body, IfNoneMatch="*"
                )
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return None
            raise self._translate(exc, key=key) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, key=key) from exc
        return response["ETag"]

    # Reads and the rest

    async def _read(
        self, key: str, start: int, end: int | None
    ) -> AsyncGenerator[bytes | memoryview, None]:
        _check_range(start, end)
        full = self._key(key)
        if end is None:
            end = (await self.head(key)).size
        elif start >= end:
            await self.head(key)  # nothing to fetch, but a missing object is still an error
        if start >= end:
            return
        budget = self._budget
        if end - start <= min(self._first_window, budget.capacity):
            # One small GET (a header, a short range): no pool of threads for it.
            size = end - start
            await budget.acquire(size)
            try:
                lo, hi = start, end
                small = await self._call(
                    lambda: get_range(self._client, self._bucket, full, lo, hi), key=key
                )
                if small:
                    yield small
            finally:
                budget.release(size)
            return
        chunk = min(self._read_chunk_size, self._read_ahead, budget.capacity)
        windows = read_windows(
            functools.partial(get_range_into, self._client, self._bucket, full),
            start=start,
            end=end,
            chunk=chunk,
            first_window=self._first_window,
            read_ahead=self._read_ahead,
            concurrency=self._part_concurrency,
            budget=budget,
            threads="s3-read",
        )
        try:
            handed: list[memoryview] = []
            async for data in windows:
                # Handed over, not kept: while suspended at `yield` this frame holds no
                # reference, so a window is freed as soon as its consumer drops it.
                handed.append(data)
                del data
                yield handed.pop()
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key=key) from exc
        finally:
            await windows.aclose()

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes | memoryview, None]:
        """Stream bytes `[start, end)` of `key` (to its end when `end` is None or past it).

        The range is fetched as consecutive windows growing from `first_window` to
        `read_chunk_size` bytes, up to `part_concurrency` ranged GETs at once and at most
        `read_ahead` bytes held by this read (fetched, or yielded and not yet consumed), all
        within the process's byte budget; windows are yielded strictly in order, one window
        per piece. Closing the iterator early stops further GETs.

        Raises:
            ObjectNotFoundError: There is no such object (on the first iteration).
            ValueError: `start` is negative or `end` is before it.
        """
        return self._read(key, start, end)

    async def head(self, key: str) -> ObjectInfo:
        """Metadata of `key`.

        Raises:
            ObjectNotFoundError: There is no such object.
        """
        full = self._key(key)
        response = await self._call(
            lambda: self._client.head_object(Bucket=self._bucket, Key=full), key=key
        )
        return ObjectInfo(
            key, response["ContentLength"], response["LastModified"], response.get("ETag", "")
        )

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""
        full = self._key(key)
        # S3 itself answers a missing key with success, but some compatible servers say 404.
        with contextlib.suppress(ObjectNotFoundError):
            await self._call(
                lambda: self._client.delete_object(Bucket=self._bucket, Key=full), key=key
            )

    async def check(self) -> None:
        """Raise unless the bucket exists and the credentials may use it.

        Raises:
            BucketNotFoundError: The bucket does not exist.
            StorageAccessDeniedError: The credentials are wrong or lack permission.
            StorageUnavailableError: The endpoint cannot be reached.
        """
        await self._call(lambda: self._client.head_bucket(Bucket=self._bucket), bucket_level=True)

    async def _list(self, prefix: str, start_after: str) -> AsyncGenerator[ObjectInfo, None]:
        page: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._prefix + prefix}
        if start_after:
            page["StartAfter"] = self._prefix + start_after
        while True:
            response = await self._call(
                functools.partial(self._client.list_objects_v2, **page), bucket_level=True
            )
            for obj in response.get("Contents", []):
                full = obj["Key"]
                if full.startswith(self._prefix):
                    yield ObjectInfo(
                        full[len(self._prefix) :],
                        obj["Size"],
                        obj["LastModified"],
                        obj.get("ETag", ""),
                    )
            if not response.get("IsTruncated"):
                return
            page["ContinuationToken"] = response["NextContinuationToken"]

    def list(self, prefix: str = "", start_after: str = "") -> AsyncGenerator[ObjectInfo, None]:
        """Every object whose key starts with `prefix`, in key order (as S3 lists them);
        only the keys after `start_after` when it is given."""
        return self._list(prefix, start_after)
