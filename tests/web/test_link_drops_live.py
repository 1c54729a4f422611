"""The issue's Must-show, end to end on a live server: a stock tus client (tuspy) sends
200 MiB through an upload-request link, the server crashes half-way, the client resumes where
the server says; the visitor can read nothing back, and the client's staff get one email."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tusclient.client import TusClient

from tests.fixtures.dates import soon
from tests.fixtures.live import LiveApp, LiveAppLauncher, Pattern
from tests.fixtures.smtp import SMTPSink, wait_for_mail

MiB = 1024 * 1024
SIZE = 200 * MiB + 4321
CHUNK = 16 * MiB
WINDOW = 2  # seconds: the batch window for drop emails
STAFF = "staff-acme@example.test"


@pytest.fixture(scope="module")
def launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAppLauncher]:
    launcher = LiveAppLauncher(tmp_path_factory.mktemp("link-drops"), request)
    try:
        yield launcher
    finally:
        launcher.stop_all()


async def test_tuspy_resumes_an_interrupted_200_mib_drop(
    launcher: LiveAppLauncher, smtp_sink: SMTPSink
) -> None:
    # Unscanned drops: 200 MiB is past any sensible clamd stream limit (and not what is tested).
    app: LiveApp = await launcher.start(
        config={
            "links": {"scan_drops": False},
            "smtp": {"host": smtp_sink.host, "port": smtp_sink.port, "starttls": False},
            "notify": {"batch_window_seconds": WINDOW},
        }
    )
    tenant = await app.provision("Acme")
    # Staff assigned to the client, with a password (only such users are emailed).
    await app.cli(
        "user",
        "add",
        STAFF,
        "--role",
        "staff",
        "--client",
        "Acme",
        "--password-stdin",
        stdin=b"correct horse battery staple 42\n",
    )
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
    finished = time.monotonic()

    [document] = await app.documents_in(tenant.folder_id, tenant.admin)
    assert document["name"] == "archive.tar"
    token = created.json()["url"].rsplit("/s/", 1)[1]
    head = payload[:64]
    async with app.http() as visitor:
        # Without credentials, nothing of the drop comes back: not its bytes, not its name.
        for method, path in (
            ("GET", f"/s/{token}"),
            ("GET", f"/s/{token}/content"),
            ("GET", f"/s/{token}/uploads"),
            ("GET", resumed.url),
            ("GET", f"/api/v1/documents/{document['id']}"),
            ("GET", f"/api/v1/documents/{document['id']}/content"),
            ("GET", f"/api/v1/folders/{tenant.folder_id}"),
            ("GET", f"/documents/{document['id']}"),
        ):
            response = await visitor.request(method, path)
            assert head not in response.content, path
            assert "archive.tar" not in response.text, path
            assert document["id"] not in response.text, path
            if path != f"/s/{token}":  # the drop page itself, with its form and no files
                assert response.status_code in (302, 303, 401, 404, 405), (path, response)
        # The upload URL answers tus' HEAD with its offset and nothing that names the document.
        probe = await visitor.head(resumed.url, headers={"Tus-Resumable": "1.0.0"})
        assert not any(k.lower().startswith("document-") for k in probe.headers), probe.headers
        assert probe.headers.get("location") is None

    # The client's staff hear of the drop once, within the batch window (plus the notifier's
    # round), and the email carries neither the token nor the upload's address.
    message = await wait_for_mail(smtp_sink, STAFF, seconds=WINDOW + 15)
    assert time.monotonic() - finished < WINDOW + 15
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "archive.tar" in body.get_content()
    assert "Co-counsel LLP" in body.get_content()
    assert token not in message.as_string()
    digest = hashlib.sha256()
    async with app.http(timeout=300) as http:
        url = f"/api/v1/documents/{document['id']}/content"
        async with http.stream("GET", url, headers=tenant.admin.auth) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    await asyncio.sleep(WINDOW + 6)  # another batch window and notifier round: no second email
    assert len(smtp_sink.messages) == 1, [m["Subject"] for _, m in smtp_sink.messages]
    assert "Traceback" not in app.log()
    assert token not in app.log()
