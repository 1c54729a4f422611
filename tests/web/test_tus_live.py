"""Resumable uploads against real servers: two app processes sharing one PostgreSQL database,
one S3 bucket and one keyring, as behind a load balancer.

A body cut off mid-PATCH, a third-party tus client (tuspy) that starts on one process and
finishes on the other, and two processes receiving the same final PATCH at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tusclient.client import TusClient

from tests.fixtures.live import LiveApp, LiveAppLauncher, LiveTenant, Pattern
from tests.fixtures.s3 import S3Endpoint, empty_bucket, s3_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
PART = 5 * MiB
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    return s3_endpoint(request)


@pytest.fixture(scope="module")
def bucket(endpoint: S3Endpoint) -> Iterator[tuple[S3Client, str]]:
    client = endpoint.client()
    name = f"tus-{uuid.uuid4().hex}"
    client.create_bucket(Bucket=name)
    try:
        yield client, name
    finally:
        empty_bucket(client, name)
        client.delete_bucket(Bucket=name)
        client.close()


@pytest.fixture(scope="module")
def launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAppLauncher]:
    launcher = LiveAppLauncher(tmp_path_factory.mktemp("tus-live"), request)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
async def pair(
    launcher: LiveAppLauncher, endpoint: S3Endpoint, bucket: tuple[S3Client, str]
) -> tuple[LiveApp, LiveApp]:
    """Process A on a fresh PostgreSQL database; process B on the same database, bucket and
    key file. Each has its own data directory, so they share nothing else."""
    storage = {
        "backend": "s3",
        "endpoint_url": endpoint.url,
        "bucket": bucket[1],
        "access_key_id": endpoint.access_key_id,
        "secret_access_key": endpoint.secret_access_key,
        "part_size_mib": PART // MiB,
    }
    a = await launcher.start(database="postgresql", config={"storage": storage})
    b = await launcher.start(
        config={
            "storage": storage,
            "database": {"url": a.settings.database.url},
            "keys": {"file": str(a.settings.keys_path)},
        }
    )
    return a, b


@pytest.fixture(scope="module")
async def tenant(pair: tuple[LiveApp, LiveApp]) -> LiveTenant:
    return await pair[0].provision("Acme")


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def create(app: LiveApp, tenant: LiveTenant, length: int, name: str) -> str:
    async with app.http() as http:
        response = await http.post(
            "/api/v1/uploads",
            headers={
                **TUS,
                **tenant.user.auth,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(filename=name, folder_id=tenant.folder_id),
            },
        )
    assert response.status_code == 201, response.text
    location: str = response.headers["location"]
    return location


async def patch(
    app: LiveApp, tenant: LiveTenant, url: str, offset: int, body: bytes
) -> httpx.Response:
    async with app.http(timeout=120) as http:
        return await http.patch(
            url,
            content=body,
            headers={
                **TUS,
                **tenant.user.auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )


async def offset_of(app: LiveApp, tenant: LiveTenant, url: str) -> int:
    async with app.http() as http:
        response = await http.head(url, headers={**TUS, **tenant.user.auth})
    assert response.status_code == 200, response.headers
    return int(response.headers["upload-offset"])


async def document(app: LiveApp, tenant: LiveTenant, document_id: str) -> tuple[Any, bytes]:
    async with app.http() as http:
        meta = await http.get(f"/api/v1/documents/{document_id}", headers=tenant.user.auth)
        content = await http.get(
            f"/api/v1/documents/{document_id}/content", headers=tenant.user.auth
        )
    assert meta.status_code == 200 and content.status_code == 200
    return meta.json(), content.content


def assert_quiet(*apps: LiveApp) -> None:
    for app in apps:
        log = app.log()
        assert "Traceback" not in log and "unhandled error" not in log, log


async def test_a_patch_cut_off_mid_body_resumes_from_its_last_whole_segment(
    pair: tuple[LiveApp, LiveApp], tenant: LiveTenant
) -> None:
    a, _ = pair
    size = 2 * PART + 777
    payload = Pattern("cut-off").read(0, size)
    url = await create(a, tenant, size, "cut-off.bin")

    reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
    try:
        lines = [
            f"PATCH {url} HTTP/1.1",
            f"Host: 127.0.0.1:{a.port}",
            f"Authorization: {tenant.user.auth['Authorization']}",
            "Tus-Resumable: 1.0.0",
            "Upload-Offset: 0",
            "Content-Type: application/offset+octet-stream",
            f"Content-Length: {size}",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        # The first part and 2 MiB of the second, then the connection breaks.
        sent = PART + 2 * MiB
        for start in range(0, sent, MiB):
            writer.write(payload[start : start + MiB])
            await writer.drain()
        deadline = time.monotonic() + 30
        while await offset_of(a, tenant, url) < PART:
            assert time.monotonic() < deadline, "the first part was never stored"
            await asyncio.sleep(0.05)
        assert not reader.at_eof()
    finally:
        writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    # The whole part survives, and the whole segments of the 2 MiB after it (staged).
    deadline = time.monotonic() + 30
    while (reached := await offset_of(a, tenant, url)) < PART + 2 * MiB:
        assert time.monotonic() < deadline, f"stuck at {reached}"
        await asyncio.sleep(0.05)
    assert reached == PART + 2 * MiB
    finished = await patch(a, tenant, url, reached, payload[reached:])

    assert finished.status_code == 204, finished.text
    meta, content = await document(a, tenant, finished.headers["document-id"])
    assert content == payload
    assert meta["versions"][0]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert_quiet(a)


async def test_tuspy_starts_on_one_process_and_finishes_on_the_other(
    pair: tuple[LiveApp, LiveApp], tenant: LiveTenant
) -> None:
    a, b = pair
    size = 3 * PART + 12345  # four parts
    payload = Pattern("tuspy").read(0, size)
    meta = {"filename": "tuspy.bin", "folder_id": tenant.folder_id}
    offsets: list[int] = []

    def start_on_a() -> str:
        client = TusClient(f"{a.base_url}/api/v1/uploads", headers=dict(tenant.user.auth))
        # Chunks of a part and a bit: the server keeps every whole segment, and tuspy goes on
        # from the offset the server reports, as tus clients do.
        uploader: Any = client.uploader(
            file_stream=io.BytesIO(payload), chunk_size=PART + 2 * MiB, metadata=meta
        )
        for _ in range(2):
            uploader.upload_chunk()
            offsets.append(uploader.offset)
        url: str = uploader.url
        return url

    url = await asyncio.to_thread(start_on_a)
    assert offsets == [PART + 2 * MiB, 2 * (PART + 2 * MiB)]

    async with b.http() as http:
        chunk = int((await http.options("/api/v1/uploads")).headers["clientvault-chunk-size"])
    rebased = url.replace(a.base_url, b.base_url)

    def finish_on_b() -> dict[str, str]:
        client = TusClient(f"{b.base_url}/api/v1/uploads", headers=dict(tenant.user.auth))
        # Given the URL, the uploader asks B for the offset: B knows it from the database.
        uploader: Any = client.uploader(
            file_stream=io.BytesIO(payload), url=rebased, chunk_size=chunk, metadata=meta
        )
        offsets.append(uploader.offset)
        uploader.upload()
        answer: dict[str, str] = uploader.request.response_headers
        return answer

    answer = await asyncio.to_thread(finish_on_b)

    assert offsets[2] == 2 * (PART + 2 * MiB)
    assert answer["document-version"] == "1"
    # Read back through A: either process serves what the other stored.
    version_meta, content = await document(a, tenant, answer["document-id"])
    assert content == payload
    (version,) = version_meta["versions"]
    assert version["size"] == size
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()
    assert_quiet(a, b)


async def test_both_processes_receiving_the_final_patch_make_one_version(
    pair: tuple[LiveApp, LiveApp], tenant: LiveTenant
) -> None:
    a, b = pair
    size = PART + 4096
    payload = Pattern("final-race").read(0, size)
    url = await create(a, tenant, size, "final-race.bin")
    first = await patch(b, tenant, url, 0, payload[:PART])
    assert first.status_code == 204, first.text

    answers = await asyncio.gather(
        patch(a, tenant, url, PART, payload[PART:]), patch(b, tenant, url, PART, payload[PART:])
    )

    assert [r.status_code for r in answers] == [204, 204], [r.text for r in answers]
    assert answers[0].headers["document-id"] == answers[1].headers["document-id"]
    assert answers[0].headers["document-version"] == answers[1].headers["document-version"]
    meta, content = await document(b, tenant, answers[0].headers["document-id"])
    assert len(meta["versions"]) == 1
    assert content == payload
    assert_quiet(a, b)


async def test_an_upload_whose_creating_post_was_cut_off_goes_at_once(
    pair: tuple[LiveApp, LiveApp],
) -> None:
    """Its address comes only with the answer the client never read: nobody can resume it,
    so it must not hold its length against the quota until it expires."""
    a, _ = pair
    tenant = await a.provision("Cut Off Co")
    size = 3 * MiB
    payload = Pattern("cut-off-post").read(0, size)
    async with a.http() as http:
        quota = await http.put(
            f"/api/v1/clients/{tenant.client_id}/quota",
            json={"quota_bytes": 5 * MiB},
            headers=tenant.admin.auth,
        )
    assert quota.status_code == 200, quota.text

    _, writer = await asyncio.open_connection("127.0.0.1", a.port)
    try:
        lines = [
            "POST /api/v1/uploads HTTP/1.1",
            f"Host: 127.0.0.1:{a.port}",
            f"Authorization: {tenant.user.auth['Authorization']}",
            "Tus-Resumable: 1.0.0",
            f"Upload-Length: {size}",
            f"Upload-Metadata: {metadata(filename='cut.bin', folder_id=tenant.folder_id)}",
            "Content-Type: application/offset+octet-stream",
            f"Content-Length: {size}",
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload[: 2 * MiB])
        await writer.drain()
    finally:
        writer.transport.abort()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def failed() -> list[dict[str, Any]]:
        async with a.http() as http:
            response = await http.get(
                "/api/v1/audit",
                params={"client_id": tenant.client_id, "action": "upload.failed"},
                headers=tenant.admin.auth,
            )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    deadline = time.monotonic() + 30
    while not (events := await failed()):
        assert time.monotonic() < deadline, "the cut-off upload is still there"
        await asyncio.sleep(0.1)
    assert [(e["details"]["name"], e["details"]["reason"]) for e in events] == [
        ("cut.bin", "the request that created it was cut off")
    ]

    # The 3 MiB it reserved are free again: another 3 MiB fit in the 5 MiB quota.
    async with a.http() as http:
        again = await http.post(
            "/api/v1/uploads",
            content=payload,
            headers={
                **TUS,
                **tenant.user.auth,
                "Upload-Length": str(size),
                "Upload-Metadata": metadata(filename="cut.bin", folder_id=tenant.folder_id),
                "Content-Type": "application/offset+octet-stream",
            },
        )
    assert again.status_code == 201, again.text
    _, content = await document(a, tenant, again.headers["document-id"])
    assert content == payload
    assert_quiet(a)
