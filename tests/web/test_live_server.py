"""The real server over real sockets: bodies that break off, an object store that goes away
mid-upload, ranged downloads, and a tampered object cut short before its bad segment."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from storage import make_s3_client
from tests.fixtures.live import (
    LiveApp,
    LiveAppFactory,
    LiveAppLauncher,
    LiveTenant,
    Pattern,
    free_port,
)
from vault.crypto.segments import HEADER_SIZE, TAG_SIZE

MiB = 1024 * 1024
SEGMENT = 64 * 1024
STORED_SEGMENT = SEGMENT + TAG_SIZE
PROBLEM = "application/problem+json"


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAppLauncher]:
    launcher = LiveAppLauncher(tmp_path_factory.mktemp("live"), request)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
async def local_app(local_launcher: LiveAppLauncher) -> LiveApp:
    """One server on the embedded defaults (SQLite, local objects) for this module's tests:
    starting one takes seconds. Each test works in a folder of its own."""
    return await local_launcher.start(config={"storage": {"part_size_mib": 5}})


@pytest.fixture(scope="module")
async def tenant(local_app: LiveApp) -> LiveTenant:
    return await local_app.provision("Acme")


@pytest.fixture
async def folder(local_app: LiveApp, tenant: LiveTenant) -> str:
    return await local_app.create_folder(tenant.admin, tenant.client_id, uuid.uuid4().hex)


async def wait_until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting until {what}")
        await asyncio.sleep(0.02)


def request_head(app: LiveApp, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{app.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def part_files(app: LiveApp) -> list[Path]:
    return [p for upload in app.pending_uploads() for p in upload.iterdir() if p.name.isdigit()]


async def abandon_upload(
    app: LiveApp,
    tenant: LiveTenant,
    folder: str,
    *,
    declared: int,
    body: bytes,
    ready: Callable[[], bool] | None,
) -> None:
    """Announce `declared` bytes, send `body` (fewer), wait until `ready()`, then hang up.
    With no `ready`, a moment for the server to read the body: one under a part leaves
    nothing in the store until it is whole, so there is no sign on disk to wait for."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    try:
        writer.write(
            request_head(
                app,
                "PUT",
                f"/api/v1/folders/{folder}/files/abandoned.bin",
                {**tenant.user.auth, "Content-Length": str(declared)},
            )
        )
        for offset in range(0, len(body), MiB):
            writer.write(body[offset : offset + MiB])
            await writer.drain()
        # The server must be part-way through the upload when the client goes: else an empty
        # multipart area would prove nothing.
        if ready is None:
            await asyncio.sleep(0.5)
        else:
            await wait_until(ready, within=10, what="the server is storing the upload")
        assert not reader.at_eof()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def assert_nothing_stored(
    app: LiveApp, tenant: LiveTenant, folder: str, objects_before: list[Path], log_from: int
) -> None:
    await wait_until(
        lambda: not app.pending_uploads(), within=10, what="the multipart upload is aborted"
    )
    await asyncio.sleep(0.2)  # nothing may complete after the abort
    assert app.pending_uploads() == []
    assert app.stored_objects() == objects_before
    assert await app.documents_in(folder, tenant.admin) == []
    log = app.log()[log_from:]
    assert "Traceback" not in log and "unhandled error" not in log, log


# --- Bodies that break off -----------------------------------------------------------------


async def test_body_shorter_than_content_length_stores_nothing(
    local_app: LiveApp, tenant: LiveTenant, folder: str
) -> None:
    before, log_from = local_app.stored_objects(), len(local_app.log())

    await abandon_upload(
        local_app,
        tenant,
        folder,
        declared=MiB,
        body=Pattern("short").read(0, 1000),
        # Under a part: it would have gone to the store in one PUT, once whole.
        ready=None,
    )

    await assert_nothing_stored(local_app, tenant, folder, before, log_from)


async def test_client_gone_after_half_of_20_mib_stores_nothing(
    local_app: LiveApp, tenant: LiveTenant, folder: str
) -> None:
    before, log_from = local_app.stored_objects(), len(local_app.log())

    await abandon_upload(
        local_app,
        tenant,
        folder,
        declared=20 * MiB,
        body=Pattern("half").read(0, 10 * MiB),
        # A 5 MiB part is on disk: the abort has parts to remove, not just an empty upload.
        ready=lambda: bool(part_files(local_app)),
    )

    await assert_nothing_stored(local_app, tenant, folder, before, log_from)


# --- Downloads -----------------------------------------------------------------------------


