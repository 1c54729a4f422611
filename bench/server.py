"""A ClientVault server for the benchmarks: a scratch PostgreSQL database and a config on it,
the `clientvault` CLI, `clientvault serve` in its own process on a free loopback port, and a
check of the answers it gives."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg


def add_dsn_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (libpq URL) on which a scratch database is created",
    )


@contextlib.contextmanager
def scratch_database(dsn: str, *, keep: bool) -> Iterator[str]:
    """A new database on the server of `dsn`, dropped at the end unless `keep`; yields its
    DSN."""
    name = f"cv_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(dsn)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        if keep:
            print(f"kept database {name} (EXPLAIN ANALYZE there; drop it when done)")
        else:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_config(work: Path, dsn: str, port: int) -> Path:
    url = "postgresql+asyncpg" + dsn[dsn.index(":") :]
    config = work / "clientvault.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(work / 'data'))}\n"
        f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f"\n[database]\nurl = {json.dumps(url)}\n",
        encoding="utf-8",
    )
    return config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTVAULT__")}
    env["CLIENTVAULT_CONFIG"] = str(config)
    return env


def _clientvault() -> str:
    program = Path(sys.executable).parent / "clientvault"
    command = str(program) if program.exists() else shutil.which("clientvault")
    if command is None:
        raise RuntimeError("the clientvault command is not installed (pip install -e .)")
    return command


def cli(config: Path, *args: str, stdin: str | None = None) -> str:
    """Run `clientvault --config CONFIG ARGS...`; its last line of output."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [_clientvault(), "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=server_environment(config),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"clientvault {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def run_server(config: Path, port: int, log: Path, workers: int = 1) -> Iterator[Server]:
    """`clientvault serve` on 127.0.0.1:PORT with `workers` processes, until the end: the
    server an operator runs, with its HTTP protocol, logging and allocator settings."""
    env = server_environment(config)
    env["CLIENTVAULT__SERVER__HOST"] = "127.0.0.1"
    env["CLIENTVAULT__SERVER__PORT"] = str(port)
    env["CLIENTVAULT__SERVER__WORKERS"] = str(workers)
    # Stop at once when the bench is done: nothing is in flight by then.
    env["CLIENTVAULT__SERVER__SHUTDOWN_DRAIN_SECONDS"] = "0"
    with open(log, "wb") as output:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [_clientvault(), "--config", str(config), "serve"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not get ready: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def expect(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    if not response.content:
        return {}
    body: dict[str, Any] = response.json()
    return body
