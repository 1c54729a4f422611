"""The local store never writes outside its root, and never shows a partial object."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest

from storage import InvalidKeyError, LocalObjectStore, ObjectNotFoundError, StorageError

BAD_KEYS = [
    "",
    ".",
    "..",
    "../x",
    "a/../../x",
    "a/./b",
    "a/..",
    "/etc/passwd",
    "a\\b",
    "..\\x",
    "a\x00b",
    "a//b",
    "a/",
    ".multipart/x",
    "x/.tmp.y",
    "bad\udc80surrogate",
]


def files_under(path: Path) -> set[Path]:
    return {p.relative_to(path) for p in path.rglob("*")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "objects"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


async def write(store: LocalObjectStore, key: str, *parts: bytes) -> None:
    upload_id = await store.create_multipart(key)
    etags = [
        (n, await store.upload_part(key, upload_id, n, data)) for n, data in enumerate(parts, 1)
    ]
    await store.complete_multipart(key, upload_id, etags)


async def read(store: LocalObjectStore, key: str) -> bytes:
    return b"".join([piece async for piece in store.read(key)])


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused_everywhere(
    store: LocalObjectStore, tmp_path: Path, key: str
) -> None:
    good_id = await store.create_multipart("good")
    await store.upload_part("good", good_id, 1, b"part")
    before = files_under(tmp_path)

    operations: list[Callable[[], Coroutine[Any, Any, object]]] = [
        lambda: store.create_multipart(key),
        lambda: store.upload_part(key, good_id, 1, b"evil"),
        lambda: store.list_parts(key, good_id),
        lambda: store.complete_multipart(key, good_id, [(1, "etag")]),
        lambda: store.abort_multipart(key, good_id),
        lambda: store.head(key),
        lambda: store.delete(key),
        lambda: read(store, key),
    ]
    for operation in operations:
        with pytest.raises(InvalidKeyError):
            await operation()

    assert files_under(tmp_path) == before
    assert [u.upload_id for u in await store.list_multipart_uploads()] == [good_id]


async def test_a_symlink_cannot_lead_out_of_the_root(
    store: LocalObjectStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    (root / "link").symlink_to(outside)

    with pytest.raises(InvalidKeyError):
        await store.head("link/secret")
    with pytest.raises(InvalidKeyError):
        await read(store, "link/secret")
    with pytest.raises(InvalidKeyError):
        await store.create_multipart("link/planted")
    with pytest.raises(InvalidKeyError):
        await store.delete("link/secret")
    assert files_under(outside) == {Path("secret")}
    assert [info.key async for info in store.list()] == []


async def test_upload_ids_cannot_name_paths(store: LocalObjectStore, root: Path) -> None:
    (root / "victim").mkdir()
    for upload_id in ["../victim", "..", "/etc", "a" * 31, "A" * 32, "0" * 32]:
        with pytest.raises(ObjectNotFoundError):
            await store.upload_part("key", upload_id, 1, b"x")
        with pytest.raises(ObjectNotFoundError):
            await store.list_parts("key", upload_id)
        await store.abort_multipart("key", upload_id)
    assert (root / "victim").is_dir()


async def test_upload_ids_are_random(store: LocalObjectStore) -> None:
    ids = {await store.create_multipart("same/key") for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_upload_belongs_to_its_key(store: LocalObjectStore) -> None:
    upload_id = await store.create_multipart("mine")
    with pytest.raises(ObjectNotFoundError):
        await store.upload_part("theirs", upload_id, 1, b"x")
    await store.abort_multipart("theirs", upload_id)  # a missing upload: nothing happens
    assert [u.upload_id for u in await store.list_multipart_uploads()] == [upload_id]


async def test_part_numbers_are_bounded(store: LocalObjectStore) -> None:
    upload_id = await store.create_multipart("k")
    for number in [0, -1, 10_001]:
        with pytest.raises(StorageError):
            await store.upload_part("k", upload_id, number, b"x")


async def test_parts_out_of_order_or_missing_are_refused(store: LocalObjectStore) -> None:
    upload_id = await store.create_multipart("k")
    one = await store.upload_part("k", upload_id, 1, b"1")
    two = await store.upload_part("k", upload_id, 2, b"2")
    for parts in [[], [(2, two), (1, one)], [(1, one), (1, one)], [(1, one), (3, two)]]:
        with pytest.raises(StorageError):
            await store.complete_multipart("k", upload_id, parts)
    with pytest.raises(ObjectNotFoundError):
        await store.head("k")
    await store.complete_multipart("k", upload_id, [(1, one), (2, two)])
    assert await read(store, "k") == b"12"


async def test_crash_before_complete_leaves_no_object(root: Path) -> None:
    store = LocalObjectStore(root)
    upload_id = await store.create_multipart("objects/doc")
    await store.upload_part("objects/doc", upload_id, 1, b"half of the ")
    await store.upload_part("objects/doc", upload_id, 2, b"ciphertext")
    # The process dies here. A later process sees no object, only a stale upload to collect.
    del store
    after_restart = LocalObjectStore(root)
    with pytest.raises(ObjectNotFoundError):
        await after_restart.head("objects/doc")
    assert [info.key async for info in after_restart.list()] == []
    [stale] = await after_restart.list_multipart_uploads("objects/")
    assert (stale.key, stale.upload_id) == ("objects/doc", upload_id)
    await after_restart.abort_multipart(stale.key, stale.upload_id)
    assert await after_restart.list_multipart_uploads() == []
    assert files_under(root / ".multipart") == set()


async def test_crash_during_complete_leaves_the_old_object(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write(store, "objects/doc", b"version 1")
    upload_id = await store.create_multipart("objects/doc")
    etag = await store.upload_part("objects/doc", upload_id, 1, b"version 2")

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", crash)
        with pytest.raises(StorageError):
            await store.complete_multipart("objects/doc", upload_id, [(1, etag)])
    assert await read(store, "objects/doc") == b"version 1"
    assert files_under(root / "objects") == {Path("doc")}  # the temporary file is gone

    # A temporary file left by a real crash is never listed nor readable as an object.
    (root / "objects" / ".tmp.0123456789abcdef.doc").write_bytes(b"vers")
    assert [info.key async for info in store.list()] == ["objects/doc"]
    await store.complete_multipart("objects/doc", upload_id, [(1, etag)])
    assert await read(store, "objects/doc") == b"version 2"


async def test_complete_syncs_the_file_and_its_directory(
    store: LocalObjectStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await store.create_multipart("new/dir/doc")
    etag = await store.upload_part("new/dir/doc", upload_id, 1, b"durable")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await store.complete_multipart("new/dir/doc", upload_id, [(1, etag)])
    monkeypatch.undo()

    directory = str(root / "new" / "dir")
    assert any(path.startswith(directory + "/.tmp.") for path in synced)  # the data
    assert synced.count(directory) == 1  # the rename into it
    assert str(root / "new") in synced  # the directories made for it
    assert str(root) in synced


async def test_concurrent_completes_of_one_key_leave_one_whole_object(
    store: LocalObjectStore, root: Path
) -> None:
    key = "objects/contested"
    versions = [bytes([n]) * (256 * 1024 + n) for n in range(8)]
    uploads: list[tuple[str, list[tuple[int, str]]]] = []
    for data in versions:
        upload_id = await store.create_multipart(key)
        half = len(data) // 2
        etags = [
            (1, await store.upload_part(key, upload_id, 1, data[:half])),
            (2, await store.upload_part(key, upload_id, 2, data[half:])),
        ]
        uploads.append((upload_id, etags))

    async with anyio.create_task_group() as tasks:
        for upload_id, etags in uploads:
            tasks.start_soon(store.complete_multipart, key, upload_id, etags)

    assert await read(store, key) in versions
    assert [info.key async for info in store.list()] == [key]
    assert files_under(root / "objects") == {Path("contested")}
    assert await store.list_multipart_uploads() == []


async def test_concurrent_completes_of_one_upload(store: LocalObjectStore) -> None:
    key = "objects/twice"
    data = os.urandom(3 * 1024 * 1024)
    upload_id = await store.create_multipart(key)
    etags = [(1, await store.upload_part(key, upload_id, 1, data))]
    outcomes: list[str] = []

    async def complete() -> None:
        try:
            await store.complete_multipart(key, upload_id, etags)
            outcomes.append("done")
        except ObjectNotFoundError:
            outcomes.append("gone")

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(complete)
    assert "done" in outcomes
    assert await read(store, key) == data
    with pytest.raises(ObjectNotFoundError):
        await store.complete_multipart(key, upload_id, etags)
    with pytest.raises(ObjectNotFoundError):
        await store.upload_part(key, upload_id, 2, b"late")


async def test_a_key_cannot_run_through_an_object(store: LocalObjectStore) -> None:
    await write(store, "a/b", b"object")
    upload_id = await store.create_multipart("a/b/c")
    etag = await store.upload_part("a/b/c", upload_id, 1, b"x")
    with pytest.raises(InvalidKeyError):
        await store.complete_multipart("a/b/c", upload_id, [(1, etag)])
    assert await read(store, "a/b") == b"object"

    await write(store, "d/e/f", b"deep")
    upload_id = await store.create_multipart("d/e")
    etag = await store.upload_part("d/e", upload_id, 1, b"x")
    with pytest.raises(InvalidKeyError):
        await store.complete_multipart("d/e", upload_id, [(1, etag)])
    assert await read(store, "d/e/f") == b"deep"


async def test_foreign_files_are_not_listed(store: LocalObjectStore, root: Path) -> None:
    await write(store, "real", b"x")
    (root / "weird\\name").write_bytes(b"")
    (root / "fifo-dir").mkdir()
    os.mkfifo(root / "fifo-dir" / "pipe")
    (root / "dangling").symlink_to(root / "nowhere")
    assert [info.key async for info in store.list()] == ["real"]


async def test_check(store: LocalObjectStore, root: Path, tmp_path: Path) -> None:
    await store.check()
    assert files_under(root) == set()
    with pytest.raises(StorageError, match="does not exist"):
        await LocalObjectStore(tmp_path / "missing").check()


async def test_reads_stream_in_chunks(root: Path) -> None:
    store = LocalObjectStore(root, read_chunk_size=1000)
    data = os.urandom(4567)
    await write(store, "k", data)
    pieces = [piece async for piece in store.read("k", 10)]
    assert [len(p) for p in pieces] == [1000, 1000, 1000, 1000, 557]
    assert b"".join(pieces) == data[10:]
    pieces = [piece async for piece in store.read("k", 10, 2011)]
    assert [len(p) for p in pieces] == [1000, 1000, 1]


async def test_an_object_deleted_mid_read_ends_the_read_with_an_error(root: Path) -> None:
    """Each window opens the file for itself, as each window from S3 is a GET of its own: a
    read goes on through the windows already read or opened, then fails, never cut short
    without a word."""
    store = LocalObjectStore(root, read_chunk_size=1000)
    data = os.urandom(8000)
    await write(store, "k", data)
    reader = store.read("k")
    got = bytearray(await anext(reader))
    await store.delete("k")

    async def the_rest() -> None:
        async for piece in reader:
            got.extend(piece)

    with pytest.raises(ObjectNotFoundError, match="deleted while it was read"):
        await the_rest()
    assert data.startswith(got) and len(got) < len(data)