async def upload(app: LiveApp, tenant: LiveTenant, folder: str, name: str, data: bytes) -> str:
    async with app.http() as http:
        response = await http.put(
            f"/api/v1/folders/{folder}/files/{name}", content=data, headers=tenant.user.auth
        )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def test_range_downloads_of_20_mib_over_a_socket(
    local_app: LiveApp, tenant: LiveTenant, folder: str
) -> None:
    size = 20 * MiB
    data = Pattern("ranges").read(0, size)
    document = await upload(local_app, tenant, folder, "ranges.bin", data)
    url = f"/api/v1/documents/{document}/content"

    async with local_app.http() as http:
        whole = await http.get(url, headers=tenant.user.auth)
        assert whole.status_code == 200
        assert whole.headers["content-length"] == str(size)
        assert whole.content == data

        ranges = [
            (0, 0),
            (SEGMENT - 1, SEGMENT),  # the two sides of a segment boundary
            (5 * MiB - 3, 5 * MiB + 2),  # across a stored part boundary
            (1234567, 15 * MiB + 89),  # many segments, starting and ending mid-segment
            (size - SEGMENT - 10, size - 1),  # into the short final segment
        ]
        for first, last in ranges:
            response = await http.get(
                url, headers={**tenant.user.auth, "Range": f"bytes={first}-{last}"}
            )
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
            assert response.headers["content-length"] == str(last - first + 1)
            assert response.content == data[first : last + 1], (first, last)

        suffix = await http.get(url, headers={**tenant.user.auth, "Range": "bytes=-100000"})
        assert suffix.status_code == 206
        assert suffix.content == data[-100000:]


async def read_until_failure(response: httpx.Response, into: bytearray) -> Exception | None:
    """Append the body to `into` as it arrives; the error that cut it short, if one did."""
    try:
        async for chunk in response.aiter_raw():
            into += chunk
    except httpx.TransportError as exc:
        return exc
    return None


async def test_tampered_object_is_cut_short_before_the_bad_segment(
    local_app: LiveApp, tenant: LiveTenant, folder: str
) -> None:
    size = 20 * MiB
    data = Pattern("tampered").read(0, size)
    before = set(local_app.stored_objects())
    document = await upload(local_app, tenant, folder, "tampered.bin", data)
    (stored,) = set(local_app.stored_objects()) - before
    bad_segment = size // SEGMENT // 2
    offset = HEADER_SIZE + bad_segment * STORED_SEGMENT + 1000
    with stored.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))

    received = bytearray()
    async with local_app.http() as http:
        async with http.stream(
            "GET", f"/api/v1/documents/{document}/content", headers=tenant.user.auth
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(size)
            error = await read_until_failure(response, received)
        assert isinstance(error, httpx.RemoteProtocolError), error

    # Every byte that did arrive is right, and none comes from the bad segment or after.
    assert 0 < len(received) <= bad_segment * SEGMENT
    assert received == data[: len(received)]

    async with local_app.http() as http:
        events = await http.get(
            "/api/v1/audit",
            params={"action": "document.integrity_failed", "document_id": document},
            headers=tenant.admin.auth,
        )
    assert events.status_code == 200, events.text
    (event,) = events.json()["events"]
    assert event["action"] == "document.integrity_failed"
    assert event["outcome"] == "error"


# --- The object store going away -----------------------------------------------------------


@pytest.fixture
def moto_dedicated() -> Iterator[ThreadedMotoServer]:
    """A moto server of this test's own, which the test stops part-way."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        yield server
    finally:
        stop_moto(server)


def stop_moto(server: ThreadedMotoServer) -> None:
    """Stop serving and close the listening socket (which `stop()` alone leaves open, so
    new connections would hang in its backlog instead of being refused)."""
    if getattr(server, "_thread", None) is not None:
        server.stop()
    wsgi_server = getattr(server, "_server", None)
    if wsgi_server is not None:
        wsgi_server.server_close()


async def test_s3_outage_mid_upload_answers_503_and_records_nothing(
    live_app: LiveAppFactory, moto_dedicated: ThreadedMotoServer
) -> None:
    host, port = moto_dedicated.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"outage-{uuid.uuid4().hex[:12]}"
    s3 = make_s3_client(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    try:
        s3.create_bucket(Bucket=bucket)
    finally:
        s3.close()
    app = await live_app(
        config={
            "storage": {
                "backend": "s3",
                "endpoint_url": endpoint,
                "bucket": bucket,
                "access_key_id": "testing",
                "secret_access_key": "testing",
                "part_size_mib": 5,
            }
        }
    )
    tenant = await app.provision("Initech")

    size, stop_after = 30 * MiB, 8 * MiB
    sent = 0
    stopped = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for chunk in Pattern("outage").chunks(size):
            if sent >= stop_after and not stopped.is_set():
                await asyncio.to_thread(stop_moto, moto_dedicated)
                stopped.set()
            yield chunk
            sent += len(chunk)
            await asyncio.sleep(0.05)

    started = time.monotonic()
    async with app.http(timeout=60) as http:
        response = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/outage.bin",
            content=body(),
            headers={**tenant.user.auth, "Content-Length": str(size)},
        )
    elapsed = time.monotonic() - started

    assert stopped.is_set()
    assert response.status_code == 503, (response.status_code, response.text, app.log())
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Object store unavailable"
    assert elapsed < 30, elapsed

    assert await app.documents_in(tenant.folder_id, tenant.admin) == []
    with contextlib.closing(sqlite3.connect(app.data_dir / "clientvault.db")) as db:
        assert db.execute("SELECT count(*) FROM documents").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM versions").fetchone() == (0,)
