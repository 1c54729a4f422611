"""botocore's failures become store errors, each telling the operator what to look at."""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from storage import (
    BucketNotFoundError,
    ObjectNotFoundError,
    S3ObjectStore,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
    make_s3_client,
)
from tests.fixtures.s3 import S3Endpoint, free_port, s3_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def read(store: S3ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([piece async for piece in store.read(key, start, end)])


# Against a server


async def test_missing_bucket(s3_client: S3Client) -> None:
    bucket = f"t-missing-{uuid.uuid4().hex[:12]}"
    store = S3ObjectStore(client=s3_client, bucket=bucket)
    with pytest.raises(BucketNotFoundError, match=bucket):
        await store.check()
    with pytest.raises(BucketNotFoundError, match=bucket) as raised:
        await store.create_multipart("objects/k")
    assert isinstance(raised.value.__cause__, ClientError)
    with pytest.raises(BucketNotFoundError):
        await store.list_multipart_uploads()
    with pytest.raises(BucketNotFoundError):
        _ = [info async for info in store.list()]


def _set_moto_auth(url: str, free_requests: str) -> None:
    # moto checks signatures only after this many requests; "inf" turns the check off again.
    request = urllib.request.Request(  # noqa: S310 - an http URL of our own server
        f"{url}/moto-api/reset-auth",
        data=free_requests.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert response.status == 200


@pytest.fixture
def authenticating_endpoint(
    request: pytest.FixtureRequest, s3_bucket: tuple[S3Client, str]
) -> Iterator[S3Endpoint]:
    """The S3 endpoint with signature checks on (moto has them off unless told)."""
    endpoint = s3_endpoint(request)
    if not endpoint.is_moto:
        yield endpoint
        return
    _set_moto_auth(endpoint.url, "0")
    try:
        yield endpoint
    finally:
        _set_moto_auth(endpoint.url, "inf")


async def test_wrong_credentials(
    authenticating_endpoint: S3Endpoint, s3_bucket: tuple[S3Client, str]
) -> None:
    _, bucket = s3_bucket
    wrong = S3Endpoint(
        url=authenticating_endpoint.url,
        access_key_id="WRONGACCESSKEY",
        secret_access_key="wrong-secret",
    )
    client = wrong.client(max_attempts=1)
    try:
        store = S3ObjectStore(client=client, bucket=bucket)
        with pytest.raises(StorageAccessDeniedError, match="check the credentials"):
            await store.check()
        with pytest.raises(StorageAccessDeniedError, match="check the credentials") as raised:
            await store.create_multipart("objects/k")
        assert isinstance(raised.value.__cause__, ClientError)
        with pytest.raises(StorageAccessDeniedError):
            await read(store, "objects/k", 0, 10)
        with pytest.raises(StorageAccessDeniedError):
            _ = [info async for info in store.list()]
    finally:
        client.close()


async def test_unreachable_endpoint_fails_fast() -> None:
    port = free_port()  # nothing listens there any more
    client = make_s3_client(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=1,
    )
    try:
        store = S3ObjectStore(client=client, bucket="anything")
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError) as raised:
            await store.check()
        assert isinstance(raised.value.__cause__, EndpointConnectionError)
        with pytest.raises(StorageUnavailableError):
            await store.create_multipart("objects/k")
        with pytest.raises(StorageUnavailableError):
            await read(store, "objects/k")
        assert time.monotonic() - started < 5
    finally:
        client.close()


async def test_silent_endpoint_times_out() -> None:
    # A listening socket nobody accepts on: connections succeed, answers never come.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = make_s3_client(
            endpoint_url=f"http://127.0.0.1:{port}",
            region="us-east-1",
            access_key_id="testing",
            secret_access_key="testing",
            max_attempts=1,
            connect_timeout=1,
            read_timeout=0.3,
        )
        try:
            store = S3ObjectStore(client=client, bucket="anything")
            with pytest.raises(StorageUnavailableError) as raised:
                await store.check()
            assert isinstance(raised.value.__cause__, ReadTimeoutError)
        finally:
            client.close()


async def test_missing_upload(s3_store: S3ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        await s3_store.list_parts("objects/k", "no-such-upload")
    await s3_store.abort_multipart("objects/k", "no-such-upload")


async def test_prefix_is_added_and_stripped(s3_bucket: tuple[S3Client, str]) -> None:
    client, bucket = s3_bucket
    store = S3ObjectStore(client=client, bucket=bucket, prefix="/install-1//")
    other = S3ObjectStore(client=client, bucket=bucket, prefix="install-10")
    assert store.prefix == "install-1/"
    for s, key in [(store, "objects/a"), (other, "objects/b")]:
        upload_id = await s.create_multipart(key)
        etag = await s.upload_part(key, upload_id, 1, key.encode())
        await s.complete_multipart(key, upload_id, [(1, etag)])
    pending = await store.create_multipart("objects/pending")

    raw = client.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in raw.get("Contents", [])) == [
        "install-1/objects/a",
        "install-10/objects/b",
    ]
    assert [info.key async for info in store.list()] == ["objects/a"]
    assert [info.key async for info in other.list("objects/")] == ["objects/b"]
    assert [(u.key, u.upload_id) for u in await store.list_multipart_uploads()] == [
        ("objects/pending", pending)
    ]
    assert await other.list_multipart_uploads() == []
    assert (await store.head("objects/a")).key == "objects/a"
    assert await read(store, "objects/a") == b"objects/a"


