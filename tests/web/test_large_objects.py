"""A 1 GiB document through the real server to a real Ceph RGW and back, in bounded memory.

Needs the gateway of `scripts/rgw start` and `CLIENTVAULT_TEST_RGW=1`:

    source <(scripts/rgw start "$(mktemp -d)")
    CLIENTVAULT_TEST_RGW=1 pytest -m rgw -s tests/web/test_large_objects.py
    scripts/rgw stop
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil
import pytest

from storage import make_s3_client
from tests.fixtures.live import LiveApp, LiveAppFactory, LiveTenant, Pattern
from tests.fixtures.s3 import empty_bucket

if TYPE_CHECKING:
    pass

MiB = 1024 * 1024
GiB = 1024 * MiB
SEGMENT = 64 * 1024
SIZE = 1 * GiB
# What a 1 GiB transfer may add to the server's resting memory: a few 8 MiB read windows or
# parts in flight, in ciphertext and plaintext, and the allocator's slack; not the file.
MAX_SERVER_GROWTH = 112 * MiB
# glibc gives each thread that allocates its own malloc arena and keeps what is freed there:
# the four threads fetching 8 MiB read windows would hold ~60 MiB more than the data in flight
# (peaks of 230-260 MiB measured). A deployment should set it in the server's environment too.
SERVER_ENV = {"MALLOC_ARENA_MAX": "2"}
ENDPOINT_VARS = (
    "CLIENTVAULT_TEST_S3_ENDPOINT",
    "CLIENTVAULT_TEST_S3_ACCESS_KEY",
    "CLIENTVAULT_TEST_S3_SECRET_KEY",
)
RGW_READY = os.environ.get("CLIENTVAULT_TEST_RGW") == "1" and all(
    os.environ.get(name) for name in ENDPOINT_VARS
)

pytestmark = [
    pytest.mark.rgw,
    pytest.mark.slow,
    pytest.mark.skipif(
        not RGW_READY,
        reason="needs a Ceph RGW: `source <(scripts/rgw start DIR)` and CLIENTVAULT_TEST_RGW=1 "
        "(with CLIENTVAULT_TEST_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY set)",
    ),
]


@dataclass(frozen=True, slots=True)
class Rgw:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str


@pytest.fixture
def rgw_bucket() -> Iterator[Rgw]:
    """A fresh bucket on the gateway, emptied and removed afterwards."""
    rgw = Rgw(
        endpoint=os.environ["CLIENTVAULT_TEST_S3_ENDPOINT"],
        access_key=os.environ["CLIENTVAULT_TEST_S3_ACCESS_KEY"],
        secret_key=os.environ["CLIENTVAULT_TEST_S3_SECRET_KEY"],
        bucket=f"big-{uuid.uuid4().hex}",
    )
    client = make_s3_client(
        endpoint_url=rgw.endpoint,
        region="us-east-1",
        access_key_id=rgw.access_key,
        secret_access_key=rgw.secret_key,
    )
    try:
        client.create_bucket(Bucket=rgw.bucket)
        try:
            yield rgw
        finally:
            empty_bucket(client, rgw.bucket)
            client.delete_bucket(Bucket=rgw.bucket)
    finally:
        client.close()


@dataclass
class RssSampler:
    """The peak resident set size of a process, sampled every `interval` seconds."""

    pid: int
    interval: float = 0.1
    peak: int = 0
    samples: int = 0
    _process: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)

    def sample(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)
        self.samples += 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RssSampler]:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(self.interval)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sample()


def report(what: str, size: int, seconds: float, sampler: RssSampler) -> None:
    print(
        f"\n{what}: {size / MiB:.0f} MiB in {seconds:.1f} s = {size / MiB / seconds:.1f} MiB/s; "
        f"server peak RSS {sampler.peak / MiB:.1f} MiB ({sampler.samples} samples)"
    )


async def test_one_gib_round_trip_through_rgw_in_bounded_memory(
    live_app: LiveAppFactory, rgw_bucket: Rgw
) -> None:
    app: LiveApp = await live_app(
        config={
            "storage": {
                "backend": "s3",
                "endpoint_url": rgw_bucket.endpoint,
                "bucket": rgw_bucket.bucket,
                "access_key_id": rgw_bucket.access_key,
                "secret_access_key": rgw_bucket.secret_key,
            }
        },
        env=SERVER_ENV,
    )
    tenant: LiveTenant = await app.provision("Massive Dynamic")
    pattern = Pattern("one-gib")
    idle_rss = psutil.Process(app.pid).memory_info().rss
    print(f"\nserver RSS at rest: {idle_rss / MiB:.1f} MiB")

    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for chunk in pattern.chunks(SIZE):
            sent.update(chunk)
            yield chunk

    async with app.http(timeout=600) as http:
        # Upload, streamed from the generator.
        started = time.monotonic()
        async with RssSampler(app.pid).running() as upload_rss:
            response = await http.put(
                f"/api/v1/folders/{tenant.folder_id}/files/big.bin",
                content=body(),
                headers={**tenant.user.auth, "Content-Length": str(SIZE)},
            )
        report("upload", SIZE, time.monotonic() - started, upload_rss)
        assert response.status_code == 201, response.text
        document = response.json()["document_id"]

        meta = await http.get(f"/api/v1/documents/{document}", headers=tenant.user.auth)
        (version,) = meta.json()["versions"]
        assert version["size"] == SIZE
        assert version["sha256"] == sent.hexdigest()

        # Download, streamed and hashed as it arrives.
        received = hashlib.sha256()
        length = 0
        started = time.monotonic()
        async with (
            RssSampler(app.pid).running() as download_rss,
            http.stream(
                "GET", f"/api/v1/documents/{document}/content", headers=tenant.user.auth
            ) as download,
        ):
            assert download.status_code == 200
            assert download.headers["content-length"] == str(SIZE)
            async for chunk in download.aiter_bytes():
                received.update(chunk)
                length += len(chunk)
        report("download", SIZE, time.monotonic() - started, download_rss)
        assert length == SIZE
        assert received.hexdigest() == sent.hexdigest()

        assert upload_rss.peak - idle_rss < MAX_SERVER_GROWTH, upload_rss.peak / MiB
        assert download_rss.peak - idle_rss < MAX_SERVER_GROWTH, download_rss.peak / MiB

        # Ranges across segment boundaries, stored part and read window boundaries
        # (8 MiB of ciphertext each), checked against the regenerated bytes.
        ranges = [
            (0, 0),
            (1000 * SEGMENT - 7, 1000 * SEGMENT + 8),
            (8 * MiB - 300_000, 8 * MiB + 300_000),
            (512 * MiB + 12_345, 536 * MiB + 777),
            (SIZE - SEGMENT - 5, SIZE - 1),
        ]
        for first, last in ranges:
            part = await http.get(
                f"/api/v1/documents/{document}/content",
                headers={**tenant.user.auth, "Range": f"bytes={first}-{last}"},
            )
            assert part.status_code == 206, part.text
            assert part.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
            assert part.content == pattern.read(first, last - first + 1), (first, last)
