"""Shared pieces of the benchmarks: generated data, checking sinks, S3 set-up and raw boto3
transfers. Resource meters are in `bench.measure`, the result table in `bench.report`.

Benchmarks are scripts, not tests. Run them from the repository root, e.g.
`python -m bench.crypto_storage --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, cast

import anyio.lowlevel
from boto3.s3 import inject as s3_inject
from boto3.s3.transfer import TransferConfig

from storage import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

MiB = 1 << 20
BLOCK = 8 * MiB
_COUNTER = 8  # bytes of block counter at the start of every block
ENV_ENDPOINT = "CLIENTVAULT_TEST_S3_ENDPOINT"
ENV_ACCESS_KEY = "CLIENTVAULT_TEST_S3_ACCESS_KEY"
ENV_SECRET_KEY = "CLIENTVAULT_TEST_S3_SECRET_KEY"  # noqa: S105 - a variable name


# --- Generated data ---------------------------------------------------------------------------


def _counter(block: int) -> bytes:
    return block.to_bytes(_COUNTER, "big")


class PatternSource:
    """`size` bytes made of one random block repeated, each copy starting with its index.

    Random bytes do not compress, and the counter makes every block different, yet nothing
    but the one block is ever held: any range is produced on demand.
    """

    def __init__(self, size: int, *, block: int = BLOCK, seed: int = 0) -> None:
        if size < 0 or block <= _COUNTER:
            raise ValueError("size must not be negative and a block must exceed the counter")
        self.size = size
        self.block = block
        self.base = random.Random(seed).randbytes(block)

    def piece(self, position: int, length: int) -> bytes:
        """Bytes `[position, position + length)`, which must lie within one block."""
        index, offset = divmod(position, self.block)
        if offset + length > self.block:
            raise ValueError("a piece must not cross a block boundary")
        if offset >= _COUNTER:
            return self.base[offset : offset + length]
        head = _counter(index)[offset : min(_COUNTER, offset + length)]
        return head + self.base[offset + len(head) : offset + length]

    def chunks(self, chunk: int) -> Iterator[bytes]:
        """The stream as fresh `bytes` of at most `chunk` bytes (never crossing a block)."""
        position = 0
        while position < self.size:
            length = min(chunk, self.block - position % self.block, self.size - position)
            yield self.piece(position, length)
            position += length

    async def achunks(self, chunk: int) -> AsyncIterator[bytes]:
        """`chunks`, yielding to the event loop between chunks as a network body would."""
        for data in self.chunks(chunk):
            await anyio.lowlevel.checkpoint()
            yield data

    def views(self, chunk: int) -> Iterator[memoryview]:
        """`size` bytes as zero-copy views of the base block (no counters): input for
        CPU-only measurements, where producing the data must cost nothing."""
        whole = memoryview(self.base)
        position = 0
        while position < self.size:
            offset = position % self.block
            length = min(chunk, self.block - offset, self.size - position)
            yield whole[offset : offset + length]
            position += length

    def reader(self) -> PatternReader:
        """A non-seekable, read-only file object over the stream (for boto3)."""
        return PatternReader(self)

    def sink(self) -> CheckingSink:
        """A write-only file object that checks what it receives against this stream."""
        return CheckingSink(self)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for data in self.chunks(BLOCK):
            digest.update(data)
        return digest.hexdigest()


class PatternReader:
    """`read(n)` over a `PatternSource`; not seekable, so boto3 streams it part by part."""

    def __init__(self, source: PatternSource) -> None:
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        source = self._source
        left = source.size - self._position
        wanted = left if size is None or size < 0 else min(size, left)
        pieces: list[bytes] = []
        while wanted > 0:
            length = min(wanted, source.block - self._position % source.block)
            pieces.append(source.piece(self._position, length))
            self._position += length
            wanted -= length
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class CheckingSink:
    """Counts the bytes written and checks every block counter plus the last 8 bytes of each
    write against the source: cheap enough not to weigh on the measurement, yet any
    misplaced, missing or repeated block shows.

    Seekable, so that boto3 may write parts as they arrive (as into a file); writes in
    order need no seeking.
    """

    def __init__(self, source: PatternSource) -> None:
        self._source = source
        self.position = 0
        self.received = 0
        self.errors = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.position = offset
        elif whence == os.SEEK_CUR:
            self.position += offset
        else:
            self.position = self._source.size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        length = len(view)
        if not length:
            return 0
        start, end, block = self.position, self.position + length, self._source.block
        if end > self._source.size:
            self.errors += 1
        else:
            for index in range(start // block, (end - 1) // block + 1):
                low, high = max(index * block, start), min(index * block + _COUNTER, end)
                if low < high and view[low - start : high - start] != self._expected(low, high):
                    self.errors += 1
            tail = max(start, end - 8, (end - 1) // block * block)
            if view[tail - start :] != self._expected(tail, end):
                self.errors += 1
        self.position = end
        self.received += length
        return length

    def _expected(self, low: int, high: int) -> bytes:
        return self._source.piece(low, high - low)

    def check(self) -> None:
        if self.received != self._source.size:
            raise RuntimeError(f"received {self.received} bytes, expected {self._source.size}")
        if self.errors:
            raise RuntimeError(f"{self.errors} spot checks of the received bytes failed")


# --- S3 ---------------------------------------------------------------------------------------


def add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", default=os.environ.get(ENV_ENDPOINT, ""), help=f"default: ${ENV_ENDPOINT}"
    )
    parser.add_argument(
        "--access-key",
        default=os.environ.get(ENV_ACCESS_KEY, ""),
        help=f"default: ${ENV_ACCESS_KEY}",
    )
    parser.add_argument(
        "--secret-key",
        default=os.environ.get(ENV_SECRET_KEY, ""),
        help=f"default: ${ENV_SECRET_KEY}",
    )
    parser.add_argument("--region", default="us-east-1")


def check_s3_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not (args.endpoint and args.access_key and args.secret_key):
        parser.error(
            f"an S3 endpoint and keys are needed: --endpoint/--access-key/--secret-key or "
            f"${ENV_ENDPOINT}, ${ENV_ACCESS_KEY}, ${ENV_SECRET_KEY} (see scripts/rgw)"
        )


def s3_client(args: argparse.Namespace, *, max_pool_connections: int = 32) -> S3Client:
    """A client configured exactly as the app configures its own."""
    return make_s3_client(
        endpoint_url=args.endpoint,
        region=args.region,
        access_key_id=args.access_key,
        secret_access_key=args.secret_key,
        max_pool_connections=max_pool_connections,
    )


def empty_bucket(client: S3Client, bucket: str) -> None:
    for uploads in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in uploads.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys: list[ObjectIdentifierTypeDef] = [
            {"Key": obj["Key"]} for obj in page.get("Contents", [])
        ]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@contextlib.contextmanager
def temporary_bucket(client: S3Client, prefix: str) -> Iterator[str]:
    """A new bucket for this run, emptied and removed afterwards."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)


