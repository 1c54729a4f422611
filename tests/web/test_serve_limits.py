"""`clientvault serve` itself, over a real socket: request-head limits (review item 15) and
an access log without link secrets (review item 16)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.live import (
    CLIENTVAULT,
    LiveApp,
    _environment,
    _run_cli,
    _wait_healthy,
    free_port,
    to_toml,
)
from web.access_log import REDACTED, SecretPathFilter, redact
from web.settings import load_settings

RESET = b"(reset)"
SECRET = "Sup3rSecretLinkValue_abcdefghijklmnopqrstuvwx"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[LiveApp]:
    """`clientvault init` then `clientvault serve`, as an operator runs them."""
    port = free_port()
    data_dir = tmp_path / "data"
    config_path = tmp_path / "clientvault.toml"
    config_path.write_text(
        to_toml(
            {
                "data_dir": str(data_dir),
                "server": {
                    "host": "127.0.0.1",
                    "port": port,
                    "public_url": f"http://127.0.0.1:{port}",
                },
            }
        ),
        encoding="utf-8",
    )
    env = _environment(config_path)
    await _run_cli(config_path, env, ["init"])
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLIENTVAULT, "--config", str(config_path), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    app = LiveApp(
        base_url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data_dir,
        config_path=config_path,
        settings=load_settings(config_path, environ={}),
        log_path=log_path,
        process=process,
        env=env,
    )
    try:
        await _wait_healthy(app)
        yield app
    finally:
        app.stop()


async def _raw(port: int, head: bytes) -> bytes:
    """Send a request head as is; the status line that comes back, or RESET if the server
    closed the connection on us while we were still sending."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            writer.write(head)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 20)
        except ConnectionError:
            return RESET
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return line


async def test_serve_refuses_huge_and_numerous_request_headers(served: LiveApp) -> None:
    ok = await _raw(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok
    # 10 MB of headers: refused once the head passes the limit, long before 10 MB are read.
    big = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big * 1300 + b"\r\n"
    assert len(huge) > 10_000_000
    refused = await _raw(served.port, huge)
    assert refused.startswith(b"HTTP/1.1 400") or refused == RESET, refused
    # 5,000 tiny header lines fit in the byte limit but not in the line limit.
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: 1\r\n" % i for i in range(5000)
    )
    assert (await _raw(served.port, many + b"\r\n")).startswith(b"HTTP/1.1 431")
    assert served.alive()


async def test_serve_access_log_never_holds_link_secrets(served: LiveApp) -> None:
    async with served.http() as http:
        for path in (f"/invite/{SECRET}", f"/reset/{SECRET}", f"/unsubscribe/{SECRET}"):
            await http.get(path)
        await http.get("/healthz")
    for _ in range(100):  # the access line is written after the response
        if "/unsubscribe/" in served.log():
            break
        await asyncio.sleep(0.05)
    log = served.log()
    assert f"/invite/{REDACTED}" in log and f"/reset/{REDACTED}" in log, log
    assert f"/unsubscribe/{REDACTED}" in log, log
    assert SECRET not in log


def test_filter_rewrites_uvicorn_access_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/reset/{SECRET}?lang=fa", "1.1", 303),
        None,
    )
    assert SecretPathFilter().filter(record) is True
    assert record.getMessage() == f'127.0.0.1:5000 - "POST /reset/{REDACTED}?lang=fa HTTP/1.1" 303'
    assert redact(f"/s/{SECRET}/content") == f"/s/{REDACTED}/content"
    assert redact("/documents/1234") == "/documents/1234"
    assert redact("/reset") == "/reset"
