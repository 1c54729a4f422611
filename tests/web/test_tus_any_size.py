"""Resumable uploads of any PATCH size on the S3 store (SQLite and PostgreSQL): whole 64 KiB
segments are kept whatever the chunk size, their claims guard the nonces across a crash and
racing requests, and the tus `checksum` and `creation-with-upload` extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.statements import statements_sent
from tests.fixtures.tus import (
    OFFSET_STREAM,
    PART,
    assert_problem,
    assert_stored,
    data,
    download,
    headers,
    metadata,
    new_upload,
    offset_of,
    pending_multipart,
    send,
)
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault.crypto import SegmentSealer
from vault.uploads import Resumable, StagedRun, Upload, UploadPart
from vault.uploads import staging as upload_staging
from web.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
SEGMENT = 64 * 1024


async def staged_rows(services: Services) -> list[StagedRun]:
    async with services.sessions() as session:
        return list((await session.execute(select(StagedRun))).scalars())


async def send_in_chunks(
    http: httpx.AsyncClient, url: str, auth: dict[str, str], payload: bytes, chunk: int
) -> httpx.Response:
    """As a stock tus client does: fixed-size PATCHes, each from the offset last answered."""
    offset = 0
    while True:
        body = payload[offset : offset + chunk]
        answer = await send(http, url, auth, offset, body)
        reached = int(answer.headers["upload-offset"])
        if reached == len(payload):
            return answer
        # Only what runs past the last whole segment is sent again.
        assert len(body) - SEGMENT < reached - offset <= len(body)
        offset = reached


@pytest.mark.parametrize("chunk", [MiB, 2 * MiB + 4321, 7 * MiB + 5, 200_000])
async def test_any_chunk_size_finishes_with_each_byte_sent_about_once(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    chunk: int,
) -> None:
    auth = world["alice"].auth
    payload = data(3 * PART + 70_000, f"chunk-{chunk}")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "chunks.bin")

    done = await send_in_chunks(http, url, auth, payload, chunk)

    document_id = done.headers["document-id"]
    await assert_stored(http, auth, document_id, payload)
    # The staged segments went into parts (S3 took every one: all but the last >= 5 MiB).
    assert await staged_rows(services) == []
    assert pending_multipart(s3) == []


async def test_staged_segments_are_ciphertext_and_less_than_a_part(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART, "staged")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "staged.bin")

    await send(http, url, auth, 0, payload[: MiB + 10])
    await send(http, url, auth, MiB, payload[MiB : 3 * MiB])

    rows = await staged_rows(services)
    assert sum(r.segments for r in rows) == 3 * MiB // SEGMENT
    for row in rows:
        assert len(row.ciphertext) == row.segments * (SEGMENT + 16)
        # No 64-byte run of the plaintext appears in what is kept.
        assert payload[MiB : MiB + 64] not in row.ciphertext
        assert payload[:64] not in row.ciphertext

    # Once a request completes the part, its staged segments go; the next part's stay.
    await send(http, url, auth, 3 * MiB, payload[3 * MiB : PART + MiB])
    rows = await staged_rows(services)
    assert sum(r.segments for r in rows) == MiB // SEGMENT
    assert min(r.first_segment for r in rows) == PART // SEGMENT


async def test_a_stream_of_whole_parts_neither_reads_claims_nor_drops_staged_segments(
    http: httpx.AsyncClient, world: World
) -> None:
    """Per part, a claim is one INSERT and a record has no staged segments to delete: the
    database work of each part is a share of the server's CPU through a large upload."""
    auth = world["alice"].auth
    payload = data(4 * PART, "stream")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "stream.bin")
    with statements_sent() as sent:
        await send(http, url, auth, 0, payload[: 3 * PART])
    statements = [s.lower() for s in sent]
    assert [s for s in statements if s.startswith("insert into upload_parts")] != []
    assert [s for s in statements if "from upload_parts" in s] == []
    assert [s for s in statements if "staged_runs" in s] == []
    assert await offset_of(http, url, auth) == 3 * PART


