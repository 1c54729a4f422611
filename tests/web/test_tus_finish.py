"""Finishing a resumable upload on S3 without reading the object back, where the store's
per-part evidence and the sealing process's own digest prove it (an upload of one part,
stored with one PUT, included); with a full read-back where they do not. The app's S3
client says which requests it sent."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import select
from starlette.types import ASGIApp

from storage.errors import StorageError
from tests.fixtures.app import World
from tests.fixtures.tus import (
    PART,
    TUS,
    assert_problem,
    assert_stored,
    data,
    new_upload,
    offset_of,
    pending_multipart,
    send,
    versions,
)
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault.crypto.digests import RunningDigests
from vault.uploads import Upload
from vault.uploads import finish as finish_module
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


class S3Calls:
    """The S3 operations the app's own client sends, by name, with the key of each: counted
    by a botocore event hook, so the count holds on any S3 server (moto, Ceph RGW, AWS)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, model: object, params: dict[str, object], **_: object) -> None:
        self.calls.append((getattr(model, "name", ""), str(params.get("Key", ""))))

    def on(self, key: str) -> Counter[str]:
        return Counter(name for name, seen in self.calls if seen.endswith(key))


@pytest.fixture
async def lifespan(settings: Settings) -> AsyncIterator[LifespanManager]:
    async with LifespanManager(create_app(settings)) as manager:
        yield manager


@pytest.fixture
def app(lifespan: LifespanManager) -> ASGIApp:
    """The app of `http`, started here so its own object store can be watched."""
    return lifespan.app


@pytest.fixture
def s3_calls(lifespan: LifespanManager) -> Iterator[S3Calls]:
    calls = S3Calls()
    app_services: Services = lifespan._state["services"]
    events = app_services.store._client.meta.events  # type: ignore[attr-defined]
    events.register("provide-client-params.s3", calls, unique_id="test-s3-calls")
    try:
        yield calls
    finally:
        events.unregister("provide-client-params.s3", unique_id="test-s3-calls")


async def test_an_upload_sealed_by_one_process_is_not_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    s3_calls: S3Calls,
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 4321, "pinned")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "pinned.bin")
    key = await storage_key(services, url)

    await send(http, url, auth, 0, payload[: PART + 100_000])
    done = await send(http, url, auth, PART + 65536, payload[PART + 65536 :])

    assert s3_calls.on(key)["GetObject"] == 0
    await assert_stored(http, auth, done.headers["document-id"], payload)
    assert s3_calls.on(key)["GetObject"] > 0  # the hook does see reads


async def test_without_the_running_digest_the_object_is_read_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    s3_calls: S3Calls,
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

    assert s3_calls.on(key)["GetObject"] > 0
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

    await assert_refused_unlisted(http, world, refused, "replaced.bin")


async def assert_refused_unlisted(
    http: httpx.AsyncClient, world: World, refused: httpx.Response, name: str
) -> None:
    """The finish failed as a server error, and no document of that name appeared."""
    assert_problem(refused, 500)
    listing = await http.get(f"/api/v1/folders/{world.acme_folder}", headers=world["alice"].auth)
    assert name not in listing.text


# --- An upload of one part: one PUT, pinned by its etag -----------------------------------------


async def test_an_upload_of_one_part_is_one_put_pinned_by_its_etag(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    s3_calls: S3Calls,
) -> None:
    auth = world["alice"].auth
    payload = data(100_000, "one part")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "one-part.bin")
    key = await storage_key(services, url)

    # Two requests: the first one's whole segment is staged, the second completes the part.
    await send(http, url, auth, 0, payload[:70_000])
    done = await send(http, url, auth, 65536, payload[65536:])

    calls = s3_calls.on(key)
    assert calls["PutObject"] == 1
    for multipart in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        assert calls[multipart] == 0, calls
    # The PUT was checked on receipt, and the object still carries the etag it returned:
    # nothing is read back.
    assert calls["GetObject"] == 0, calls
    assert pending_multipart(s3) == []
    await assert_stored(http, auth, done.headers["document-id"], payload)


async def test_a_one_part_object_replaced_after_its_put_is_caught(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replaced between the PUT and the finish, in the same request: the etag differs, so
    the object is read back, and its tags refuse it."""
    client, bucket = s3
    assemble = finish_module._assemble

    async def swapped_first(*args: Any, **kwargs: Any) -> Any:
        key = args[2].plan.storage_key
        size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        client.put_object(Bucket=bucket, Key=key, Body=bytes(size))
        return await assemble(*args, **kwargs)

    monkeypatch.setattr(finish_module, "_assemble", swapped_first)
    auth = world["alice"].auth
    payload = data(150_000, "swapped at once")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "swapped-at-once.bin")

    refused = await send(http, url, auth, 0, payload, expect=500)

    await assert_refused_unlisted(http, world, refused, "swapped-at-once.bin")


async def stored_unfinished(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    name: str,
) -> tuple[str, str, bytes]:
    """An upload of one part whose object is stored but whose finish failed, as with a
    store gone away between the two: (its URL, its storage key, its bytes)."""
    assemble = finish_module._assemble

    async def once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(finish_module, "_assemble", assemble)
        raise StorageError("the store went away")

    monkeypatch.setattr(finish_module, "_assemble", once)
    auth = world["alice"].auth
    payload = data(size, name)
    url = await new_upload(http, auth, world.acme_folder, len(payload), name)
    refused = await send(http, url, auth, 0, payload, expect=503)
    assert_problem(refused, 503)
    assert await offset_of(http, url, auth) < len(payload)  # not complete: to be sent again
    return url, await storage_key(services, url), payload


async def test_a_one_part_upload_whose_finish_failed_finishes_when_sent_again(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    s3_calls: S3Calls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = world["alice"].auth
    url, key, payload = await stored_unfinished(
        http, world, services, monkeypatch, 300_000, "again.bin"
    )

    offset = await offset_of(http, url, auth)
    done = await send(http, url, auth, offset, payload[offset:])

    # The object stored the first time is kept, not written again, and still pinned by the
    # etag recorded for it then.
    calls = s3_calls.on(key)
    assert calls["PutObject"] == 1, calls
    assert calls["GetObject"] == 0, calls
    await assert_stored(http, auth, done.headers["document-id"], payload)


async def test_a_one_part_object_replaced_before_its_finish_is_caught(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = world["alice"].auth
    url, key, payload = await stored_unfinished(
        http, world, services, monkeypatch, 200_000, "swapped.bin"
    )
    # Someone with write access to the bucket replaces the object with bytes of its size.
    client, bucket = s3
    size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    client.put_object(Bucket=bucket, Key=key, Body=bytes(size))

    offset = await offset_of(http, url, auth)
    refused = await send(http, url, auth, offset, payload[offset:], expect=500)

    await assert_refused_unlisted(http, world, refused, "swapped.bin")


async def test_a_terminated_one_part_upload_leaves_no_object(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    s3: tuple[S3Client, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, key, _ = await stored_unfinished(http, world, services, monkeypatch, 50_000, "dropped.bin")
    client, bucket = s3
    assert client.list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] == 1

    gone = await http.delete(url, headers={**TUS, **world["alice"].auth})

    assert gone.status_code == 204
    assert client.list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] == 0
