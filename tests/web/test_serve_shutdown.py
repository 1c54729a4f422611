"""`clientvault serve` on SIGTERM: readiness goes first, then the requests in flight get
`[server].shutdown_timeout_seconds`, and what is still running at the deadline is cut, a
download short of its length and never with wrong bytes (docs/operations.md, "Stopping a
node"). The cluster tests (tests/web/test_cluster_faults.py) show transfers finishing inside
the deadline through nginx; this one shows the deadline itself."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time

import httpx
import pytest

from tests.fixtures.live import CLIENTVAULT, LiveApp, LiveAppFactory, Pattern

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
DRAIN = 0.5
DEADLINE = 2.0


def serve(app: LiveApp) -> subprocess.Popen[bytes]:
    """`clientvault serve` on `app`'s configuration, with a short drain and deadline."""
    env = {
        **app.env,
        "CLIENTVAULT__SERVER__SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
        "CLIENTVAULT__SERVER__SHUTDOWN_TIMEOUT_SECONDS": str(DEADLINE),
    }
    with (app.data_dir.parent / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [CLIENTVAULT, "--config", str(app.config_path), "serve"],
            cwd=app.config_path.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def read_slowly(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], server: subprocess.Popen[bytes]
) -> tuple[bytes, bool]:
    """A slow reader that sends SIGTERM after its first piece: (what arrived, whether the
    stream was cut short of its Content-Length)."""
    received = bytearray()
    try:
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            async for piece in response.aiter_raw(64 * 1024):
                if not received:
                    server.send_signal(signal.SIGTERM)
                received += piece
                await asyncio.sleep(0.05)  # 32 MiB would take about 25 s
    except httpx.TransportError:
        return bytes(received), True
    return bytes(received), False


async def test_a_download_still_running_at_the_deadline_is_cut_with_only_right_bytes(
    live_app: LiveAppFactory,
) -> None:
    app = await live_app()
    tenant = await app.provision()
    data = Pattern("deadline").read(0, 32 * MiB)
    async with app.http() as http:
        put = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/slow.bin",
            content=data,
            headers=tenant.admin.auth,
        )
        assert put.status_code == 201, put.text
        document_id = put.json()["document_id"]
    app.stop()  # the same data directory, now under `serve` with a short deadline
    server = serve(app)
    try:
        async with app.http() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            started = time.monotonic()
            received, cut = await read_slowly(
                http, f"/api/v1/documents/{document_id}/content", tenant.user.auth, server
            )
            cut_after = time.monotonic() - started
        server.wait(DRAIN + DEADLINE + 30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert cut, "the download ran to its end"
    # Cut at the deadline (plus the drain and the app's own shutdown, seconds on a busy
    # machine), long before the slow reader would have had it all (about 25 s).
    assert DEADLINE <= cut_after < 15, cut_after
    assert 0 < len(received) < len(data)
    assert received == data[: len(received)]
