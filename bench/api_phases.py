"""What the API and downloads benchmarks share: a server on S3 with the bench's account,
transfers through the HTTP API, checked as they arrive, and a big folder filled through the
vault services for the listing."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import psutil

from bench.common import PatternSource, temporary_bucket
from bench.measure import LargestProcess, Measurement, Meter, rgw_processes
from bench.report import Row, print_table
from bench.server import Server, cli, expect, free_port, run_server
from bench.tus_client import tus_upload
from vault import accounts
from vault import documents as doc_service
from vault.audit import AuditContext
from vault.crypto.blobs import StoredBlob, write_encrypted
from vault.db import transaction
from vault.store import ObjectStore
from web.services import open_services
from web.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EMAIL = "bench@example.test"


# --- Set-up -----------------------------------------------------------------------------------


def write_config(work: Path, args: argparse.Namespace, bucket: str, port: int) -> Path:
    secret = work / "s3-secret"
    secret.touch(mode=0o600)
    secret.write_text(args.secret_key, encoding="utf-8")

    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string of ASCII text is a TOML basic string

    config = work / "clientvault.toml"
    config.write_text(
        f"data_dir = {q(str(work / 'data'))}\n"
        "\n[server]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f"public_url = {q(f'http://127.0.0.1:{port}')}\n"
        "\n[storage]\n"
        'backend = "s3"\n'
        f"endpoint_url = {q(args.endpoint)}\n"
        f"region = {q(args.region)}\n"
        f"bucket = {q(bucket)}\n"
        f"access_key_id = {q(args.access_key)}\n"
        f"secret_access_key_file = {q(str(secret))}\n"
        f"part_size_mib = {args.part_mib}\n"
        f"concurrency = {args.concurrency}\n",
        encoding="utf-8",
    )
    return config


def staff_account(config: Path) -> tuple[str, dict[str, str]]:
    """`clientvault init`, a client "Bench", a staff user of it and an API token: the
    client's id, and the headers that authenticate as that user."""
    cli(config, "init")
    client_id = cli(config, "client", "add", "Bench")
    cli(config, "user", "add", EMAIL, "--role", "staff", "--client", "Bench")
    token = cli(config, "token", "create", EMAIL, "--name", "bench")
    return client_id, {"Authorization": f"Bearer {token}"}


@dataclass
class Running:
    """A server on a bucket of its own, and a client signed in as the bench's staff user."""

    config: Path
    bucket: str
    server: Server
    http: httpx.Client
    headers: dict[str, str]
    client_id: str
    meter: Meter

    def folder(self, name: str) -> str:
        """A new folder of the bench's client; its id."""
        body = {"client_id": self.client_id, "name": name}
        folder: str = expect(self.http.post("/api/v1/folders", json=body), 201)["id"]
        return folder


@contextlib.contextmanager
def running_server(args: argparse.Namespace, s3: S3Client, prefix: str) -> Iterator[Running]:
    """The app on `args`' S3 endpoint (a new bucket) with SQLite in a temporary directory,
    `clientvault init` and the bench's account, `clientvault serve` with `args.workers`
    processes, and a meter of this process (the client), the server and the RGW."""
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp,
        temporary_bucket(s3, prefix) as bucket,
    ):
        work = Path(tmp)
        port = free_port()
        config = write_config(work, args, bucket, port)
        client_id, headers = staff_account(config)
        with (
            run_server(config, port, work / "server.log", args.workers) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=httpx.Timeout(600)) as http,
        ):
            server_proc = psutil.Process(server.pid)
            # With several workers the first process only supervises: memory is reported
            # for the largest worker, CPU for all of them together.
            server_procs = [server_proc, *server_proc.children(recursive=True)]
            meter = Meter(
                rss={"server": LargestProcess(server_procs)},
                cpu={"client": [psutil.Process()], "server": server_procs, "s3": rgw_processes()},
                settle="s3",
            )
            try:
                yield Running(config, bucket, server, http, headers, client_id, meter)
            finally:
                meter.close()


def print_server_table(rows: Sequence[Row]) -> None:
    """The result table of runs measured by `running_server`'s meter."""
    print_table(
        rows,
        rss="server",
        rss_title="Server peak RSS MiB",
        cpu=["client", "server", "s3"],
        cpu_title="CPU s (client / server / S3 daemons)",
    )


# --- Transfers through the API ----------------------------------------------------------------


def api_upload(
    http: httpx.Client, folder: str, name: str, source: PatternSource, chunk: int
) -> str:
    response = http.put(
        f"/api/v1/folders/{folder}/files/{name}",
        content=source.chunks(chunk),
        headers={"Content-Length": str(source.size), "Content-Type": "application/octet-stream"},
    )
    document: str = expect(response, 200, 201)["document_id"]
    return document


