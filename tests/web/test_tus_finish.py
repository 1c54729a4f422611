"""Finishing a resumable upload on S3 without reading the object back, where the store's
per-part evidence and the sealing process's own digest prove it; with a full read-back
where they do not. The S3 server's request log says which GETs were made."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import World
from tests.web.test_tus import (  # noqa: F401 - `settings` and `s3` are fixtures used here
    PART,
    assert_problem,
    data,
    download,
    new_upload,
    s3,
    send,
    settings,
    versions,
)
from vault.digests import RunningDigests
from vault.uploads import Upload
from web.services import Services

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


def object_reads(caplog: pytest.LogCaptureFixture, bucket: str, key: str) -> int:
    """GETs of the object's bytes that the S3 server logged (moto's request log)."""
    # Ranged GETs of the object itself (not ?uploadId= listings); 206 lines come coloured.
    target = f"GET /{bucket}/{key} HTTP"
    return sum(target in record.getMessage() for record in caplog.records)


async def test_an_upload_sealed_by_one_process_is_not_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    auth = world["alice"].auth
    payload = data(2 * PART + 4321, "pinned")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "pinned.bin")
    key = await storage_key(services, url)

    await send(http, url, auth, 0, payload[: PART + 100_000])
    done = await send(http, url, auth, PART + 65536, payload[PART + 65536 :])

    assert object_reads(caplog, s3[1], key) == 0
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()
    assert await download(http, auth, done.headers["document-id"]) == payload
    assert object_reads(caplog, s3[1], key) > 0  # the log does show reads


async def test_without_the_running_digest_the_object_is_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    auth = world["alice"].auth
    payload = data(2 * PART + 1, "elsewhere")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "elsewhere.bin")
    key = await storage_key(services, url)

    # Part 1 went through another process (or before a restart): this one never hashed it.
    async def elsewhere(self: RunningDigests, upload_id: uuid.UUID, number: int, _: bytes) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(RunningDigests, "extend", elsewhere)
        await send(http, url, auth, 0, payload[:PART])

    done = await send(http, url, auth, PART, payload[PART:])

    assert object_reads(caplog, s3[1], key) > 0
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()


async def test_a_part_replaced_in_the_store_is_caught_by_reading_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],  # noqa: F811
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
