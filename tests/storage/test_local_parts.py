"""How the local store keeps multipart parts: in place when they line up (so completing
copies nothing), in files of their own otherwise, and durable before they are acknowledged."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
from pathlib import Path

import anyio
import pytest

import storage.local
import storage.local_multipart
from storage import LocalObjectStore, ObjectNotFoundError, StorageError

KiB = 1024
OWN_FILE = re.compile(r"[0-9]+\.[0-9a-f]{32}")


def chunk(size: int, seed: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(size))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "objects"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


async def read(store: LocalObjectStore, key: str) -> bytes:
    return b"".join([piece async for piece in store.read(key)])


def upload_dir(root: Path, upload_id: str) -> Path:
    return root / ".multipart" / upload_id


async def test_parts_in_order_are_renamed_into_place_without_a_copy(
    store: LocalObjectStore, root: Path
) -> None:
    # The vault's shape: part 1 carries the header, so it is longer than the others.
    parts = [chunk(300 * KiB, 1), chunk(256 * KiB, 2), chunk(256 * KiB, 3), chunk(10, 4)]
    upload_id = await store.create_multipart("docs/a")
    etags = [
        (n, await store.upload_part("docs/a", upload_id, n, p)) for n, p in enumerate(parts, 1)
    ]
    assembled = os.stat(upload_dir(root, upload_id) / "data")
    assert assembled.st_size == sum(map(len, parts))
    own_files = [p for p in upload_dir(root, upload_id).iterdir() if OWN_FILE.fullmatch(p.name)]
    assert own_files == []

    await store.complete_multipart("docs/a", upload_id, etags)

    assert os.stat(root / "docs" / "a").st_ino == assembled.st_ino  # renamed, not copied
    assert await read(store, "docs/a") == b"".join(parts)
    assert not upload_dir(root, upload_id).exists()


async def test_etags_are_random_tokens_not_hashes(store: LocalObjectStore) -> None:
    upload_id = await store.create_multipart("k")
    first = await store.upload_part("k", upload_id, 1, b"same bytes")
    again = await store.upload_part("k", upload_id, 1, b"same bytes")
    assert first != again
    assert hashlib.md5(b"same bytes", usedforsecurity=False).hexdigest() not in (first, again)
    with pytest.raises(StorageError, match="replaced"):
        await store.complete_multipart("k", upload_id, [(1, first)])
    await store.complete_multipart("k", upload_id, [(1, again)])
    assert await read(store, "k") == b"same bytes"


@pytest.mark.parametrize(
    "order",
    [
        [2, 1, 3],  # part 2 before anything says where it starts
        [1, 3, 2],
        [3, 2, 1],
    ],
)
async def test_parts_out_of_order_still_make_the_object(
    store: LocalObjectStore, order: list[int]
) -> None:
    parts = {1: chunk(70 * KiB, 1), 2: chunk(64 * KiB, 2), 3: chunk(5, 3)}
    upload_id = await store.create_multipart("k")
    etags = {n: await store.upload_part("k", upload_id, n, parts[n]) for n in order}
    await store.complete_multipart("k", upload_id, sorted(etags.items()))
    assert await read(store, "k") == parts[1] + parts[2] + parts[3]


async def test_parts_of_uneven_sizes_are_copied_in_order(store: LocalObjectStore) -> None:
    # Part 2 sets the stride; part 3 is longer, so it cannot sit in the data file.
    parts = [chunk(10 * KiB, 1), chunk(3 * KiB, 2), chunk(50 * KiB, 3), chunk(1, 4)]
    upload_id = await store.create_multipart("k")
    etags = [(n, await store.upload_part("k", upload_id, n, p)) for n, p in enumerate(parts, 1)]
    await store.complete_multipart("k", upload_id, etags)
    assert await read(store, "k") == b"".join(parts)


async def test_a_replaced_part_goes_to_its_own_file_and_wins(
    store: LocalObjectStore, root: Path
) -> None:
    upload_id = await store.create_multipart("k")
    one = await store.upload_part("k", upload_id, 1, chunk(8 * KiB, 1))
    await store.upload_part("k", upload_id, 2, chunk(8 * KiB, 2))
    two = await store.upload_part("k", upload_id, 2, chunk(8 * KiB, 9))
    replaced = await store.upload_part("k", upload_id, 2, chunk(8 * KiB, 7))
    # Only the latest upload of part 2 keeps a file of its own.
    names = {p.name for p in upload_dir(root, upload_id).iterdir()}
    assert {name for name in names if name.startswith("2")} == {"2", "2.part", f"2.{replaced}"}
    with pytest.raises(StorageError, match="replaced"):
        await store.complete_multipart("k", upload_id, [(1, one), (2, two)])
    await store.complete_multipart("k", upload_id, [(1, one), (2, replaced)])
    assert await read(store, "k") == chunk(8 * KiB, 1) + chunk(8 * KiB, 7)


async def test_completing_fewer_parts_than_stored_copies_just_those(
    store: LocalObjectStore,
) -> None:
    parts = [chunk(4 * KiB, n) for n in range(1, 4)]
    upload_id = await store.create_multipart("k")
    etags = [(n, await store.upload_part("k", upload_id, n, p)) for n, p in enumerate(parts, 1)]
    await store.complete_multipart("k", upload_id, etags[:2])
    assert await read(store, "k") == parts[0] + parts[1]


async def test_a_part_still_being_written_never_lands_in_the_object(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await store.create_multipart("k")
    etags = [
        (1, await store.upload_part("k", upload_id, 1, chunk(4 * KiB, 1))),
        (2, await store.upload_part("k", upload_id, 2, chunk(4 * KiB, 2))),
    ]
    # Part 3 has claimed its place in the data file and is writing there, slowly.
    writing, release = threading.Event(), threading.Event()
    real_write_at = storage.local_multipart._write_at

    def slow_write_at(path: Path, offset: int, data: bytes) -> None:
        writing.set()
        release.wait(10)
        real_write_at(path, offset, data)

    monkeypatch.setattr(storage.local_multipart, "_write_at", slow_write_at)
    outcome: list[BaseException] = []

    async def late_part() -> None:
        try:
            await store.upload_part("k", upload_id, 3, chunk(4 * KiB, 3))
        except ObjectNotFoundError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(late_part)
        await anyio.to_thread.run_sync(writing.wait, 10)
        await store.complete_multipart("k", upload_id, etags)
        release.set()

    [gone] = outcome  # the upload it belonged to is complete
    assert isinstance(gone, ObjectNotFoundError)
    object_file = root / "k"
    assert object_file.stat().st_size == 8 * KiB
    assert await read(store, "k") == chunk(4 * KiB, 1) + chunk(4 * KiB, 2)


async def test_an_acknowledged_part_is_on_disk(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await store.create_multipart("k")
    synced: list[str] = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    await store.upload_part("k", upload_id, 1, b"in place")
    await store.upload_part("k", upload_id, 1, b"in a file of its own")
    monkeypatch.undo()

    directory = str(upload_dir(root, upload_id))
    assert f"{directory}/data" in synced  # the bytes written in place
    assert any(OWN_FILE.fullmatch(path.removeprefix(f"{directory}/")) for path in synced)
    assert any(path.startswith(f"{directory}/.tmp.") for path in synced)  # each record
    assert synced.count(directory) >= 2  # each record's rename


async def test_parts_kept_by_an_earlier_version_of_the_store_still_complete(
    store: LocalObjectStore, root: Path
) -> None:
    # Earlier versions kept each part's raw bytes in a file named by its number, with the
    # part's MD5 as its etag; an upload begun before an upgrade finishes after it.
    upload_id = "0123456789abcdef0123456789abcdef"
    directory = upload_dir(root, upload_id)
    directory.mkdir(parents=True)
    (directory / "upload.json").write_text(
        json.dumps({"key": "k", "initiated": "2026-01-02T03:04:05+00:00"})
    )
    (directory / "1").write_bytes(b"written before ")
    (directory / "2").write_bytes(b"the upgrade, ")
    three = await store.upload_part("k", upload_id, 3, b"and after it")
    parts = await store.list_parts("k", upload_id)
    md5 = [
        hashlib.md5(raw, usedforsecurity=False).hexdigest()
        for raw in (b"written before ", b"the upgrade, ")
    ]
    assert [(p.part_number, p.etag) for p in parts] == [(1, md5[0]), (2, md5[1]), (3, three)]
    await store.complete_multipart("k", upload_id, [(p.part_number, p.etag) for p in parts])
    assert await read(store, "k") == b"written before the upgrade, and after it"


async def test_joining_works_where_the_kernel_cannot_copy(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    parts = [chunk(3 * KiB, 1), chunk(2 * storage.local.MiB + 5, 2)]
    upload_id = await store.create_multipart("k")
    etags = [(n, await store.upload_part("k", upload_id, n, p)) for n, p in enumerate(parts, 1)]
    await store.complete_multipart("k", upload_id, etags)
    assert await read(store, "k") == b"".join(parts)


async def test_racing_uploads_of_one_part_leave_one_whole_part(
    store: LocalObjectStore, root: Path
) -> None:
    upload_id = await store.create_multipart("k")
    one = await store.upload_part("k", upload_id, 1, chunk(64 * KiB, 1))
    versions = {bytes([n]) * (512 * KiB) for n in range(6)}
    etags: dict[str, bytes] = {}

    async def put(data: bytes) -> None:
        etags[await store.upload_part("k", upload_id, 2, data)] = data

    async with anyio.create_task_group() as tasks:
        for data in versions:
            tasks.start_soon(put, data)

    [last] = [p.etag for p in await store.list_parts("k", upload_id) if p.part_number == 2]
    await store.complete_multipart("k", upload_id, [(1, one), (2, last)])
    assert await read(store, "k") == chunk(64 * KiB, 1) + etags[last]
    assert not upload_dir(root, upload_id).exists()


async def test_abort_during_a_part_write_leaves_nothing(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await store.create_multipart("k")
    writing, release = threading.Event(), threading.Event()
    real_write_new = storage.local_multipart._write_new

    def slow_write_new(path: Path, data: bytes) -> None:
        writing.set()
        release.wait(10)
        real_write_new(path, data)

    await store.upload_part("k", upload_id, 1, b"first")
    monkeypatch.setattr(storage.local_multipart, "_write_new", slow_write_new)
    outcome: list[BaseException] = []

    async def again() -> None:
        try:
            await store.upload_part("k", upload_id, 1, b"again")
        except ObjectNotFoundError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(again)
        await anyio.to_thread.run_sync(writing.wait, 10)
        await store.abort_multipart("k", upload_id)
        release.set()

    assert len(outcome) == 1
    assert list((root / ".multipart").iterdir()) == []
