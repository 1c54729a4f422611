"""A tus client for the resumable-upload benchmark: an upload sent chunk by chunk from
a generated stream, and a download checked against that stream as it arrives.

Downloads are read with urllib3, the HTTP client under boto3, so that the API and the raw
baseline pay for the same client: through httpx the client took 0.55 CPU seconds per GiB
alone and 1.4 for twenty downloads at once, against 0.2 with urllib3, on a 2-core machine
whose server and S3 daemons need that CPU (docs/downloads.md, "Throughput")."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import urllib3

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
    http: httpx.Client,
    folder: str,
    name: str,
    source: PatternSource,
    chunk_mib: int,
    *,
    whole_in_post: bool = False,
) -> Upload:
    """Create a tus upload and send it in chunks, each from the offset the server answered;
    with `whole_in_post`, send the whole file with the `POST` (creation-with-upload), as the
    portal sends a small file."""
    headers = {
        **TUS,
        "Upload-Length": str(source.size),
        "Upload-Metadata": f"filename {b64(name)},folder_id {b64(folder)}",
    }
    if whole_in_post:
        headers["Content-Type"] = "application/offset+octet-stream"
        headers["Content-Length"] = str(source.size)
    content = span(source, 0, source.size) if whole_in_post else None
    created = http.post("/api/v1/uploads", headers=headers, content=content)
    expect(created, 201)
    result = Upload(
        document=created.headers.get("Document-Id", ""),
        chunk=chunk_mib * MiB or int(created.headers[CHUNK_HEADER]),
    )
    if whole_in_post and not result.document:
        raise RuntimeError("the whole file came with the POST, yet no document was made")
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
    http: httpx.Client, document: str, source: PatternSource, *, piece: int = PIECE
) -> None:
    """Stream the document's content from `http`'s server as `http` would ask for it, in
    pieces of `piece` bytes, checking it as it arrives as the raw baseline's is checked
    (`CheckingSink`: every block's counter and the tail of every piece, cheap enough not to
    weigh on the measurement); the SHA-256 of what was stored is checked once, from the
    server's record, by `check_recorded_hash`."""
    sink = source.sink()
    response = _POOL.request(
        "GET",
        str(http.base_url.join(f"/api/v1/documents/{document}/content")),
        headers=dict(http.headers),
        preload_content=False,
        decode_content=False,
    )
    try:
        if response.status != 200:
            raise RuntimeError(f"expected 200, got {response.status}: {response.data[:500]!r}")
        for data in response.stream(piece, decode_content=False):
            sink.write(data)
    finally:
        response.release_conn()
    sink.check()


def checked_downloads_at_once(
    http: httpx.Client, documents: Sequence[str], source: PatternSource
) -> None:
    """`checked_download` of each of `documents` (all holding `source`'s bytes), all at once,
    as the raw baseline downloads its objects at once: a thread each."""
    with ThreadPoolExecutor(max_workers=len(documents)) as pool:
        for future in [
            pool.submit(checked_download, http, document, source) for document in documents
        ]:
            future.result()


# Keep-alive connections for the downloads, as boto3 keeps them for the baseline's.
_POOL = urllib3.PoolManager(maxsize=64, timeout=urllib3.Timeout(connect=30, read=600))


def check_recorded_hash(http: httpx.Client, document: str, expected: str) -> None:
    body = expect(http.get(f"/api/v1/documents/{document}"), 200)
    if body["versions"][-1]["sha256"] != expected:
        raise RuntimeError("the server recorded a different SHA-256")
