"""`clientvault serve` itself, over a real socket: a private data directory (review item
10), request-head limits (review item 15) and an access log without link secrets (item 16)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

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
from web.app import create_app
from web.datadir import DataDirError
from web.headers import MAX_REQUEST_HEAD_BYTES
from web.settings import Settings, load_settings

RESET = b"(reset)"
SECRET = "Sup3rSecretLinkValue_abcdefghijklmnopqrstuvwx"


def spawn_serve(config_path: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`clientvault serve` in a process of its own, output to `log_path` (returns at once)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [CLIENTVAULT, "--config", str(config_path), "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def initialised(tmp_path: Path) -> tuple[Path, dict[str, str], int]:
    """A config file and `clientvault init` run on it: (config path, environment, port)."""
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
    return config_path, env, port


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[LiveApp]:
    """`clientvault init` then `clientvault serve`, as an operator runs them."""
    config_path, env, port = await initialised(tmp_path)
    data_dir = tmp_path / "data"
    log_path = tmp_path / "serve.log"
    process = spawn_serve(config_path, env, log_path)
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


async def _until_closed(port: int, data: bytes) -> bytes:
    """Send `data` as is; all the server answers until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _responses(port: int, data: bytes, count: int) -> list[bytes]:
    """Send `data` as is; the status lines of the first `count` responses, fewer if the
    server closes the connection first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses: list[bytes] = []
    try:
        writer.write(data)
        await writer.drain()
        while len(statuses) < count:
            line = await asyncio.wait_for(reader.readline(), 20)
            if not line:
                break
            statuses.append(line)
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return statuses


async def test_serve_refuses_huge_and_numerous_request_headers(served: LiveApp) -> None:
    ok = await _raw(served.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok
    # 10 MB of headers: refused once the head passes the limit, long before 10 MB are read.
    big = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big * 1300 + b"\r\n"
    assert len(huge) > 10_000_000
    refused = await _raw(served.port, huge)
    assert refused.startswith(b"HTTP/1.1 431") or refused == RESET, refused
    # One header line of 10 MB: two lines pass the line limit, so only the byte limit can
    # refuse it (an unbounded parser would hold all of it, then answer 200).
    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 10_000_000 + b"\r\n\r\n"
    refused = await _raw(served.port, line)
    assert refused.startswith(b"HTTP/1.1 431") or refused == RESET, refused
    # Just past the limit, all of it sent before the server answers: 431, not a reset, and
    # a whole answer before the connection closes.
    past = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * MAX_REQUEST_HEAD_BYTES
    answer = await _until_closed(served.port, past)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), answer
    assert b"content-length: %d" % len(body) in head.lower(), answer
    assert body == b"Request Header Fields Too Large"
    # 5,000 tiny header lines fit in the byte limit but not in the line limit.
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: 1\r\n" % i for i in range(5000)
    )
    assert (await _raw(served.port, many + b"\r\n")).startswith(b"HTTP/1.1 431")
    assert served.alive()


def _get(pad: int, body: bytes = b"") -> bytes:
    """A `GET /healthz` whose head is padded with an `X-Pad` header of `pad` bytes."""
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + length
    return head + b"X-Pad: " + b"a" * pad + b"\r\n\r\n" + body


async def test_serve_reads_a_head_up_to_the_limit_and_what_follows_it(served: LiveApp) -> None:
    # A head of almost 64 KiB, arriving in the same write as a 200 KiB body and a second
    # request: the head is read up to the limit, its body and the next request after it.
    near = MAX_REQUEST_HEAD_BYTES - 200
    first = _get(near, body=b"b" * 200_000)
    assert MAX_REQUEST_HEAD_BYTES - 200 < len(first) - 200_000 <= MAX_REQUEST_HEAD_BYTES
    statuses = await _responses(served.port, first + _get(near), 2)
    assert [s[:12] for s in statuses] == [b"HTTP/1.1 200"] * 2, statuses
    # The same, with the second head just past the limit: it is refused, not the first.
    statuses = await _responses(served.port, first + _get(MAX_REQUEST_HEAD_BYTES), 2)
    assert [s[:12] for s in statuses] == [b"HTTP/1.1 200", b"HTTP/1.1 431"], statuses
    # A head sent 8 KiB at a time is counted across reads.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        slow = _get(MAX_REQUEST_HEAD_BYTES)
        for at in range(0, len(slow), 8192):
            writer.write(slow[at : at + 8192])
            await writer.drain()
            await asyncio.sleep(0.001)
        status = await asyncio.wait_for(reader.readline(), 20)
    except ConnectionError:
        status = RESET
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status.startswith(b"HTTP/1.1 431") or status == RESET, status
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
    # `serve` logs each request once, by its route template; a raw path would be redacted.
    for route in ("/invite/", "/reset/", "/unsubscribe/"):
        assert route in log, log
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


async def test_data_directory_and_every_file_in_it_are_private(served: LiveApp) -> None:
    """Review item 10: the database with its -wal and -shm, the outbox (live links), the
    objects and the keys are the service account's alone."""
    admin_id = await served.cli("user", "add", "root@example.test", "--role", "admin")
    assert admin_id
    token = await served.cli("token", "create", "root@example.test")
    client_id = await served.cli("client", "add", "Acme")
    auth = {"Authorization": f"Bearer {token}"}
    async with served.http() as http:
        folder = await http.post(
            "/api/v1/folders", json={"client_id": client_id, "name": "Inbox"}, headers=auth
        )
        assert folder.status_code == 201, folder.text
        put = await http.put(
            f"/api/v1/folders/{folder.json()['id']}/files/report.pdf",
            content=b"%PDF" * 1000,
            headers=auth,
        )
        assert put.status_code == 201, put.text
        invited = await http.post(
            "/api/v1/invitations",
            json={"email": "new@example.test", "role": "client", "client_ids": [client_id]},
            headers=auth,
        )
        assert invited.status_code == 201, invited.text
    root = served.data_dir
    files = [p for p in root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"clientvault.db", "clientvault.db-wal", "clientvault.db-shm", "keys.json"} <= names
    assert any(p.suffix == ".eml" for p in files)
    assert any(p.is_relative_to(served.objects_dir) for p in files)
    assert (root.stat().st_mode & 0o777) == 0o700
    loose = {
        str(p.relative_to(root)): oct(p.stat().st_mode & 0o777)
        for p in [root, *root.rglob("*")]
        if (p.stat().st_mode & 0o777) != (0o700 if p.is_dir() else 0o600)
    }
    assert not loose


@pytest.mark.live
async def test_serve_refuses_a_data_directory_others_can_read(tmp_path: Path) -> None:
    config_path, env, _ = await initialised(tmp_path)
    data_dir = tmp_path / "data"
    data_dir.chmod(0o755)
    log_path = tmp_path / "serve.log"
    process = spawn_serve(config_path, env, log_path)
    for _ in range(600):
        if process.poll() is not None:
            break
        await asyncio.sleep(0.05)
    else:
        process.kill()
        process.wait()
        pytest.fail("serve started on a world-readable data directory")
    assert process.returncode != 0
    log = log_path.read_text(encoding="utf-8")
    assert "has mode 0755" in log and f"chmod 700 {data_dir}" in log, log


async def test_app_lifespan_refuses_a_group_readable_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o750)
    data_dir.chmod(0o750)
    with pytest.raises(DataDirError, match="chmod 700"):
        async with LifespanManager(create_app(Settings(data_dir=data_dir))):
            pass
