"""A part in memory once while it is sealed: its plaintext arrives laid out as it will be
sealed, each segment's ciphertext is written over it, and only the pages written to are
resident."""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import resource
from pathlib import Path

import pytest

from tests.fixtures.crypto_objects import CTX, DEK, PREFIX, SALT, S, plaintext
from tests.fixtures.memory import peak_rss_growth
from vault import crypto
from vault.crypto import TAG_SIZE, SegmentSealer
from vault.uploads.part_buffer import PartBuffer, release_pages

MiB = 1 << 20
STATM = Path("/proc/self/statm")
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def resident() -> int:
    if not STATM.exists():
        pytest.skip("needs Linux's /proc/self/statm")
    return int(STATM.read_text().split()[1]) * 4096


def sealer() -> SegmentSealer:
    return SegmentSealer(DEK, CTX, SALT, PREFIX)


def test_a_part_buffer_keeps_what_is_appended_and_refuses_more() -> None:
    buffer = PartBuffer(3 * S, S)
    buffer.extend(b"a" * (S - 5))
    buffer.extend(memoryview(b"b" * (S + 5)))  # across a segment's end and its tag's room
    assert len(buffer) == 2 * S
    assert buffer.plaintext() == b"a" * (S - 5) + b"b" * (S + 5)
    with pytest.raises(ValueError, match="holds"):
        buffer.extend(b"c" * (S + 1))
    assert len(buffer) == 2 * S
    # Each segment sits where its ciphertext goes, with its tag's room after it.
    assert bytes(buffer.sealable[S : S + TAG_SIZE]) == bytes(TAG_SIZE)
    assert bytes(buffer.sealable[S + TAG_SIZE : S + TAG_SIZE + 5]) == b"bbbbb"


def test_only_written_pages_are_resident() -> None:
    before = resident()
    buffer = PartBuffer(64 * MiB, S)
    assert resident() - before < 4 * MiB  # reserved, not resident
    for _ in range(32):
        buffer.extend(b"x" * MiB)
    assert resident() - before > 28 * MiB
    assert resident() - before < 40 * MiB


@pytest.mark.parametrize(
    ("number", "size", "final"),
    [
        (1, 8 * S, False),  # the header first
        (3, 8 * S, False),
        (2, 3 * S + 100, True),  # a short last segment, with the final flag
        (1, 1, True),
        (1, 0, True),  # the empty file: one empty segment
    ],
)
def test_sealing_in_place_seals_as_sealing_into_a_buffer_of_its_own(
    number: int, size: int, final: bool
) -> None:
    data = plaintext(size, seed=number)
    lead = crypto.HEADER_SIZE if number == 1 else 0
    buffer = PartBuffer(8 * S, S, lead=lead)
    buffer.extend(data)
    seen: list[bytes] = []

    part = crypto.encrypt_part_in_place(
        sealer(),
        number,
        8,
        buffer.sealable,
        size,
        final=final,
        before=lambda c: seen.append(bytes(c)),
    )
    apart = crypto.encrypt_part(sealer(), number, 8, data, final=final)

    assert part.ciphertext == apart.ciphertext and part.tags == apart.tags
    assert part.ciphertext.obj is buffer.sealable.obj  # the buffer's own memory, not a copy
    assert b"".join(seen) == data  # each segment's plaintext, in order, before it went
    assert len(part.ciphertext) == crypto.sealed_part_size(size, S, lead)


def test_sealing_in_place_refuses_a_buffer_without_room_for_the_tags() -> None:
    with pytest.raises(ValueError, match="seal into"):
        crypto.encrypt_part_in_place(
            sealer(), 2, 2, memoryview(bytearray(2 * S)), 2 * S, final=False
        )


def test_a_part_is_hashed_as_it_is_sealed_and_in_memory_once() -> None:
    """What appending does: hash each segment just before it is sealed over; the part's
    ciphertext and digest are those of sealing and hashing it apart, and sealing it adds no
    second part's worth of memory."""
    k = 8 * MiB // S
    data = plaintext(k * S, seed=5)
    buffer = PartBuffer(len(data), S, lead=crypto.HEADER_SIZE)
    buffer.extend(data)
    digest = hashlib.sha256()

    with peak_rss_growth() as growth:
        part = crypto.encrypt_part_in_place(
            sealer(), 1, k, buffer.sealable, len(data), final=True, before=digest.update
        )
    whole = crypto.encrypt_part(sealer(), 1, k, data, final=True)

    assert part.ciphertext == whole.ciphertext
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert growth() < 1 * MiB  # sealed into another buffer, this was 2–3 MiB with huge pages


def needs_huge_pages() -> None:
    if "[never]" in (THP.read_text() if THP.exists() else "[never]"):
        pytest.skip("the system offers no transparent huge pages")


def test_a_page_buffer_starts_its_huge_pages_after_its_lead() -> None:
    needs_huge_pages()  # the kernel aligns the mapping on a huge page only where it has them
    for lead in (0, 1, 2176, 4096):
        buffer = crypto.page_buffer(8 * MiB + lead, lead=lead)
        address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
        rounded = -(-lead // mmap.PAGESIZE) * mmap.PAGESIZE
        assert (address + rounded) % crypto.HUGE_PAGE == 0


def test_filling_a_page_buffer_takes_a_fault_per_huge_page_not_per_page() -> None:
    needs_huge_pages()
    buffer = crypto.page_buffer(8 * MiB + 2176)  # a sealed 8 MiB part and its tags
    sealed = b"y" * len(buffer)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer[:] = sealed
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 256  # 2,049 with 4 KiB pages; 4 huge pages and the tail's one here


def test_a_stored_ciphertext_gives_all_its_pages_back_though_still_referenced() -> None:
    before = resident()
    ciphertext = crypto.page_buffer(32 * MiB)
    ciphertext[:] = b"y" * (32 * MiB)
    held_elsewhere = ciphertext[1:]  # as a worker thread's arguments hold it a moment longer
    filled = resident()
    assert filled - before > 28 * MiB
    release_pages(ciphertext)
    assert filled - resident() > 28 * MiB
    assert held_elsewhere[0] == 0  # given back: reads as zeros from now on
    release_pages(memoryview(b"not a mapping"))  # any other buffer: nothing to give back