# Every translation, without a server


@pytest.fixture(scope="module")
def offline_client() -> Iterator[S3Client]:
    client = make_s3_client(
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def stubber(offline_client: S3Client) -> Iterator[Stubber]:
    with Stubber(offline_client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def offline_store(offline_client: S3Client) -> S3ObjectStore:
    return S3ObjectStore(client=offline_client, bucket="the-bucket")


async def call(store: S3ObjectStore, method: str) -> None:
    if method == "head_object":
        await store.head("k")
    elif method == "get_object":
        await read(store, "k", 0, 10)
    elif method == "create_multipart_upload":
        await store.create_multipart("k")
    elif method == "upload_part":
        await store.upload_part("k", "u", 1, b"x")
    elif method == "complete_multipart_upload":
        await store.complete_multipart("k", "u", [(1, "e")])
    elif method == "head_bucket":
        await store.check()
    elif method == "list_objects_v2":
        _ = [info async for info in store.list()]
    else:
        raise AssertionError(method)


@pytest.mark.parametrize(
    ("method", "code", "status", "error", "message"),
    [
        ("head_object", "404", 404, ObjectNotFoundError, "'k'"),
        ("get_object", "NoSuchKey", 404, ObjectNotFoundError, "'k'"),
        ("upload_part", "NoSuchUpload", 404, ObjectNotFoundError, "'u'"),
        ("complete_multipart_upload", "NoSuchUpload", 404, ObjectNotFoundError, "'u'"),
        ("create_multipart_upload", "NoSuchBucket", 404, BucketNotFoundError, "the-bucket"),
        ("list_objects_v2", "NoSuchBucket", 404, BucketNotFoundError, "the-bucket"),
        ("head_bucket", "404", 404, BucketNotFoundError, "the-bucket"),
        ("head_bucket", "403", 403, StorageAccessDeniedError, "check the credentials"),
        ("get_object", "AccessDenied", 403, StorageAccessDeniedError, "check the credentials"),
        ("create_multipart_upload", "InvalidAccessKeyId", 403, StorageAccessDeniedError, "the"),
        ("upload_part", "SignatureDoesNotMatch", 403, StorageAccessDeniedError, "credentials"),
        ("upload_part", "SlowDown", 503, StorageUnavailableError, "SlowDown"),
        ("get_object", "InternalError", 500, StorageUnavailableError, "InternalError"),
        ("complete_multipart_upload", "EntityTooSmall", 400, StorageError, "EntityTooSmall"),
        ("complete_multipart_upload", "InvalidPart", 400, StorageError, "InvalidPart"),
        ("create_multipart_upload", "InvalidArgument", 400, StorageError, "InvalidArgument"),
    ],
)
async def test_client_errors_are_translated(
    stubber: Stubber,
    offline_store: S3ObjectStore,
    method: str,
    code: str,
    status: int,
    error: type[StorageError],
    message: str,
) -> None:
    stubber.add_client_error(method, service_error_code=code, http_status_code=status)
    with pytest.raises(StorageError, match=message) as raised:
        await call(offline_store, method)
    assert type(raised.value) is error
    assert isinstance(raised.value.__cause__, ClientError)


async def test_missing_upload_or_key_is_fine_to_remove(
    stubber: Stubber, offline_store: S3ObjectStore
) -> None:
    stubber.add_client_error("abort_multipart_upload", "NoSuchUpload", http_status_code=404)
    stubber.add_client_error("delete_object", "NoSuchKey", http_status_code=404)
    await offline_store.abort_multipart("k", "u")
    await offline_store.delete("k")


@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (ConnectionClosedError(endpoint_url="http://s3"), StorageUnavailableError),
        (EndpointConnectionError(endpoint_url="http://s3"), StorageUnavailableError),
        (ReadTimeoutError(endpoint_url="http://s3"), StorageUnavailableError),
        (NoCredentialsError(), StorageAccessDeniedError),
    ],
)
async def test_botocore_errors_are_translated(
    offline_client: S3Client,
    offline_store: S3ObjectStore,
    raised: Exception,
    error: type[StorageError],
) -> None:
    def fail(**kwargs: Any) -> None:
        raise raised

    offline_client.meta.events.register("before-call.s3.HeadBucket", fail)
    try:
        with pytest.raises(error) as caught:
            await offline_store.check()
    finally:
        offline_client.meta.events.unregister("before-call.s3.HeadBucket", fail)
    assert caught.value.__cause__ is raised
