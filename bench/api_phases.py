"""What the API benchmark measures: transfers through the HTTP API, checked as they
arrive, and a big folder filled through the vault services for the listing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import httpx

from bench.common import PatternSource
from bench.server import cli, expect
from vault import accounts
from vault import documents as doc_service
from vault.audit import AuditContext
from vault.crypto.blobs import StoredBlob, write_encrypted
from vault.db import transaction
from vault.store import ObjectStore
from web.services import open_services
from web.settings import load_settings

EMAIL = "bench@example.test"


def staff_account(config: Path) -> tuple[str, dict[str, str]]:
    """`clientvault init`, a client "Bench", a staff user of it and an API token: the
    client's id, and the headers that authenticate as that user."""
    cli(config, "init")
    client_id = cli(config, "client", "add", "Bench")
    cli(config, "user", "add", EMAIL, "--role", "staff", "--client", "Bench")
    token = cli(config, "token", "create", EMAIL, "--name", "bench")
    return client_id, {"Authorization": f"Bearer {token}"}


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


async def api_parallel(
    base_url: str, headers: dict[str, str], documents: Sequence[str], source: PatternSource
) -> None:
    limits = httpx.Limits(max_connections=len(documents), max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=httpx.Timeout(600), limits=limits
    ) as http:

        async def one(document: str) -> None:
            sink = source.sink()
            async with http.stream("GET", f"/api/v1/documents/{document}/content") as response:
                if response.status_code != 200:
                    await response.aread()
                    expect(response, 200)
                async for data in response.aiter_raw():
                    sink.write(data)
            sink.check()

        async with anyio.create_task_group() as tasks:
            for document in documents:
                tasks.start_soon(one, document)


def check_hash(http: httpx.Client, document: str, expected: str) -> None:
    body = expect(http.get(f"/api/v1/documents/{document}"), 200)
    if body["versions"][-1]["sha256"] != expected:
        raise RuntimeError("the stored plaintext hash differs from the stream's")


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
