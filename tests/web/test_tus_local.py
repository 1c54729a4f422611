"""Resumable uploads on the local store: parts written in place, the SHA-256 kept as parts
arrive (or, failing that, computed by reading back), and the object read back before the
version appears unless each part is still the one its sealing process wrote."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage import windows
from tests.fixtures.app import World
from tests.fixtures.tus import (
    PART,
    assert_problem,
    assert_stored,
    data,
    download,
    new_upload,
    send,
    versions,
)
from vault import crypto
from vault.crypto.digests import RunningDigests
from vault.uploads import finish as finish_module
from vault.uploads import part_buffer
from web.services import Services

WINDOW = 4 * 1024 * 1024  # the local store's windows, as web/services.py builds it


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """What each finisher found in the running digests."""
    found: list[str | None] = []
    real_take = RunningDigests.take

    def take(self: RunningDigests, upload_id: uuid.UUID, parts: int) -> str | None:
        digest = real_take(self, upload_id, parts)
        found.append(digest)
        return digest

    monkeypatch.setattr(RunningDigests, "take", take)
    return found


def multipart_dirs(services: Services) -> list[Path]:
    area = services.settings.objects_path / ".multipart"
    return [path for path in area.iterdir() if not path.name.startswith(".tmp.")]


async def test_the_digest_kept_as_parts_arrive_is_the_versions(
    http: httpx.AsyncClient, world: World, taken: list[str | None]
) -> None:
    auth = world["alice"].auth
    payload = data(3 * PART + 777, "running")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "running.bin")
    await send(http, url, auth, 0, payload[: 2 * PART])
    done = await send(http, url, auth, 2 * PART, payload[2 * PART :])

    expected = hashlib.sha256(payload).hexdigest()
    assert taken == [expected]  # the finisher had it without hashing again
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == expected
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_a_process_that_missed_parts_hashes_by_reading_back(
    http: httpx.AsyncClient, world: World, taken: list[str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 5, "elsewhere")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "elsewhere.bin")

    # Part 1 went through another process: this one never saw it.
    def skip(self: RunningDigests, upload_id: uuid.UUID, number: int) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(RunningDigests, "start", skip)
        await send(http, url, auth, 0, payload[:PART])
    done = await send(http, url, auth, PART, payload[PART:])

    assert taken == [None]
    await assert_stored(http, auth, done.headers["document-id"], payload)


@pytest.fixture
def window_buffers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every buffer the local store maps to read an object into: two of a whole
    window per read (a download, or each half of a read-back), the window being used and the
    next, read meanwhile, reused in turn; and one of its own for the read's shorter last
    window."""
    sizes: list[int] = []
    make = windows.new_buffer

    def new_buffer(size: int) -> windows.WindowBuffer:
        sizes.append(size)
        return make(size)

    monkeypatch.setattr(windows, "new_buffer", new_buffer)
    return sizes


async def store_again(services: Services, number: int, body: bytes | None = None) -> None:
    """Store part `number` of the one pending upload again, through the store, as a racing
    request would: its bytes as they are (or `body`), under a new etag."""
    [upload_dir] = multipart_dirs(services)
    key = json.loads((upload_dir / "upload.json").read_bytes())["key"]
    record = json.loads((upload_dir / f"{number}.part").read_bytes())
    if "offset" in record:  # written in place, in the upload's one data file
        offset = record["offset"]
        same = (upload_dir / "data").read_bytes()[offset : offset + record["size"]]
    else:  # a part whose slot was not free when it came: a file of its own
        same = (upload_dir / record["file"]).read_bytes()
    await services.store.upload_part(key, upload_dir.name, number, same if body is None else body)


async def assert_no_version(
    http: httpx.AsyncClient, auth: dict[str, str], world: World, refused: httpx.Response, name: str
) -> None:
    """The final PATCH was refused and its file did not appear in the folder."""
    assert_problem(refused, 500)
    assert "document-id" not in refused.headers
    listing = await http.get(f"/api/v1/folders/{world.acme_folder}", headers=auth)
    assert listing.status_code == 200
    assert name not in listing.text


async def test_a_part_whose_etag_is_the_one_recorded_is_not_read_back(
    http: httpx.AsyncClient,
    world: World,
    taken: list[str | None],
    window_buffers: list[int],
) -> None:
    """Each part's bytes were written once, under the etag recorded with it, by the process
    that sealed them: the version appears without its object being read again."""
    auth = world["alice"].auth
    payload = data(2 * PART + 4321, "pinned")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "pinned.bin")
    await send(http, url, auth, 0, payload[: PART + 100_000])
    done = await send(http, url, auth, PART + 65536, payload[PART + 65536 :])

    assert taken == [hashlib.sha256(payload).hexdigest()]
    assert window_buffers == []
    await assert_stored(http, auth, done.headers["document-id"], payload)
    # The hook does see reads: two whole windows' buffers, and the last window's.
    assert sorted(window_buffers)[1:] == [WINDOW, WINDOW] and window_buffers[-1] < WINDOW


