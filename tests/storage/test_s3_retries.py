"""Transient S3 failures are tried again: a part whose upload fails now and then (a sealed
part's body is a memoryview, which botocore cannot rewind for its own retry), and a ranged
GET whose body breaks off (read straight into the read's own buffer, below botocore).

The store talks to the S3 server through a proxy that answers `500 InternalError` to the
first few `UploadPart` requests, cuts off the body of the first few ranged GETs half-way,
and forwards everything else unchanged.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from storage import S3ObjectStore, StorageUnavailableError, make_s3_client
from tests.fixtures.s3 import S3Endpoint, s3_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
FAILURE = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
)
# Hop-by-hop, or set again by the proxy's own server and client.
SKIPPED = {"connection", "expect", "transfer-encoding", "content-length", "server", "date"}
RELAYED_AS_IS = {"content-length"}


class FlakyProxy(ThreadingHTTPServer):
    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        target = urlsplit(upstream)
        self.upstream = (target.hostname or "127.0.0.1", target.port or 80)
        self.failures_left = 0
        self.part_requests = 0
        self.cuts_left = 0
        self.ranged_gets = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers `Expect: 100-continue`, as S3 does
    server: FlakyProxy

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.command == "PUT" and "partNumber=" in self.path:
            with self.server.lock:
                self.server.part_requests += 1
                fail = self.server.failures_left > 0
                self.server.failures_left -= fail
            if fail:
                self._answer(500, [("Content-Type", "application/xml")], FAILURE)
                return
        cut = False
        if self.command == "GET" and "Range" in self.headers:
            with self.server.lock:
                self.server.ranged_gets += 1
                cut = self.server.cuts_left > 0
                self.server.cuts_left -= cut
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            self._answer(answer.status, answer.getheaders(), answer.read(), cut=cut)
        finally:
            upstream.close()

    def _answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, *, cut: bool = False
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            as_is = self.command == "HEAD" and name.lower() in RELAYED_AS_IS
            if as_is or name.lower() not in SKIPPED:
                self.send_header(name, value)
        if self.command != "HEAD":  # a HEAD answer's length is the object's, as it came
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:
            # Half the promised bytes, then the connection goes.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[FlakyProxy]:
    server = FlakyProxy(s3_endpoint(request).url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def store(
    request: pytest.FixtureRequest, proxy: FlakyProxy, s3_bucket: tuple[S3Client, str]
) -> Iterator[S3ObjectStore]:
    endpoint: S3Endpoint = s3_endpoint(request)
    client = make_s3_client(
        endpoint_url=proxy.url,
        region="us-east-1",
        access_key_id=endpoint.access_key_id,
        secret_access_key=endpoint.secret_access_key,
        max_attempts=3,  # tries in all, the first included
    )
    try:
        yield S3ObjectStore(client=client, bucket=s3_bucket[1])
    finally:
        client.close()


async def test_a_failed_part_upload_is_retried_with_the_same_bytes(
    store: S3ObjectStore, proxy: FlakyProxy, s3_bucket: tuple[S3Client, str]
) -> None:
    part = bytearray(b"sealed part " * (MiB // 2))
    upload_id = await store.create_multipart("objects/retried")
    proxy.failures_left = 2

    etag = await store.upload_part("objects/retried", upload_id, 1, memoryview(part))

    assert proxy.part_requests == 3
    await store.complete_multipart("objects/retried", upload_id, [(1, etag)])
    client, bucket = s3_bucket
    stored = client.get_object(Bucket=bucket, Key="objects/retried")["Body"].read()
    assert stored == part


async def test_a_part_failing_every_attempt_is_a_clear_store_error(
    store: S3ObjectStore, proxy: FlakyProxy
) -> None:
    upload_id = await store.create_multipart("objects/failing")
    proxy.failures_left = 100

    with pytest.raises(StorageUnavailableError, match="kept failing on UploadPart"):
        await store.upload_part("objects/failing", upload_id, 1, memoryview(bytearray(MiB)))

    assert proxy.part_requests == 3
    await store.abort_multipart("objects/failing", upload_id)


async def test_a_ranged_get_cut_off_mid_body_is_fetched_again(
    store: S3ObjectStore, proxy: FlakyProxy, s3_bucket: tuple[S3Client, str]
) -> None:
    client, bucket = s3_bucket
    data = bytes(range(256)) * (12 * MiB // 256)
    client.put_object(Bucket=bucket, Key="objects/cut", Body=data)
    proxy.cuts_left = 2

    pieces = [bytes(piece) async for piece in store.read("objects/cut")]

    assert b"".join(pieces) == data
    # Two windows were cut off and fetched again.
    assert proxy.cuts_left == 0
    assert proxy.ranged_gets == len(pieces) + 2