def stored_parts(s3: tuple[S3Client, str]) -> list[tuple[int, str]]:
    client, bucket = s3
    found = []
    for pending in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        listed = client.list_parts(Bucket=bucket, Key=pending["Key"], UploadId=pending["UploadId"])
        found += [(part["PartNumber"], part["ETag"]) for part in listed.get("Parts", [])]
    return found


async def upload_with_sealer(
    http: httpx.AsyncClient, world: World, services: Services, size: int, name: str
) -> tuple[str, uuid.UUID, SegmentSealer]:
    """A new upload of `size` bytes by alice: its URL, id and sealer (as a process has it)."""
    url = await new_upload(http, world["alice"].auth, world.acme_folder, size, name)
    upload_id = uuid.UUID(url.rsplit("/", 1)[1])
    async with services.sessions() as session:
        row = await session.get(Upload, upload_id)
    assert row is not None
    return url, upload_id, Resumable.of(row, services.keyring).sealer()


@pytest.mark.parametrize("recorded_by", ["this release", "an earlier release"])
async def test_a_claim_left_by_a_crash_refuses_other_bytes_and_takes_the_same(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    recorded_by: str,
) -> None:
    """A process that claimed segments and died before recording them: the offset never
    moved, so the client resends; only the bytes claimed can leave the process sealed at
    those nonces. Claims recorded before an upgrade (keyed HMAC tags, not GCM tags) hold
    just the same."""
    auth = world["alice"].auth
    payload = data(2 * PART + 5, "crash")
    url, upload_id, sealer = await upload_with_sealer(
        http, world, services, len(payload), "crash.bin"
    )
    claimed = payload[: 2 * MiB]
    if recorded_by == "this release":
        _, tags = upload_staging.seal_run(sealer, 0, claimed)
    else:
        tags = sealer.legacy_segment_tags(claimed)
    await upload_staging.claim_segments(
        services.sessions,
        sealer,
        upload_id,
        1,
        first=0,
        tags=tags,
        plaintext=lambda: claimed,
        size=2 * MiB,
    )
    assert await offset_of(http, url, auth) == 0

    # Other bytes inside the claim: refused whether they would be staged or stored as a
    # whole part, and nothing of them is kept anywhere.
    other = bytearray(payload[: PART + MiB])
    other[MiB + 7] ^= 1
    for body in (bytes(other[: 3 * MiB]), bytes(other)):
        refused = await send(http, url, auth, 0, body, expect=409)
        assert assert_problem(refused, 409)["title"] == "Upload must restart"
        assert await offset_of(http, url, auth) == 0
        assert await staged_rows(services) == []
        assert stored_parts(s3) == []

    # The claimed bytes (a shorter or a longer body) are sealed as claimed, and go on.
    shorter = await send(http, url, auth, 0, payload[:MiB])
    assert shorter.headers["upload-offset"] == str(MiB)
    longer = await send(http, url, auth, MiB, payload[MiB : 3 * MiB])
    assert longer.headers["upload-offset"] == str(3 * MiB)
    done = await send(http, url, auth, 3 * MiB, payload[3 * MiB :])
    assert await download(http, auth, done.headers["document-id"]) == payload


