"""A part in memory about once while it is sealed: its plaintext's pages go back to the
system run by run as the part is sealed, and its ciphertext's pages become resident only
as they are written."""

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
from vault.crypto import SegmentSealer
from vault.uploads.part_buffer import PartBuffer, release_pages

MiB = 1 << 20
STATM = Path("/proc/self/statm")
THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def resident() -> int:
    if not STATM.exists():
        pytest.skip("needs Linux's /proc/self/statm")
    return int(STATM.read_text().split()[1]) * 4096


def test_a_part_buffer_keeps_what_is_appended_and_refuses_more() -> None:
    buffer = PartBuffer(3 * S)
    buffer.extend(b"a" * S)
    buffer.extend(memoryview(b"b" * S))
    assert len(buffer) == 2 * S
    assert buffer.view() == b"a" * S + b"b" * S
    with pytest.raises(ValueError, match="holds"):
        buffer.extend(b"c" * (S + 1))
    assert len(buffer) == 2 * S


def test_only_written_pages_are_resident_and_released_ones_go_back() -> None:
    before = resident()
    buffer = PartBuffer(64 * MiB)
    assert resident() - before < 4 * MiB  # reserved, not resident
    for _ in range(32):
        buffer.extend(b"x" * MiB)
    filled = resident()
    assert filled - before > 28 * MiB

    buffer.release(16 * MiB + 100)  # pages wholly below the offset only
    assert filled - resident() > 12 * MiB
    view = buffer.view()
    assert view[16 * MiB - 1] == 0  # given back: reads as zeros from now on
    assert view[16 * MiB] == ord("x")


def test_a_part_buffer_gives_back_huge_pages_whole_and_the_tail_page_by_page() -> None:
    size = 4 * MiB + 3 * 4096
    buffer = PartBuffer(size)
    buffer.extend(b"x" * size)
    buffer.release(3 * MiB)  # inside the second huge page: only the first goes
    view = buffer.view()
    assert view[2 * MiB - 1] == 0 and view[2 * MiB] == ord("x")
    buffer.release(4 * MiB + 4096 + 1)  # past the huge pages: small pages, as before
    assert view[4 * MiB + 4095] == 0 and view[4 * MiB + 4096] == ord("x")


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


def test_sealing_a_part_holds_at_most_a_huge_page_beyond_its_plaintext() -> None:
    """The ciphertext's next huge page fills only once the plaintext's before it is let go
    (sealed ahead of it, the header and the tags would take a second one first)."""
    needs_huge_pages()
    k = 8 * MiB // S
    buffer = PartBuffer(k * S)
    buffer.extend(plaintext(k * S, seed=6))
    done = 0

    def sealed(run: memoryview) -> None:
        nonlocal done
        done += len(run)
        buffer.release(done)

    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    with peak_rss_growth() as growth:
        part = crypto.encrypt_part(sealer, 1, k, buffer.view(), final=True, sealed=sealed)
    assert len(part.ciphertext) > 8 * MiB
    assert growth() < 3 * MiB  # one huge page and the lead's small one; two were 4 MiB


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


def test_sealing_reports_each_sealed_run_in_order_and_seals_the_same() -> None:
    k = (3 * crypto.SEALED_RUN) // S + 2  # three whole runs and a short one
    data = plaintext(k * S, seed=4)
    runs: list[bytes] = []

    def sealed(run: memoryview) -> None:
        runs.append(bytes(run))

    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    reported = crypto.encrypt_part(sealer, 2, k, data, final=False, sealed=sealed)
    plain = crypto.encrypt_part(SegmentSealer(DEK, CTX, SALT, PREFIX), 2, k, data, final=False)

    assert reported.ciphertext == plain.ciphertext and reported.tags == plain.tags
    assert [len(run) for run in runs] == [crypto.SEALED_RUN] * 3 + [2 * S]
    assert b"".join(runs) == data


def test_a_part_can_be_hashed_and_let_go_as_it_is_sealed() -> None:
    """What appending does: hash each sealed run and give its pages back; the part's
    ciphertext and digest are those of sealing and hashing it whole."""
    k = 8 * MiB // S
    data = plaintext(k * S, seed=5)
    buffer = PartBuffer(len(data))
    buffer.extend(data)
    digest = hashlib.sha256()
    done = 0

    def sealed(run: memoryview) -> None:
        nonlocal done
        digest.update(run)
        done += len(run)
        buffer.release(done)

    sealer = SegmentSealer(DEK, CTX, SALT, PREFIX)
    part = crypto.encrypt_part(sealer, 1, k, buffer.view(), final=True, sealed=sealed)
    whole = crypto.encrypt_part(SegmentSealer(DEK, CTX, SALT, PREFIX), 1, k, data, final=True)

    assert part.ciphertext == whole.ciphertext
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert buffer.view() == bytes(len(data))  # every page given back