def check_hash(http: httpx.Client, document: str, expected: str) -> None:
    body = expect(http.get(f"/api/v1/documents/{document}"), 200)
    if body["versions"][-1]["sha256"] != expected:
        raise RuntimeError("the stored plaintext hash differs from the stream's")


# --- Small files, one after another -----------------------------------------------------------


@dataclass
class SmallFiles:
    """One small-file phase: `count` files of `size` bytes, one request after another."""

    count: int
    size: int
    raw: Measurement | None = None
    api: Measurement | None = None
    tus: Measurement | None = None
    tus_post: Measurement | None = None

    def run(self, running: Running, s3: S3Client, folder: str, tag: str) -> None:
        """`count` raw boto3 `put_object`s, then as many API `PUT`s, tus uploads of a `POST`
        and one `PATCH`, and tus uploads of one `POST` carrying the file
        (creation-with-upload, as the portal sends a small file), of distinct names."""
        source = PatternSource(self.size, seed=3)
        data = bytes(source.piece(0, self.size))
        with running.meter.measure() as raw:
            for index in range(self.count):
                s3.put_object(Bucket=running.bucket, Key=f"{tag}-{index}", Body=data)
        with running.meter.measure() as api:
            for index in range(self.count):
                url = f"/api/v1/folders/{folder}/files/{tag}-{index}.bin"
                expect(running.http.put(url, content=data), 201)
        with running.meter.measure() as tus:
            for index in range(self.count):
                tus_upload(running.http, folder, f"{tag}-tus-{index}.bin", source, 0)
        with running.meter.measure() as tus_post:
            for index in range(self.count):
                name = f"{tag}-post-{index}.bin"
                tus_upload(running.http, folder, name, source, 0, whole_in_post=True)
        self.raw, self.api, self.tus, self.tus_post = raw, api, tus, tus_post

    def print(self, documents: int) -> None:
        print(
            f"Small files: {self.count} × {self.size / 1024:g} KiB, one request after another, "
            f"into a client already holding {documents:,} documents"
        )
        print()
        print("| path | ms per file | server CPU ms per file | S3 daemons CPU ms per file |")
        print("| --- | ---: | ---: | ---: |")
        runs = (
            ("raw boto3 `put_object`", self.raw),
            ("API `PUT`", self.api),
            ("API tus (`POST`, `PATCH`)", self.tus),
            ("API tus, the file in the `POST`", self.tus_post),
        )
        for label, run in runs:
            if run is None:
                continue
            server, s3 = run.cpu.get("server"), run.cpu.get("s3")
            cells = [
                f"{run.seconds / self.count * 1000:.1f}",
                "–" if server is None or run is self.raw else f"{server / self.count * 1000:.1f}",
                "–" if s3 is None else f"{s3 / self.count * 1000:.1f}",
            ]
            print(f"| {label} | {' | '.join(cells)} |")


# --- A big folder -----------------------------------------------------------------------------


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_small(
    store: ObjectStore,
    plan: doc_service.UploadPlan,
    limiter: anyio.CapacityLimiter,
    stored: dict[int, StoredBlob],
    index: int,
    part_size: int,
) -> None:
    async with limiter:
        stored[index] = await write_encrypted(
            store,
            plan.storage_key,
            one_chunk(f"{plan.name}: {plan.document_id}\n".encode()),
            sealer=plan.sealer(),
            part_size=part_size,
            concurrency=1,
        )


async def populate(config: Path, folder: str, count: int, *, concurrency: int = 16) -> None:
    """`count` small documents in `folder`: each a real encrypted object in the store and a
    version row with its audit event, committed 500 to a transaction (no HTTP involved)."""
    settings = load_settings(config)
    folder_id = uuid.UUID(folder)
    async with open_services(settings) as svc:
        async with transaction(svc.sessions) as session:
            user = await accounts.find_user(session, EMAIL)
            if user is None:
                raise RuntimeError(f"no user {EMAIL}")
            principal = await accounts.principal_for(session, user)
        context = AuditContext(
            actor_id=str(user.id), actor_role=principal.role.value, ip="127.0.0.1"
        )
        limiter = anyio.CapacityLimiter(concurrency)
        for first in range(0, count, 500):
            names = [f"doc-{i:05d}.txt" for i in range(first, min(count, first + 500))]
            async with transaction(svc.sessions) as session:
                plans = [
                    await doc_service.prepare_upload(
                        session, principal, svc.keyring, folder_id=folder_id, name=name
                    )
                    for name in names
                ]
            stored: dict[int, StoredBlob] = {}
            async with anyio.create_task_group() as tasks:
                for index, plan in enumerate(plans):
                    tasks.start_soon(
                        store_small, svc.store, plan, limiter, stored, index, svc.part_size
                    )
            async with transaction(svc.sessions) as session:
                for index, plan in enumerate(plans):
                    await doc_service.commit_upload(
                        session, principal, context, plan, stored[index], content_type="text/plain"
                    )
