"""Finishing a resumable upload on S3 without reading the object back, where the store's
per-part evidence and the sealing process's own digest prove it; with a full read-back
where they do not. The app's S3 client says which GETs it sent."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import select
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.tus import PART, assert_problem, data, download, new_upload, send, versions
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault.crypto.digests import RunningDigests
from vault.uploads import Upload
from web.app import create_app
from web.services import Services
from web.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


async def storage_key(services: Services, url: str) -> str:
    async with services.sessions() as session:
        upload = (
            await session.execute(
                select(Upload).where(Upload.id == uuid.UUID(url.rsplit("/", 1)[1]))
            )
        ).scalar_one()
        return upload.storage_key


class ObjectReads:
    """GETs of stored objects that the app's own S3 client sends, counted by a botocore
    event hook, so the count holds on any S3 server (moto, Ceph RGW, AWS)."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, params: dict[str, object], **_: object) -> None:
        self.keys.append(str(params.get("Key", "")))

    def of(self, key: str) -> int:
        return sum(seen.endswith(key) for seen in self.keys)


@pytest.fixture
async def lifespan(settings: Settings) -> AsyncIterator[LifespanManager]:
    async with LifespanManager(create_app(settings)) as manager:
        yield manager


@pytest.fixture
def app(lifespan: LifespanManager) -> ASGIApp:
    """The app of `http`, started here so its own object store can be watched."""
    return lifespan.app


@pytest.fixture
def object_reads(lifespan: LifespanManager) -> Iterator[ObjectReads]:
    reads = ObjectReads()
    app_services: Services = lifespan._state["services"]
    events = app_services.store._client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.s3.GetObject", reads, unique_id="test-object-reads")
    try:
        yield reads
    finally:
        events.unregister("before-parameter-build.s3.GetObject", unique_id="test-object-reads")


async def test_an_upload_sealed_by_one_process_is_not_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    object_reads: ObjectReads,
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 4321, "pinned")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "pinned.bin")
    key = await storage_key(services, url)

    await send(http, url, auth, 0, payload[: PART + 100_000])
    done = await send(http, url, auth, PART + 65536, payload[PART + 65536 :])

    assert object_reads.of(key) == 0
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()
    assert await download(http, auth, done.headers["document-id"]) == payload
    assert object_reads.of(key) > 0  # the hook does see reads


async def test_without_the_running_digest_the_object_is_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    object_reads: ObjectReads,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 1, "elsewhere")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "elsewhere.bin")
    key = await storage_key(services, url)

    # Part 1 went through another process (or before a restart): this one never hashed it.
    def elsewhere(self: RunningDigests, upload_id: uuid.UUID, number: int) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(RunningDigests, "start", elsewhere)
        await send(http, url, auth, 0, payload[:PART])

    done = await send(http, url, auth, PART, payload[PART:])

    assert object_reads.of(key) > 0
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()


async def test_a_part_replaced_in_the_store_is_caught_by_reading_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 99, "replaced")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "replaced.bin")
    key = await storage_key(services, url)
    await send(http, url, auth, 0, payload[:PART])
    # Someone with write access to the bucket replaces part 1 with other bytes of its size.
    client, bucket = s3
    (pending,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    stored = client.list_parts(Bucket=bucket, Key=key, UploadId=pending["UploadId"])
    size = stored["Parts"][0]["Size"]
    client.upload_part(
        Bucket=bucket,
        Key=key,
        UploadId=pending["UploadId"],
        PartNumber=1,
        Body=bytes(size),
    )

    refused = await send(http, url, auth, PART, payload[PART:], expect=500)

    assert_problem(refused, 500)
    listing = await http.get(f"/api/v1/folders/{world.acme_folder}", headers=auth)
    assert "replaced.bin" not in listing.text
