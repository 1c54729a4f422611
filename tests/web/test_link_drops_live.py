"""A stock tus client (tuspy) sends 200 MiB through an upload-request link to a live
server that crashes half-way, and resumes where the server says."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from tusclient.client import TusClient

from tests.fixtures.dates import soon
from tests.fixtures.live import LiveApp, LiveAppLauncher, Pattern

MiB = 1024 * 1024
SIZE = 200 * MiB + 4321
CHUNK = 16 * MiB


@pytest.fixture(scope="module")
def launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAppLauncher]:
    launcher = LiveAppLauncher(tmp_path_factory.mktemp("link-drops"), request)
    try:
        yield launcher
    finally:
        launcher.stop_all()


async def test_tuspy_resumes_an_interrupted_200_mib_drop(launcher: LiveAppLauncher) -> None:
    # Unscanned drops: 200 MiB is past any sensible clamd stream limit (and not what is tested).
    app: LiveApp = await launcher.start(config={"links": {"scan_drops": False}})
    tenant = await app.provision("Acme")
    async with app.http() as http:
        created = await http.post(
            f"/api/v1/folders/{tenant.folder_id}/links",
            json={"kind": "upload", "expires_at": soon()},
            headers=tenant.admin.auth,
        )
    assert created.status_code == 201, created.text
    endpoint = created.json()["url"] + "/uploads"
    payload = Pattern("link-drop").read(0, SIZE)
    meta = {
        "filename": "archive.tar",
        "uploader_name": "Co-counsel LLP",
        "uploader_email": "paralegal@cocounsel.example",
    }

    def upload(url: str | None, stop_at: int) -> Any:
        # No credentials at all: the link is the visitor's only key.
        client = TusClient(endpoint)
        uploader: Any = client.uploader(
            file_stream=io.BytesIO(payload), url=url, chunk_size=CHUNK, metadata=meta
        )
        while uploader.offset < stop_at:
            uploader.upload_chunk()
        return uploader

    first = await asyncio.to_thread(upload, None, SIZE // 2)
    stopped_at = first.offset
    await launcher.crash_and_restart(app)
    resumed = await asyncio.to_thread(upload, first.url, SIZE)
    assert resumed.url == first.url and resumed.offset == SIZE
    assert stopped_at < SIZE
    # The visitor is told nothing of the document it became.
    assert not any(k.startswith("document-") for k in resumed.request.response_headers)

    [document] = await app.documents_in(tenant.folder_id, tenant.admin)
    assert document["name"] == "archive.tar"
    digest = hashlib.sha256()
    async with app.http(timeout=300) as http:
        url = f"/api/v1/documents/{document['id']}/content"
        async with http.stream("GET", url, headers=tenant.admin.auth) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert "Traceback" not in app.log()
