"""The store checks every part, and every object written in one request, against the SHA-256
the request was signed with, which is what lets a resumable upload finish without reading
its object back (docs/uploads.md, "Finishing")."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

from storage import ObjectNotFoundError, S3ObjectStore, StorageError, make_s3_client
from tests.fixtures.s3 import s3_endpoint

PART = 5 * 1024 * 1024


class _Empty:
    """An empty response body, as botocore reads one."""

    def stream(self) -> list[bytes]:
        return []


def alter(request: Any, **_: Any) -> None:
    body = request.body
    data = bytearray(body.read() if hasattr(body, "read") else body)
    data[100] ^= 1  # one bit, after the signature was made
    request.body = bytes(data)


@pytest.fixture
def checking_store(request: pytest.FixtureRequest, s3_store: S3ObjectStore) -> S3ObjectStore:
    if s3_endpoint(request).is_moto:
        pytest.skip("moto does not check x-amz-content-sha256; CI runs this against the RGW")
    return s3_store


@contextlib.contextmanager
def altered_in_flight(store: S3ObjectStore, operation: str) -> Iterator[None]:
    store._client.meta.events.register(f"before-send.s3.{operation}", alter)
    try:
        yield
    finally:
        store._client.meta.events.unregister(f"before-send.s3.{operation}", alter)


async def test_a_part_altered_after_signing_is_refused_and_not_stored(
    checking_store: S3ObjectStore,
) -> None:
    store = checking_store
    upload = await store.create_multipart("objects/k")
    with (
        altered_in_flight(store, "UploadPart"),
        pytest.raises(StorageError, match="XAmzContentSHA256Mismatch"),
    ):
        await store.upload_part("objects/k", upload, 1, b"\x01" * PART)
    assert await store.list_parts("objects/k", upload) == []
    # The same part, unaltered, is taken.
    assert await store.upload_part("objects/k", upload, 1, b"\x01" * PART)
    await store.abort_multipart("objects/k", upload)


async def test_an_object_altered_after_signing_is_refused_and_not_stored(
    checking_store: S3ObjectStore,
) -> None:
    """A write under a part goes in one PUT (`blobs.write_encrypted`), checked the same way."""
    store = checking_store
    with (
        altered_in_flight(store, "PutObject"),
        pytest.raises(StorageError, match="XAmzContentSHA256Mismatch"),
    ):
        await store.put_new("objects/small", b"\x03" * 5000)
    with pytest.raises(ObjectNotFoundError):
        await store.head("objects/small")
    assert await store.put_new("objects/small", b"\x03" * 5000)


@pytest.mark.parametrize("write", ["UploadPart", "PutObject"])
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_every_write_is_signed_by_its_sha256_over_https_as_over_http(
    scheme: str, write: str
) -> None:
    """botocore signs S3 bodies over HTTPS with UNSIGNED-PAYLOAD unless told otherwise; that
    would leave a part, or an object written in one PUT, with no check on receipt."""
    client = make_s3_client(
        endpoint_url=f"{scheme}://s3.example.test",
        region="us-east-1",
        access_key_id="key",
        secret_access_key="secret",
    )
    seen: list[AWSPreparedRequest] = []

    def answer(request: Any, **_: Any) -> Any:
        seen.append(request)  # answered here: nothing leaves the process
        headers = HTTPHeaders()
        headers["ETag"] = '"e"'
        return AWSResponse(request.url, 200, headers, _Empty())

    def missing(request: Any, **_: Any) -> Any:
        return AWSResponse(request.url, 404, HTTPHeaders(), _Empty())

    client.meta.events.register(f"before-send.s3.{write}", answer)
    client.meta.events.register("before-send.s3.HeadObject", missing)  # `put_new` asks first
    store = S3ObjectStore(client=client, bucket="b")
    data = b"\x02" * PART
    if write == "UploadPart":
        await store.upload_part("k", "u", 1, data)
    else:
        assert await store.put_new("k", data)
    client.close()
    (sent,) = seen
    assert sent.headers["X-Amz-Content-SHA256"] == hashlib.sha256(data).hexdigest().encode()
    assert b"x-amz-content-sha256" in sent.headers["Authorization"]
    assert "Content-MD5" not in sent.headers