async def test_an_upload_of_one_part_is_pinned_by_the_etag_of_its_object(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    window_buffers: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its object was written once, whole, by the process that sealed it: not read back,
    unless it was written again since (a new file, so another etag)."""
    auth = world["alice"].auth
    payload = data(100_000, "whole")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "whole.bin")
    done = await send(http, url, auth, 0, payload)

    assert window_buffers == []
    (version,) = await versions(http, auth, done.headers["document-id"])
    assert version["sha256"] == hashlib.sha256(payload).hexdigest()

    assemble = finish_module._assemble

    async def rewritten_first(*args: Any, **kwargs: Any) -> Any:
        key = args[2].plan.storage_key
        size = (await services.store.head(key)).size
        await services.store.delete(key)
        assert await services.store.put_new(key, bytes(size)) is not None
        return await assemble(*args, **kwargs)

    monkeypatch.setattr(finish_module, "_assemble", rewritten_first)
    url = await new_upload(http, auth, world.acme_folder, len(payload), "rewritten.bin")
    refused = await send(http, url, auth, 0, payload, expect=500)

    await assert_no_version(http, auth, world, refused, "rewritten.bin")
    assert window_buffers != []  # read back, and refused by its tags


async def test_a_part_stored_again_with_other_bytes_is_caught_by_reading_back(
    http: httpx.AsyncClient, world: World, services: Services, taken: list[str | None]
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 99, "replaced")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "replaced.bin")
    await send(http, url, auth, 0, payload[:PART])
    # Part 1 stored again through the store, with other bytes of its size: a new etag.
    [upload_dir] = multipart_dirs(services)
    size = json.loads((upload_dir / "1.part").read_bytes())["size"]
    await store_again(services, 1, bytes(size))

    refused = await send(http, url, auth, PART, payload[PART:], expect=500)

    await assert_no_version(http, auth, world, refused, "replaced.bin")
    assert taken == [hashlib.sha256(payload).hexdigest()]  # the digest alone did not do


async def test_without_the_running_digest_every_segment_is_authenticated_by_reading_back(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = world["alice"].auth
    payload = data(2 * PART + 99, "tampered")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "tampered.bin")
    await send(http, url, auth, 0, payload[:PART])
    # Someone with write access to the disk flips a byte of the stored ciphertext.
    [upload_dir] = multipart_dirs(services)
    assembled = upload_dir / "data"
    stored = bytearray(assembled.read_bytes())
    stored[1000] ^= 1
    assembled.write_bytes(bytes(stored))
    # Part 1 went through another process, or this one restarted: no running digest.
    monkeypatch.setattr(RunningDigests, "take", lambda *args: None)

    refused = await send(http, url, auth, PART, payload[PART:], expect=500)

    await assert_no_version(http, auth, world, refused, "tampered.bin")


async def test_the_finishing_read_back_reads_each_half_into_two_reused_buffers(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    taken: list[str | None],
    window_buffers: list[int],
) -> None:
    """The read-back lets go of each window before it asks for the next, so the store reads
    the window after next into the same buffer: two mappings for each of the object's two
    halves, not one for every window (mapped afresh, every page of a window faults in
    again)."""
    auth = world["alice"].auth
    payload = data(6 * PART + 5, "reread")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "reread.bin")
    await send(http, url, auth, 0, payload[: 3 * PART])
    # A racing request stored part 2 again, the same bytes under a new etag: read back.
    await store_again(services, 2)
    done = await send(http, url, auth, 3 * PART, payload[3 * PART :])

    assert taken == [hashlib.sha256(payload).hexdigest()]  # so the two halves are read at once
    # 30 MiB in 4 MiB windows: eight windows or more, in four buffers and each half's last.
    assert window_buffers.count(WINDOW) == 4 and len(window_buffers) == 6
    assert await download(http, auth, done.headers["document-id"]) == payload


async def test_a_patch_reuses_the_buffers_of_stored_parts(
    http: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored part's buffer, its pages resident, takes a later part of the same request:
    a PATCH maps no more part buffers than it holds parts at once, and every part keeps its
    own bytes."""
    mapped: list[int] = []
    original = crypto.page_buffer

    def counted(size: int, *, lead: int = 0) -> memoryview:
        mapped.append(size)
        return original(size, lead=lead)

    monkeypatch.setattr(part_buffer, "page_buffer", counted)
    auth = world["alice"].auth
    payload = data(12 * PART + 777, "recycled")
    url = await new_upload(http, auth, world.acme_folder, len(payload), "recycled.bin")
    done = await send(http, url, auth, 0, payload)

    assert await download(http, auth, done.headers["document-id"]) == payload
    # Thirteen parts: the first (with room for the header), then at most one being
    # received, one sealed and two stored.
    assert 0 < len(mapped) <= 1 + 4, mapped