def transfer_config(part: int, concurrency: int) -> TransferConfig:
    return TransferConfig(
        multipart_threshold=part,
        multipart_chunksize=part,
        max_concurrency=concurrency,
        preferred_transfer_client="classic",
    )


def raw_upload(
    client: S3Client, bucket: str, key: str, source: PatternSource, part: int, concurrency: int
) -> None:
    reader = cast(IO[bytes], source.reader())  # file-like enough: boto3 only reads it
    # boto3's own transfer manager, as a boto3 client's `upload_fileobj` runs it (the app's
    # clients are plain botocore ones, without boto3's injected methods).
    s3_inject.upload_fileobj(client, reader, bucket, key, Config=transfer_config(part, concurrency))


def raw_download(
    client: S3Client, bucket: str, key: str, source: PatternSource, part: int, concurrency: int
) -> None:
    sink = source.sink()
    target = cast(IO[bytes], sink)  # boto3 only writes to it
    s3_inject.download_fileobj(
        client, bucket, key, target, Config=transfer_config(part, concurrency)
    )
    sink.check()


def raw_downloads_at_once(
    client: S3Client,
    bucket: str,
    keys: Sequence[str],
    source: PatternSource,
    part: int,
    concurrency: int,
) -> None:
    """`raw_download` of each of `keys` (all holding `source`'s bytes), all at once."""
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        for future in [
            pool.submit(raw_download, client, bucket, key, source, part, concurrency)
            for key in keys
        ]:
            future.result()
