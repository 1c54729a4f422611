"""The running SHA-256 of resumable uploads: only a digest of every part, in order, from
part 1, is ever handed out; anything else leaves the finisher to hash by reading back."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from vault.crypto.digests import RunningDigests

PARTS = [b"first part ", b"second part ", b"the end"]
WHOLE = hashlib.sha256(b"".join(PARTS)).hexdigest()


def extend(digests: RunningDigests, upload: uuid.UUID, number: int, data: bytes) -> None:
    """What appending does with a part whose claim is in: start, hash, commit."""
    part = digests.start(upload, number)
    if part is not None:
        part.update(data)
        digests.commit(part)


def feed(digests: RunningDigests, upload: uuid.UUID, numbers: list[int]) -> None:
    for number in numbers:
        extend(digests, upload, number, PARTS[number - 1])


def test_every_part_in_order_gives_the_digest_once() -> None:
    digests, upload = RunningDigests(), uuid.uuid4()
    feed(digests, upload, [1, 2, 3])
    assert digests.take(upload, 3) == WHOLE
    assert digests.take(upload, 3) is None  # taken: a second finisher reads back


@pytest.mark.parametrize(
    "numbers",
    [
        [2, 3],  # part 1 came through another process
        [1, 3],  # part 2 did
        [1, 2],  # the final part did
        [1, 3, 2],  # out of order: 3 is not hashed, so the digest stops at 2
    ],
)
def test_a_missed_part_gives_no_digest(numbers: list[int]) -> None:
    digests, upload = RunningDigests(), uuid.uuid4()
    feed(digests, upload, numbers)
    assert digests.take(upload, 3) is None


def test_a_part_sent_twice_is_hashed_once() -> None:
    digests, upload = RunningDigests(), uuid.uuid4()
    feed(digests, upload, [1, 1, 2, 1, 2, 3, 3])
    assert digests.take(upload, 3) == WHOLE


def test_racing_requests_of_one_upload_hash_each_part_once_in_order() -> None:
    # Four requests of one upload in this process each start parts 2 and 3 before any of
    # them commits: the first commit of a part counts, the others' copies are dropped.
    digests, upload = RunningDigests(), uuid.uuid4()
    extend(digests, upload, 1, PARTS[0])
    for number in (2, 3):
        racing = [digests.start(upload, number) for _ in range(4)]
        for part in racing:
            assert part is not None
            part.update(PARTS[number - 1])
        for part in racing:
            assert part is not None
            digests.commit(part)
    assert digests.take(upload, 3) == WHOLE


def test_uploads_are_kept_apart_and_the_oldest_dropped_past_the_limit() -> None:
    digests = RunningDigests(limit=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    feed(digests, first, [1])
    feed(digests, second, [1])
    feed(digests, first, [2])  # first is now the most recently extended
    feed(digests, third, [1])  # so second is dropped
    assert len(digests) == 2
    feed(digests, second, [2, 3])
    assert digests.take(second, 3) is None
    feed(digests, first, [3])
    assert digests.take(first, 3) == WHOLE
    digests.forget(third)
    assert len(digests) == 0


def test_the_limit_is_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RunningDigests(limit=0)


def test_a_part_hashed_but_never_committed_does_not_count() -> None:
    # A part whose claim is refused (other bytes at claimed segments) is hashed beside its
    # sealing but never committed: the running digest must not contain it.
    digests, upload = RunningDigests(), uuid.uuid4()
    extend(digests, upload, 1, PARTS[0])
    refused = digests.start(upload, 2)
    assert refused is not None
    refused.update(b"other bytes at part 2")
    again = digests.start(upload, 2)  # the client resends the real part 2
    assert again is not None
    again.update(PARTS[1])
    digests.commit(again)
    extend(digests, upload, 3, PARTS[2])
    digests.commit(refused)  # too late, and ignored: part 2 is in already
    assert digests.take(upload, 3) == WHOLE


def test_only_the_next_part_can_start() -> None:
    digests, upload = RunningDigests(), uuid.uuid4()
    assert digests.start(upload, 2) is None
    first = digests.start(upload, 1)
    assert first is not None
    assert digests.start(upload, 2) is None  # part 1 is not committed yet
    first.update(PARTS[0])
    digests.commit(first)
    assert digests.start(upload, 1) is None
    assert digests.start(upload, 2) is not None
