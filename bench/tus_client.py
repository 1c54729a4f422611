"""A tus client for the resumable-upload benchmark: an upload sent chunk by chunk from
a generated stream, and a download checked against that stream as it arrives."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench.common import MiB, PatternSource
from bench.server import expect

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_HEADER = "ClientVault-Chunk-Size"
PIECE = 1 * MiB  # body pieces handed to httpx, and file I/O size of the baselines


def span(source: PatternSource, start: int, length: int) -> Iterator[bytes]:
    """Bytes `[start, start + length)` of the stream, in pieces of at most `PIECE`."""
    position, end = start, start + length
    while position < end:
        size = min(PIECE, source.block - position % source.block, end - position)
        yield source.piece(position, size)
        position += size


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Upload:
    document: str = ""
    chunk: int = 0
    requests: int = 0


def tus_upload(
    http: httpx.Client, folder: str, name: str, source: PatternSource, chunk_mib: int
) -> Upload:
    """Create a tus upload and send it in chunks, each from the offset the server answered."""
    created = http.post(
        "/api/v1/uploads",
        headers={
            **TUS,
            "Upload-Length": str(source.size),
            "Upload-Metadata": f"filename {b64(name)},folder_id {b64(folder)}",
        },
    )
    expect(created, 201)
    result = Upload(chunk=chunk_mib * MiB or int(created.headers[CHUNK_HEADER]))
    location = created.headers["Location"]
    offset = int(created.headers["Upload-Offset"])
    while not result.document:
        length = min(result.chunk, source.size - offset)
        response = http.patch(
            location,
            content=span(source, offset, length),
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(length),
            },
        )
        expect(response, 204)
        result.requests += 1
        offset = int(response.headers["Upload-Offset"])
        result.document = response.headers.get("Document-Id", "")
        if not result.document and offset >= source.size:
            raise RuntimeError("the upload reached its length without a document")
    return result


def checked_download(
    http: httpx.Client, document: str, source: PatternSource, *, piece: int | None = PIECE
) -> None:
    """Stream the document's content (in pieces of `piece` bytes; None: as they arrive),
    checking it as it arrives as the raw baseline's is checked (`CheckingSink`: every
    block's counter and the tail of every piece, cheap enough not to weigh on the
    measurement); the SHA-256 of what was stored is checked once, from the server's record,
    by `check_recorded_hash`."""
    sink = source.sink()
    with http.stream("GET", f"/api/v1/documents/{document}/content") as response:
        if response.status_code != 200:
            response.read()
            expect(response, 200)
        for data in response.iter_raw(piece):
            sink.write(data)
    sink.check()


def check_recorded_hash(http: httpx.Client, document: str, expected: str) -> None:
    body = expect(http.get(f"/api/v1/documents/{document}"), 200)
    if body["versions"][-1]["sha256"] != expected:
        raise RuntimeError("the server recorded a different SHA-256")
