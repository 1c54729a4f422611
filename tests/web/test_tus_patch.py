"""Resumable uploads over tus 1.0.0, in-process, on SQLite and PostgreSQL, with the S3 store:
PATCH and the whole-part rule, the nonce-reuse guard, finishing exactly once, termination,
and expiry with `collect_garbage`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.tus import (
    OFFSET_STREAM,
    PART,
    MiB,
    assert_problem,
    assert_stored,
    create,
    data,
    download,
    events,
    headers,
    new_upload,
    offset_of,
    part_rows,
    pending_multipart,
    send,
    upload_rows,
    versions,
)
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault import maintenance
from vault.db import transaction
from vault.models import Version
from vault.uploads import Upload
from web.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def stored_objects(s3: tuple[S3Client, str]) -> list[str]:
    client, bucket = s3
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- PATCH ------------------------------------------------------------------------------------


async def test_patch_errors_change_nothing(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    url = await new_upload(http, auth, world.acme_folder, PART + 10)
    payload = data(PART + 10)

    wrong_type = await http.patch(
        url,
        content=payload,
        headers={**headers(auth, Upload_Offset="0"), "Content-Type": "application/octet-stream"},
    )
    assert_problem(wrong_type, 415)
    no_offset = await http.patch(url, content=payload, headers={**headers(auth), **OFFSET_STREAM})
    assert_problem(no_offset, 400)
    assert_problem(await send(http, url, auth, 0, payload, expect=400, Upload_Offset="x"), 400)
    behind = await send(http, url, auth, 10, payload[10:], expect=409)
    assert "at 0" in assert_problem(behind, 409)["detail"]
    # More bytes than the upload's length, declared up front: refused before reading any.
    assert_problem(await send(http, url, auth, 0, payload + b"!", expect=413), 413)
    unknown = f"/api/v1/uploads/{uuid.uuid4()}"
    assert_problem(await send(http, unknown, auth, 0, payload, expect=404), 404)
    assert_problem(await send(http, "/api/v1/uploads/nope", auth, 0, payload, expect=404), 404)

    assert await offset_of(http, url, auth) == 0


async def test_whole_segments_are_stored_and_the_offset_says_so(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    auth = world["alice"].auth
    length = 2 * PART + 100
    payload = data(length)
    url = await new_upload(http, auth, world.acme_folder, length, "parts.bin")

    # One part and 2 MiB and a bit more: the part and 32 whole segments are stored, the bit
    # after the last whole segment is not.
    first = await send(http, url, auth, 0, payload[: PART + 2 * MiB + 1000])
    assert first.headers["upload-offset"] == str(PART + 2 * MiB)
    assert first.headers["upload-expires"].endswith(" GMT")
    assert "document-id" not in first.headers
    assert await offset_of(http, url, auth) == PART + 2 * MiB

    # Less than a segment, not reaching the end: nothing could be stored, and the client is
    # told so rather than left to send the same bytes forever.
    at = PART + 2 * MiB
    short = await send(http, url, auth, at, payload[at : at + 1000], expect=400)
    assert "65536" in assert_problem(short, 400)["detail"]
    assert short.headers["clientvault-chunk-size"] == str(255 * MiB)
    assert await offset_of(http, url, auth) == at

    last = await send(http, url, auth, at, payload[at:])
    assert last.headers["upload-offset"] == str(length)
    assert last.headers["document-version"] == "1"
    assert "upload-expires" not in last.headers
    document_id = last.headers["document-id"]

    assert await download(http, auth, document_id) == payload
    (version,) = await versions(http, auth, document_id)
    assert version["size"] == length
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()
    assert version["uploaded_by"] == str(world["alice"].id)

    # The upload still answers HEAD, now with the document it became.
    head = await http.head(url, headers=headers(auth))
    assert head.headers["upload-offset"] == str(length)
    assert head.headers["document-id"] == document_id
    assert head.headers["document-version"] == "1"
    assert "upload-expires" not in head.headers
    # The final request again (as after a lost answer): the same answer, nothing new.
    again = await send(http, url, auth, length, b"")
    assert again.headers["document-id"] == document_id
    assert again.headers["document-version"] == "1"
    assert len(await versions(http, auth, document_id)) == 1

    assert pending_multipart(s3) == []
    assert len(stored_objects(s3)) == 1
    (created,) = await events(services, "document.created")
    assert json.loads(created.details)["upload_id"] == url.rsplit("/", 1)[1]


async def test_a_short_final_patch_leaves_the_upload_resumable(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    length = PART + 1000
    payload = data(length, "short-final")
    url = await new_upload(http, auth, world.acme_folder, length)

    # All but the last byte: the whole first part is kept, the unfinished final part is not.
    response = await send(http, url, auth, 0, payload[:-1])
    assert response.headers["upload-offset"] == str(PART)
    assert "document-id" not in response.headers
    assert await offset_of(http, url, auth) == PART

    done = await send(http, url, auth, PART, payload[PART:])
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_a_chunked_body_running_past_the_length_is_refused(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth
    length = PART + 10
    payload = data(length, "overflow")
    url = await new_upload(http, auth, world.acme_folder, length, "overflow.bin")

    async def too_long() -> AsyncIterator[bytes]:
        yield payload
        yield b"one byte too many"

    # No Content-Length: the excess shows only at the end of the body. The whole first part
    # before it stays (it is right wherever the body ends); the final part is not stored.
    assert_problem(await send(http, url, auth, 0, too_long(), expect=413), 413)
    assert await offset_of(http, url, auth) == PART
    async with services.sessions() as session:
        assert (await session.execute(select(Version))).first() is None

    done = await send(http, url, auth, PART, payload[PART:])
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_an_upload_of_an_existing_name_adds_a_version(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    put = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/same.txt", content=b"first", headers=auth
    )
    assert put.status_code == 201
    payload = data(PART + 3, "second")

    url = await new_upload(http, auth, world.acme_folder, len(payload), "same.txt")
    done = await send(http, url, auth, 0, payload)

    assert done.headers["document-id"] == put.json()["document_id"]
    assert done.headers["document-version"] == "2"
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_an_empty_upload_is_finished_at_creation(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    response = await create(http, auth, world.acme_folder, 0, "empty.txt")

    assert response.headers["upload-offset"] == "0"
    assert response.headers["document-version"] == "1"
    document_id = response.headers["document-id"]
    assert await download(http, auth, document_id) == b""
    (version,) = await versions(http, auth, document_id)
    assert version["size"] == 0
    assert version["sha256"] == hashlib.sha256(b"").hexdigest()
    head = await http.head(response.headers["location"], headers=headers(auth))
    assert head.headers["upload-offset"] == "0"
    assert head.headers["document-id"] == document_id


async def test_a_document_changed_meanwhile_ends_the_upload(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    auth = world["alice"].auth
    payload = data(PART + 10, "clash")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "clash.txt")
    await send(http, url, auth, 0, payload[:PART])
    # Someone else creates the name first; this upload's object is bound to another document.
    put = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/clash.txt", content=b"theirs", headers=auth
    )
    assert put.status_code == 201

    failed = await send(http, url, auth, PART, payload[PART:], expect=409)
    assert "upload again" in assert_problem(failed, 409)["detail"]

    assert (await http.head(url, headers=headers(auth))).status_code == 404
    assert await upload_rows(services) == []
    assert pending_multipart(s3) == []
    assert len(stored_objects(s3)) == 1  # the other upload's
    assert await download(http, auth, put.json()["document_id"]) == b"theirs"
    assert len(await events(services, "upload.failed")) == 1


# --- Races and the nonce guard -----------------------------------------------------------------


def gated(payload: bytes, started: asyncio.Event, release: asyncio.Event) -> AsyncIterator[bytes]:
    """A body that sends its first bytes, then waits for `release` before sending the rest."""

    async def body() -> AsyncIterator[bytes]:
        yield payload[:1000]
        started.set()
        await release.wait()
        yield payload[1000:]

    return body()


async def test_a_part_sent_again_with_other_bytes_is_refused(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth
    length = 2 * PART + 10
    original, forged = data(length, "original"), data(length, "forged")
    url = await new_upload(http, auth, world.acme_folder, length, "nonce.bin")

    # Two requests at offset 0 (a client retrying on a second connection, say), both past
    # the offset check before either stores part 1, with different bytes.
    events_ = [asyncio.Event() for _ in range(4)]
    first = asyncio.create_task(
        send(http, url, auth, 0, gated(original[:PART], events_[0], events_[1]))
    )
    await asyncio.wait_for(events_[0].wait(), 10)
    second = asyncio.create_task(
        send(http, url, auth, 0, gated(forged[:PART], events_[2], events_[3]), expect=409)
    )
    await asyncio.wait_for(events_[2].wait(), 10)
    events_[1].set()
    assert (await first).headers["upload-offset"] == str(PART)
    events_[3].set()
    refused = assert_problem(await second, 409)
    assert refused["title"] == "Upload must restart"
    assert "start a new upload" in refused["detail"]

    # The part stored is the first one, untouched; the upload goes on with it.
    assert await offset_of(http, url, auth) == PART
    done = await send(http, url, auth, PART, original[PART:])
    await assert_stored(http, auth, done.headers["document-id"], original)


async def test_racing_final_requests_make_exactly_one_version(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    auth = world["alice"].auth
    length = PART + 4321
    payload = data(length, "race")
    url = await new_upload(http, auth, world.acme_folder, length, "race.bin")
    await send(http, url, auth, 0, payload[:PART])

    answers = await asyncio.gather(
        *(
            http.patch(
                url,
                content=payload[PART:],
                headers={**headers(auth, Upload_Offset=str(PART)), **OFFSET_STREAM},
            )
            for _ in range(3)
        )
    )

    # Each racer either finished the upload (204), found it finished by another (the same
    # document), or arrived once it was complete: then its offset is stale (409, as tus has
    # it) and a HEAD names the one document, as it does for a client whose answer was lost.
    assert {a.status_code for a in answers} <= {204, 409}, [a.text for a in answers]
    finished = [a for a in answers if a.status_code == 204]
    assert finished
    head = await http.head(url, headers=headers(auth))
    document = (head.headers["document-id"], head.headers["document-version"])
    assert document[1] == "1"
    assert {(a.headers["document-id"], a.headers["document-version"]) for a in finished} == {
        document
    }
    assert len(await versions(http, auth, document[0])) == 1
    assert len(await events(services, "document.created")) == 1
    assert await download(http, auth, document[0]) == payload


# --- Termination and expiry --------------------------------------------------------------------


async def test_termination_drops_the_parts(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    auth = world["alice"].auth
    url = await new_upload(http, auth, world.acme_folder, 2 * PART)
    await send(http, url, auth, 0, data(PART))
    assert len(pending_multipart(s3)) == 1

    response = await http.delete(url, headers=headers(auth))

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert (await http.head(url, headers=headers(auth))).status_code == 404
    assert_problem(await send(http, url, auth, PART, data(PART), expect=404), 404)
    assert_problem(await http.delete(url, headers=headers(auth)), 404)
    assert pending_multipart(s3) == []
    assert stored_objects(s3) == []
    assert await upload_rows(services) == []
    assert await part_rows(services) == []
    (event,) = await events(services, "upload.terminated")
    assert event.target_id == url.rsplit("/", 1)[1]


async def test_expired_uploads_are_gone_and_gc_aborts_their_parts(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    auth = world["alice"].auth
    stale = await new_upload(http, auth, world.acme_folder, 2 * PART, "stale.bin")
    await send(http, stale, auth, 0, data(PART))
    live = await new_upload(http, auth, world.acme_folder, PART + 1, "live.bin")
    await send(http, live, auth, 0, data(PART))
    assert len(pending_multipart(s3)) == 2

    # Garbage collection with no grace at all still leaves live uploads alone.
    kept = await maintenance.collect_garbage(services.sessions, services.store, grace=timedelta(0))
    assert kept.uploads_aborted == 0
    assert len(pending_multipart(s3)) == 2

    stale_id = uuid.UUID(stale.rsplit("/", 1)[1])
    async with transaction(services.sessions) as session:
        upload = await session.get(Upload, stale_id)
        assert upload is not None
        upload.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(upload)
    # Expired is gone for the client at once, whether or not gc has run.
    assert (await http.head(stale, headers=headers(auth))).status_code == 404
    assert_problem(await send(http, stale, auth, PART, data(PART), expect=404), 404)

    collected = await maintenance.collect_garbage(
        services.sessions, services.store, grace=timedelta(hours=24)
    )

    assert collected.uploads_aborted == 1
    assert len(pending_multipart(s3)) == 1
    assert [u.id for u in await upload_rows(services)] == [uuid.UUID(live.rsplit("/", 1)[1])]
    assert all(p.upload_id != stale_id for p in await part_rows(services))
    (event,) = await events(services, "upload.expired")
    assert event.target_id == str(stale_id)
    assert event.actor_role == "system"
    # The live one finishes as if nothing happened.
    done = await send(http, live, auth, PART, data(PART + 1)[PART:])
    assert done.headers["document-version"] == "1"
    assert pending_multipart(s3) == []
