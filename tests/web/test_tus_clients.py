"""Stock tus clients against a live server that crashes mid-upload: tuspy at every common
chunk size, and tus-js-client under Node with a file and an object-mode stream of 1 MiB
reads. Each upload is interrupted by a SIGKILL of the server, resumes from the offset the
restarted server reports, and the downloaded document must hash to the original.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tusclient.client import TusClient

from tests.fixtures.live import REPO_ROOT, LiveApp, LiveAppLauncher, LiveTenant, Pattern
from tests.fixtures.needs import missing

MiB = 1024 * 1024
SEGMENT = 64 * 1024
SIZE = 20 * MiB + 12345  # three 8 MiB parts, the last one short
JS_DIR = REPO_ROOT / "tests" / "js"
NODE_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAppLauncher]:
    launcher = LiveAppLauncher(tmp_path_factory.mktemp("tus-clients"), request)
    try:
        yield launcher
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
async def app(launcher: LiveAppLauncher) -> LiveApp:
    """The embedded defaults: SQLite and the local object store, 8 MiB parts."""
    return await launcher.start()


@pytest.fixture(scope="module")
async def tenant(app: LiveApp) -> LiveTenant:
    return await app.provision("Acme")


async def download(app: LiveApp, tenant: LiveTenant, document_id: str) -> bytes:
    async with app.http(timeout=60) as http:
        response = await http.get(
            f"/api/v1/documents/{document_id}/content", headers=tenant.user.auth
        )
    assert response.status_code == 200, response.text
    return response.content


def assert_progress(steps: list[tuple[int, int]], chunk: int) -> None:
    """Each PATCH stored all it carried but what ran past its last whole segment."""
    for before, after in steps:
        carried = min(chunk, SIZE - before)
        assert after == SIZE or carried - SEGMENT < after - before <= carried, (before, after)


@pytest.mark.parametrize("chunk_mib", [1, 2, 5, 8, 12])
async def test_tuspy_resumes_after_a_crash_at_any_chunk_size(
    launcher: LiveAppLauncher, app: LiveApp, tenant: LiveTenant, chunk_mib: int
) -> None:
    chunk = chunk_mib * MiB
    payload = Pattern(f"tuspy-{chunk_mib}").read(0, SIZE)
    meta = {"filename": f"tuspy-{chunk_mib}.bin", "folder_id": tenant.folder_id}
    endpoint = f"{app.base_url}/api/v1/uploads"

    def upload(url: str | None, stop_at: int) -> tuple[Any, list[tuple[int, int]]]:
        client = TusClient(endpoint, headers=dict(tenant.user.auth))
        uploader: Any = client.uploader(
            file_stream=io.BytesIO(payload), url=url, chunk_size=chunk, metadata=meta
        )
        steps = []
        while uploader.offset < stop_at:
            before = uploader.offset
            uploader.upload_chunk()
            steps.append((before, uploader.offset))
        return uploader, steps

    first, steps = await asyncio.to_thread(upload, None, SIZE // 2)
    url: str = first.url
    # The server dies between two PATCHes (its running digests with it) and comes back.
    await launcher.crash_and_restart(app)
    resumed, more = await asyncio.to_thread(upload, url, SIZE)

    assert more[0][0] == steps[-1][1]  # it went on from where the server said
    assert_progress(steps + more, chunk)
    answer: dict[str, str] = resumed.request.response_headers
    content = await download(app, tenant, answer["document-id"])
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert "Traceback" not in app.log()


@pytest.mark.parametrize(("source", "chunk"), [("file", 3 * MiB + 7), ("object-stream", 4 * MiB)])
async def test_tus_js_client_resumes_after_a_crash(
    launcher: LiveAppLauncher,
    app: LiveApp,
    tenant: LiveTenant,
    tmp_path: Path,
    source: str,
    chunk: int,
) -> None:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed: tus-js-client needs Node (v20 or later)")
    if not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        pytest.fail(
            f"tus-js-client is not installed: run `npm ci` in {JS_DIR.name} (scripts/test does)"
        )
    payload = Pattern(f"tus-js-{source}").read(0, SIZE)
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    options = {
        "endpoint": f"{app.base_url}/api/v1/uploads",
        "authorization": tenant.user.auth["Authorization"],
        "folderId": tenant.folder_id,
        "path": str(path),
        "source": source,
        "chunkSize": chunk,
    }
    process = await asyncio.create_subprocess_exec(
        node,
        "upload.mjs",
        json.dumps(options),
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            crashed = False
            async for raw in process.stdout:
                line = raw.decode().strip()
                lines.append(line)
                if (
                    not crashed
                    and line.startswith("accepted ")
                    and int(line.split()[1]) > SIZE // 3
                ):
                    # Mid-upload: the client's next PATCH meets a dead server, then retries.
                    crashed = True
                    await launcher.crash_and_restart(app)
            errors = (await process.stderr.read()).decode()
            assert await process.wait() == 0, (lines, errors)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert crashed, lines
    accepted = [int(line.split()[1]) for line in lines if line.startswith("accepted ")]
    assert accepted == sorted(accepted) and accepted[-1] == SIZE
    result = json.loads(lines[-1])
    assert result["documentVersion"] == "1"
    content = await download(app, tenant, result["documentId"])
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert "Traceback" not in app.log()
