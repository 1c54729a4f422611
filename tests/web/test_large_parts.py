"""Files too large for S3's 10,000 parts of the configured part size, in-process, on SQLite
and PostgreSQL, with the S3 store: such an upload gets larger parts rather than a refusal
(`vault.store.part_size_for`), by tus and by a one-shot `PUT` alike.

A 100 GiB body is declared but never sent; where bytes must cross, `MAX_PARTS` is lowered
so that a few MiB already need larger parts, and the store's own multipart etag (`-N`)
counts the parts it was given.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlmodel import col, select

from tests.fixtures.app import World
from tests.fixtures.tus import PART, MiB, create, data, download, headers, send, upload_rows
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault import store
from vault.models import Version
from web.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GiB = 1024 * MiB


def part_count(s3: tuple[S3Client, str], key: str) -> int:
    """The number of parts a finished multipart object was joined from (its etag's `-N`)."""
    client, bucket = s3
    etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    return int(etag.rsplit("-", 1)[1])


async def version_key(services: Services, document_id: str) -> str:
    """The storage key of the document's latest version."""
    async with services.sessions() as session:
        rows = await session.execute(
            select(Version.storage_key)
            .where(col(Version.document_id) == uuid.UUID(document_id))
            .order_by(col(Version.number).desc())
        )
        key = rows.scalars().first()
        assert key is not None
        return key


async def test_a_declared_100_gib_upload_is_taken_with_larger_parts(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    auth = world["alice"].auth
    options = await http.options("/api/v1/uploads")
    # The configured limit, no longer 10,000 parts of 5 MiB (48.8 GiB).
    assert int(options.headers["tus-max-size"]) == services.max_upload_size == 100 * GiB

    created = await create(http, auth, world.acme_folder, 100 * GiB, "archive.tar")

    # 100 GiB in 10,000 parts needs 10.24 MiB each: 11 MiB, and chunks of whole such parts
    # (256 MiB rounded down to 23 of them).
    (row,) = await upload_rows(services)
    assert row.part_size == 11 * MiB
    assert int(created.headers["clientvault-chunk-size"]) == 253 * MiB
    url = created.headers["location"]
    head = await http.head(url, headers=headers(auth))
    assert int(head.headers["clientvault-chunk-size"]) == 253 * MiB

    # One part and a bit: the part goes to the store at its own size, the rest is staged.
    sent = await send(http, url, auth, 0, data(12 * MiB))
    assert int(sent.headers["upload-offset"]) == 12 * MiB
    client, bucket = s3
    parts = client.list_parts(Bucket=bucket, Key=row.storage_key, UploadId=row.multipart_id)
    (stored,) = parts["Parts"]
    # 11 MiB of plaintext: 176 segments, each with its 16-byte tag, after the header.
    assert 11 * MiB + 176 * 16 <= stored["Size"] < 11 * MiB + 176 * 16 + 256

    too_big = await create(http, auth, world.acme_folder, 100 * GiB + 1, "b.tar", expect=413)
    assert too_big.headers["tus-max-size"] == str(100 * GiB)


async def test_an_upload_with_larger_parts_finishes_whole(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "MAX_PARTS", 2)
    auth = world["alice"].auth
    payload = data(2 * PART + 3 * MiB, "larger parts")  # 13 MiB: two parts of 7 MiB

    url = (await create(http, auth, world.acme_folder, len(payload))).headers["location"]
    (row,) = await upload_rows(services)
    assert row.part_size == 7 * MiB
    offset = 0
    for start in range(0, len(payload), 4 * MiB):  # a stock client's 4 MiB chunks
        chunk = payload[start : start + 4 * MiB]
        answer = await send(http, url, auth, offset, chunk)
        offset = int(answer.headers["upload-offset"])
    assert offset == len(payload)

    document_id = answer.headers["document-id"]
    assert await download(http, auth, document_id) == payload
    assert part_count(s3, await version_key(services, document_id)) == 2


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_put_too_large_for_its_parts_gets_larger_ones(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    monkeypatch: pytest.MonkeyPatch,
    declared: bool,
) -> None:
    monkeypatch.setattr(store, "MAX_PARTS", 2)
    auth = world["alice"].auth
    payload = data(2 * PART + 3 * MiB, "put")

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), MiB):
            yield payload[start : start + MiB]

    if not declared:
        # Without a length the parts must hold the largest body allowed: 100 GiB here.
        monkeypatch.setattr(store, "MAX_PARTS", 20_000)
    put = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/big.bin",
        content=payload if declared else chunked(),
        headers=auth,
    )

    assert put.status_code == 201, put.text
    document_id = put.json()["document_id"]
    assert await download(http, auth, document_id) == payload
    # 13 MiB in two parts of 7 MiB; chunked, 100 GiB in 20,000 parts needs 6 MiB ones: three.
    assert part_count(s3, await version_key(services, document_id)) == (2 if declared else 3)


def test_parts_grow_only_past_ten_thousand_of_the_configured_size() -> None:
    eight = 8 * MiB
    assert store.part_size_for(10_000 * eight, eight) == eight  # 78.1 GiB: still 8 MiB
    assert store.part_size_for(10_000 * eight + 1, eight) == 9 * MiB
    assert store.part_size_for(100 * GiB, eight) == 11 * MiB
    # S3's largest object still fits its largest part (5 GiB).
    assert store.part_size_for(store.MAX_OBJECT_SIZE, eight) == 525 * MiB
