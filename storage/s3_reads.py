"""The ranged GETs behind `S3ObjectStore.read`: one range as bytes, or into a window's
buffer (`storage.windows.read_windows` reads an object as a series of them);
`storage/s3.py` keeps the rest of the store and translates errors.
"""

from __future__ import annotations

from collections.abc import Callable
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody

from storage.errors import StorageError
from storage.windows import WindowBuffer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# botocore retries failed requests, but not a response body that breaks off mid-way.
_BODY_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError)
_BODY_ATTEMPTS = 3
T = TypeVar("T")


def get_range(client: S3Client, bucket: str, full_key: str, start: int, end: int) -> bytes:
    """Bytes `[start, end)` of an object, fewer if it ends sooner (blocking)."""
    data: bytes = _get(client, bucket, full_key, start, end, lambda body: body.read(), b"")
    return data


def get_range_into(
    client: S3Client,
    bucket: str,
    full_key: str,
    start: int,
    end: int,
    into: Callable[[], WindowBuffer | None],
) -> int:
    """Read bytes `[start, end)` of an object into the start of the buffer `into` gives;
    returns how many, fewer if it ends sooner (blocking).

    `into` is called once the GET has answered, and may block until a buffer is free; None
    means the read was given up: the body is left unread and 0 returned.
    """

    def take(body: StreamingBody) -> int:
        buffer = into()
        return 0 if buffer is None else _read_into(body, memoryview(buffer)[: end - start])

    return _get(client, bucket, full_key, start, end, take, 0)


def _get(
    client: S3Client,
    bucket: str,
    full_key: str,
    start: int,
    end: int,
    take: Callable[[StreamingBody], T],
    empty: T,
) -> T:
    for attempt in range(1, _BODY_ATTEMPTS + 1):
        try:
            response = client.get_object(
                Bucket=bucket, Key=full_key, Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return empty  # `start` is at or past the end of the object
            raise
        body = response["Body"]
        try:
            return take(body)
        except _BODY_ERRORS:
            if attempt == _BODY_ATTEMPTS:
                raise
        finally:
            body.close()
    raise AssertionError("unreachable")


def _read_into(body: StreamingBody, view: memoryview) -> int:
    # botocore's and urllib3's reads return a new bytes object, which at 4 MiB the server's
    # allocator maps afresh (web/malloc.py), faulting in every page of every window; the
    # HTTP response underneath reads from the socket straight into `view`. Where it is not
    # there (another urllib3), the window is read and copied in.
    raw: Any = getattr(body, "_raw_stream", None)
    response = getattr(raw, "_fp", None)
    expected = getattr(body, "_content_length", None)
    if response is None or expected is None or not hasattr(raw, "release_conn"):
        data = body.read()
        if len(data) > len(view):
            raise StorageError(f"S3 returned {len(data)} bytes for a range of {len(view)}")
        view[: len(data)] = data
        return len(data)
    expected = int(expected)
    if expected > len(view):
        raise StorageError(f"S3 announced {expected} bytes for a range of {len(view)}")
    filled = 0
    while filled < expected:
        try:
            count = response.readinto(view[filled:expected])
        except (OSError, HTTPException) as exc:
            # What urllib3 would have raised, so that the GET is tried again.
            raise ResponseStreamingError(error=exc) from exc
        if not count:
            raise IncompleteReadError(actual_bytes=filled, expected_bytes=expected)
        filled += count
    # Read to its end: the connection goes back to the pool for the next window.
    raw.release_conn()
    return filled
