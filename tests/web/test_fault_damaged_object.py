"""Objects damaged behind the portal's back, in production shape (tests/fixtures/cluster.py:
two nodes behind nginx on the session's S3 server, the Ceph RGW in CI): one object with a
flipped byte, one deleted, and a stray one in the bucket. Downloads through the balancer fail
closed (an error, or a stream cut short, never a wrong byte), and `clientvault fsck` names
each object and exits 1. The bucket is put back as it was afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.cluster_world import ClusterWorld
from tests.fixtures.live import CLI_TIMEOUT, CLIENTVAULT, Pattern

pytestmark = pytest.mark.cluster


async def fsck(cluster: Cluster, *args: str) -> tuple[int, str]:
    node = cluster.nodes[0]
    process = await asyncio.create_subprocess_exec(
        *(CLIENTVAULT, "--config", str(node.config_path), "fsck", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=node.env,
    )
    out, _ = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode()


def object_keys(cluster: Cluster) -> set[str]:
    with contextlib.closing(cluster.s3.client()) as s3:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}


@contextlib.contextmanager
def damaged(cluster: Cluster, flip: str, delete: str, flip_at: int) -> Iterator[str]:
    """Flip one byte of object `flip`, delete `delete`, add a stray object (its key is
    yielded); put everything back on the way out."""
    stray = f"objects/{uuid.uuid4()}/{uuid.uuid4()}"  # where fsck looks for objects
    with contextlib.closing(cluster.s3.client()) as s3:
        bucket = cluster.bucket
        flipped = s3.get_object(Bucket=bucket, Key=flip)["Body"].read()
        removed = s3.get_object(Bucket=bucket, Key=delete)["Body"].read()
        bad = bytearray(flipped)
        bad[flip_at] ^= 0x01
        s3.put_object(Bucket=bucket, Key=flip, Body=bytes(bad))
        s3.delete_object(Bucket=bucket, Key=delete)
        s3.put_object(Bucket=bucket, Key=stray, Body=b"not ours")
        try:
            yield stray
        finally:
            s3.put_object(Bucket=bucket, Key=flip, Body=flipped)
            s3.put_object(Bucket=bucket, Key=delete, Body=removed)
            s3.delete_object(Bucket=bucket, Key=stray)


async def fetch(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status and whatever body arrived before the stream ended or broke."""
    received = bytearray()
    try:
        async with http.stream("GET", url, headers=headers) as response:
            async for chunk in response.aiter_raw():
                received += chunk
            return response.status_code, bytes(received)
    except httpx.TransportError:
        return -1, bytes(received)  # cut short: the client sees an incomplete response


async def test_damaged_objects_fail_closed_and_fsck_names_them(
    cluster_world: ClusterWorld,
) -> None:
    cluster, user = cluster_world.cluster, cluster_world.user
    flipped_data = Pattern("flipped").read(0, 600_000)  # ten 64 KiB segments
    deleted_data = Pattern("deleted").read(0, 20_000)
    ids, keys = {}, {}
    async with cluster.http() as http:
        for name, data in (("flipped.bin", flipped_data), ("deleted.bin", deleted_data)):
            before = object_keys(cluster)
            response = await http.put(
                f"/api/v1/folders/{cluster_world.folder_id}/files/{name}",
                content=data,
                headers=cluster_world.admin,
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["document_id"]
            (keys[name],) = {
                k for k in object_keys(cluster) - before if not k.startswith("checkpoints/")
            }
    # A byte in the middle of the sixth segment, so the first ones still decrypt and stream.
    with damaged(cluster, keys["flipped.bin"], keys["deleted.bin"], 5 * 65_600) as stray:
        async with cluster.http() as http:
            # The damaged segment is the sixth: an error, or a transfer cut short after bytes
            # that are all right (how much streams first depends on the store's read size).
            url = f"/api/v1/documents/{ids['flipped.bin']}/content"
            status, body = await fetch(http, url, user)
            assert status >= 500 or (status == -1 and len(body) < len(flipped_data)), status
            assert body[:1] == b"{" or body == flipped_data[: len(body)], "wrong bytes served"
            # A range that starts in the damaged segment fails before any byte is sent.
            failed = await http.get(url, headers={**user, "Range": "bytes=330000-340000"})
            assert failed.status_code == 500, failed.text
            assert failed.json()["title"] == "Stored data failed its integrity check"
            # A missing object is a clear error too, not a 200 cut short.
            url = f"/api/v1/documents/{ids['deleted.bin']}/content"
            missing = await http.get(url, headers=user)
            assert missing.status_code == 500
            assert missing.headers["content-type"].startswith("application/problem+json")
            assert missing.json()["title"] == "Stored object missing"
            # The portal goes on serving everything else.
            listing = await http.get(f"/api/v1/folders/{cluster_world.folder_id}", headers=user)
            assert listing.status_code == 200
        assert all(node.alive() for node in cluster.nodes)

        code, out = await fsck(cluster, "--grace-minutes", "0")
        assert code == 1, out
        assert f"missing\t{keys['deleted.bin']}" in out and f"orphan\t{stray}" in out
        assert keys["flipped.bin"] not in out  # size and header intact: only --deep reads it
        code, out = await fsck(cluster, "--deep", "--grace-minutes", "0")
        assert code == 1, out
        assert f"content\t{keys['flipped.bin']}" in out, out
        assert f"missing\t{keys['deleted.bin']}" in out and f"orphan\t{stray}" in out
    async with cluster.http() as http:  # put back: whole again
        status, body = await fetch(http, f"/api/v1/documents/{ids['flipped.bin']}/content", user)
        assert status == 200 and body == flipped_data
