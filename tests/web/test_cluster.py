"""The portal in production shape (tests/fixtures/cluster.py): nginx with TLS in front of two
`clientvault serve` nodes on one PostgreSQL database, one bucket and one SMTP relay.

A tus upload whose PATCHes the balancer spreads over both nodes, full and ranged downloads,
one email per change although every node runs a notifier, an intact audit chain, and the
client's own address in the audit log, whatever X-Forwarded-For it sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.cluster import CLIENT_ADDRESS, METRICS_TOKEN, Cluster
from tests.fixtures.cluster_world import ClusterWorld
from tests.fixtures.live import Pattern
from tests.fixtures.tus import TUS, metadata

pytestmark = pytest.mark.cluster

MiB = 1024 * 1024
FORGED = "203.0.113.66"


async def tus_upload(
    http: httpx.AsyncClient,
    world: ClusterWorld,
    data: bytes,
    name: str,
    *,
    chunk: int = MiB,
    headers: dict[str, str] | None = None,
) -> tuple[str, list[str]]:
    """Creation, then one PATCH per `chunk`, as the browser's uploader sends them:
    (document id, the request ids of the PATCHes)."""
    auth = {**TUS, **world.admin, **(headers or {})}
    created = await http.post(
        "/api/v1/uploads",
        headers={
            **auth,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename=name, folder_id=world.folder_id),
        },
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    request_ids = []
    response = created
    for offset in range(0, len(data), chunk):
        response = await http.patch(
            location,
            content=data[offset : offset + chunk],
            headers={
                **auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert response.status_code == 204, response.text
        request_ids.append(response.headers["x-request-id"])
    return response.headers["document-id"], request_ids


async def events(world: ClusterWorld, **filters: str) -> list[dict[str, Any]]:
    async with world.cluster.http() as http:
        response = await http.get("/api/v1/audit", params=filters, headers=world.admin)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


async def test_tus_patches_spread_over_nodes_and_downloads_match(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    data = Pattern("spread").read(0, 6 * MiB + 12345)
    async with cluster.http(timeout=60) as http:
        document_id, patch_ids = await tus_upload(http, cluster_world, data, "spread.bin")
        full = await http.get(
            f"/api/v1/documents/{document_id}/content", headers=cluster_world.user
        )
        ranged = await http.get(
            f"/api/v1/documents/{document_id}/content",
            headers={**cluster_world.user, "Range": "bytes=5242000-5243999"},
        )
    # Every PATCH was logged by the node that took it, under the balancer's request id.
    served_by = {cluster.node_of(request_id).index for request_id in patch_ids}
    assert served_by == {0, 1}, served_by
    assert full.status_code == 200
    assert hashlib.sha256(full.content).digest() == hashlib.sha256(data).digest()
    assert ranged.status_code == 206
    assert ranged.content == data[5242000:5244000]


def patches_counted(cluster: Cluster) -> float:
    """Successful tus PATCHes over all nodes, from each node's own /metrics, parsed by
    prometheus_client's parser as a scraper would."""
    total = 0.0
    for node in cluster.nodes:
        response = httpx.get(
            f"{node.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status_code == 200, response.text
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        assert "clientvault_checkpoint_lag_seconds" in families
        assert "clientvault_storage_request_duration_seconds" in families
        total += sum(
            s.value
            for s in families["clientvault_http_request_duration_seconds"].samples
            if s.name.endswith("_count")
            and s.labels.get("method") == "PATCH"
            and s.labels.get("status") == "204"
        )
    return total


async def test_each_node_is_scraped_and_the_patches_add_up(cluster_world: ClusterWorld) -> None:
    cluster = cluster_world.cluster
    before = patches_counted(cluster)
    data = Pattern("scraped").read(0, 4 * MiB + 7)
    async with cluster.http(timeout=60) as http:
        _, patch_ids = await tus_upload(http, cluster_world, data, "scraped.bin")
    served_by = {cluster.node_of(request_id).index for request_id in patch_ids}
    assert served_by == {0, 1}, served_by
    assert patches_counted(cluster) - before == len(patch_ids)


async def test_one_email_per_change_with_a_notifier_on_every_node(
    cluster_world: ClusterWorld,
) -> None:
    async with cluster_world.cluster.http() as http:
        response = await http.put(
            f"/api/v1/folders/{cluster_world.folder_id}/files/report-q3.pdf",
            content=b"%PDF-1.7 quarterly figures",
            headers=cluster_world.admin,
        )
    assert response.status_code == 201, response.text

    def about_it() -> list[Any]:
        return [
            m
            for m in cluster_world.smtp.to(cluster_world.user_email)
            if "report-q3.pdf" in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        ]

    deadline = time.monotonic() + 30
    for _ in range(150):
        if about_it() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(about_it()) == 1
    # Both notifiers poll every 5 s: a duplicate would have arrived by now.
    await asyncio.sleep(6)
    assert len(about_it()) == 1


async def test_audit_chain_verifies_after_work_on_every_node(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    async with cluster.http() as http:
        for n in range(4):  # in turn on both nodes
            response = await http.put(
                f"/api/v1/folders/{cluster_world.folder_id}/files/note-{n}.txt",
                content=f"note {n}".encode(),
                headers=cluster_world.admin,
            )
            assert response.status_code == 201, response.text
        verified = await http.get("/api/v1/audit/verify", headers=cluster_world.admin)
    assert verified.status_code == 200
    assert verified.json()["ok"] is True
    assert cluster.cli("audit", "verify").startswith("ok: ")  # the CLI exits 1 otherwise


async def test_audit_records_the_clients_address_not_a_forged_one(
    cluster_world: ClusterWorld,
) -> None:
    cluster = cluster_world.cluster
    forged = {"X-Forwarded-For": FORGED, "X-Real-IP": FORGED}
    async with cluster.http() as http:
        through_balancer = await http.put(
            f"/api/v1/folders/{cluster_world.folder_id}/files/via-nginx.txt",
            content=b"through the balancer",
            headers={**cluster_world.admin, **forged},
        )
    assert through_balancer.status_code == 201, through_balancer.text
    # Straight to a node, which must not believe anyone but the balancer.
    node = cluster.nodes[0]
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS)
    async with httpx.AsyncClient(base_url=node.url, transport=transport) as http:
        direct = await http.put(
            f"/api/v1/folders/{cluster_world.folder_id}/files/direct.txt",
            content=b"around the balancer",
            headers={**cluster_world.admin, **forged},
        )
    assert direct.status_code == 201, direct.text

    created = await events(cluster_world, action="document.created")
    by_request = {e["details"].get("request_id"): e for e in created}
    for response in (through_balancer, direct):
        event = by_request[response.headers["x-request-id"]]
        # nginx connects from 127.0.0.1: the client's own address came from its header.
        assert event["ip"] == CLIENT_ADDRESS, event
