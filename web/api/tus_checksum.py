"""tus 1.0.0 §Checksum: `Upload-Checksum` on a PATCH (or a POST with creation-with-upload).

Nothing of a checksummed body may be stored before all of it is checked, so it is held in
memory meanwhile: up to `vault.uploads.append.CHECKED_BODY_PARTS` parts of it, the rest read
into the checksum and dropped (the offset the answer reports tells the client where to go
on).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Protocol

from starlette.requests import Request

from vault import uploads
from vault.uploads import append as upload_append
from web.errors import ProblemError
from web.services import Services

# sha1 is required; the others cost nothing more (hashlib has them all).
ALGORITHMS = ("sha1", "sha256", "md5")
MISMATCH = 460


class Body(Protocol):
    """A request body as the tus routes read it."""

    received: int  # bytes read so far
    cut_short: bool  # the client went away before the end

    def __aiter__(self) -> AsyncIterator[bytes]: ...


def parse(request: Request) -> tuple[str, bytes] | None:
    """`Upload-Checksum: <algorithm> <base64 digest>`, if sent.

    Raises:
        ProblemError: 400 for an unsupported algorithm (naming those supported, as the
            specification asks) or a digest that is not one of it.
    """
    raw = request.headers.get("upload-checksum")
    if raw is None:
        return None
    name, _, value = raw.strip().partition(" ")
    name = name.lower()
    if name not in ALGORITHMS:
        raise ProblemError(
            400,
            "Bad request",
            f"unsupported checksum algorithm {name!r}; use one of {', '.join(ALGORITHMS)}",
            headers={"Tus-Checksum-Algorithm": ",".join(ALGORITHMS)},
        )
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(400, "Bad request", "the Upload-Checksum digest is not base64") from None
    if len(digest) != hashlib.new(name, usedforsecurity=False).digest_size:
        raise ProblemError(400, "Bad request", f"that is not a {name} digest")
    return name, digest


async def _checked(
    body: Body, checksum: tuple[str, bytes], *, keep: int, remaining: int
) -> list[bytes]:
    """The first `keep` bytes of a body whose checksum matched; nothing if it was cut short.

    Raises:
        ProblemError: 460 when the checksum does not match (nothing is stored), 413 when the
            body runs past the upload's length.
    """
    name, expected = checksum
    running = hashlib.new(name, usedforsecurity=False)
    kept: list[bytes] = []
    held = 0
    async for chunk in body:
        if body.received > remaining:
            raise ProblemError(413, "Content too large", "the body runs past Upload-Length")
        running.update(chunk)
        if held < keep:
            kept.append(chunk[: keep - held])
            held += len(kept[-1])
    if body.cut_short:
        return []
    if not hmac.compare_digest(running.digest(), expected):
        raise ProblemError(
            MISMATCH,
            "Checksum mismatch",
            f"the body's {name} does not match Upload-Checksum; nothing of it was stored",
        )
    return kept


async def _replay(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def append_checked(
    svc: Services,
    resumable: uploads.Resumable,
    body: Body,
    checksum: tuple[str, bytes],
    *,
    remaining: int,
    expires_in: timedelta,
) -> upload_append.Appended:
    """Check the body against `checksum`, then store what it kept (`vault.uploads.append`).

    All the request can hold (the body kept for the check, then the pipeline's parts) is
    taken from the process's upload budget before a byte is read and kept to the end, so
    it never waits for budget while holding some.
    """
    budget = svc.upload_budget
    part_size = resumable.part_size
    reserved = min(upload_append.REQUEST_PARTS * part_size, budget.capacity)
    await budget.acquire(reserved)
    try:
        keep = upload_append.CHECKED_BODY_PARTS * part_size
        kept = await _checked(body, checksum, keep=keep, remaining=remaining)
        return await upload_append.append(
            svc.sessions,
            svc.store,
            resumable,
            _replay(kept),
            expires_in=expires_in,
            digests=svc.upload_digests,
        )
    finally:
        budget.release(reserved)