@pytest.mark.parametrize("final", [False, True], ids=["a middle part", "the final part"])
async def test_a_whole_part_claim_of_an_early_release_takes_only_that_part(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    final: bool,
) -> None:
    """A part claimed whole, by one keyed fingerprint, before per-segment claims existed:
    only the same whole part can be checked against it, so only that is sealed again. (Its
    plaintext is given back as it is sealed, so the check decrypts what was sealed.)"""
    auth = world["alice"].auth
    payload = data(PART // 2 + 5 if final else PART + 5, "early")
    claimed = len(payload) if final else PART
    url, upload_id, sealer = await upload_with_sealer(
        http, world, services, len(payload), "early.bin"
    )
    async with services.sessions() as session:
        session.add(
            UploadPart(
                upload_id=upload_id,
                number=1,
                fingerprint=sealer.legacy_fingerprint(payload[:claimed]),
                size=claimed,
                tags=None,
            )
        )
        await session.commit()

    other = bytearray(payload[:claimed])
    other[claimed - 1] ^= 1
    for body in (bytes(other), payload[:MiB]):
        await send(http, url, auth, 0, body, expect=409)
        assert stored_parts(s3) == [] and await staged_rows(services) == []
    done = await send(http, url, auth, 0, payload[:claimed])
    if not final:
        assert done.headers["upload-offset"] == str(PART)
        done = await send(http, url, auth, PART, payload[PART:])
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_racing_small_patches_at_one_offset_store_the_bytes_once(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    payload = data(PART + MiB, "race")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "race.bin")
    # Both requests pass the offset check before either body is read (the route reads
    # the body only after its checks), then their bytes arrive interleaved.
    barrier = asyncio.Barrier(2)

    async def body(size: int) -> AsyncIterator[bytes]:
        await barrier.wait()
        for start in range(0, size, MiB // 4):
            yield payload[start : min(size, start + MiB // 4)]
            await asyncio.sleep(0)

    answers = await asyncio.gather(
        send(http, url, auth, 0, body(2 * MiB)), send(http, url, auth, 0, body(3 * MiB))
    )

    # Each stored what continued the upload; neither sealed other bytes at a used nonce.
    assert {a.status_code for a in answers} == {204}
    assert await offset_of(http, url, auth) == 3 * MiB
    done = await send(http, url, auth, 3 * MiB, payload[3 * MiB :])
    assert await download(http, auth, done.headers["document-id"]) == payload


def checksum(name: str, body: bytes) -> str:
    return f"{name} {base64.b64encode(hashlib.new(name, body).digest()).decode()}"


async def test_checksum_extension(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth
    payload = data(PART + 3 * MiB, "checksum")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "checksum.bin")
    body = payload[: 2 * MiB]

    # tus 1.0.0 §Checksum: a mismatch is 460 and stores nothing, not even a claim, so the
    # right bytes at the same offset are taken afterwards.
    corrupt = bytearray(body)
    corrupt[12345] ^= 0xFF
    wrong = await send(
        http, url, auth, 0, bytes(corrupt), expect=460, Upload_Checksum=checksum("sha1", body)
    )
    assert assert_problem(wrong, 460)["title"] == "Checksum mismatch"
    assert await offset_of(http, url, auth) == 0
    assert await staged_rows(services) == []

    unsupported = await send(http, url, auth, 0, body, expect=400, Upload_Checksum="crc32 AAAA")
    assert "sha1" in unsupported.headers["tus-checksum-algorithm"]
    await send(http, url, auth, 0, body, expect=400, Upload_Checksum="sha1 not*base64")

    first = await send(http, url, auth, 0, body, Upload_Checksum=checksum("sha1", body))
    assert first.headers["upload-offset"] == str(2 * MiB)
    rest = payload[2 * MiB :]
    second = await send(
        http, url, auth, 2 * MiB, rest[:MiB], Upload_Checksum=checksum("sha256", rest[:MiB])
    )
    assert second.headers["upload-offset"] == str(3 * MiB)
    done = await send(
        http, url, auth, 3 * MiB, payload[3 * MiB :], Upload_Checksum=checksum("md5", rest[MiB:])
    )
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_creation_with_upload(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    folder = str(world.acme_folder)
    payload = data(PART + 2 * MiB, "with-upload")

    async def post(name: str, body: bytes, length: int) -> httpx.Response:
        response = await http.post(
            "/api/v1/uploads",
            content=body,
            headers={
                **headers(
                    auth,
                    Upload_Length=str(length),
                    Upload_Metadata=metadata(filename=name, folder_id=folder),
                ),
                **OFFSET_STREAM,
            },
        )
        assert response.status_code == 201, response.text
        return response

    # The first bytes with the POST: its whole segments are stored, the offset says so.
    started = await post("started.bin", payload[: MiB + 100], len(payload))
    assert started.headers["upload-offset"] == str(MiB)
    assert "document-id" not in started.headers
    url = started.headers["location"]
    done = await send(http, url, auth, MiB, payload[MiB:])
    assert await download(http, auth, done.headers["document-id"]) == payload

    # A small file in one request.
    small = await post("small.txt", b"hello, tus", 10)
    assert small.headers["upload-offset"] == "10"
    assert "upload-expires" not in small.headers
    assert await download(http, auth, small.headers["document-id"]) == b"hello, tus"
