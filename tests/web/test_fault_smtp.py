"""The SMTP relay down for a while, in production shape (tests/fixtures/cluster.py: two nodes
behind nginx, each running a notifier, on one PostgreSQL database): the messages wait in the
outbox, and once the relay is back every one arrives exactly once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from tests.fixtures.cluster_world import ClusterWorld

pytestmark = pytest.mark.cluster

# The outbox retries a transient failure after 30 s, then 60 s, … (notify/outbox.py).
RETRY_WAIT = 75.0


def outbox(world: ClusterWorld) -> dict[str, tuple[str, int]]:
    """message_id: (state, attempts) of every message, read straight from the database."""
    dsn = world.cluster.database_url.replace("postgresql+asyncpg", "postgresql")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT message_id, state, attempts FROM notifications").fetchall()
    return {str(m): (str(s), int(a)) for m, s, a in rows}


async def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def test_mail_queued_while_the_relay_is_down_arrives_once_when_it_returns(
    cluster_world: ClusterWorld,
) -> None:
    cluster, smtp, recipient = cluster_world.cluster, cluster_world.smtp, cluster_world.user_email
    earlier = set(outbox(cluster_world))
    received_before = len(smtp.to(recipient))

    def new() -> dict[str, tuple[str, int]]:
        return {m: row for m, row in outbox(cluster_world).items() if m not in earlier}

    smtp.stop()
    try:
        async with cluster.http() as http:
            # Round-robin: one upload lands on each node.
            for name in ("while-down-1.pdf", "while-down-2.pdf"):
                response = await http.put(
                    f"/api/v1/folders/{cluster_world.folder_id}/files/{name}",
                    content=name.encode(),
                    headers=cluster_world.admin,
                )
                assert response.status_code == 201, response.text
        # Each message was tried and failed at least once: queued, not lost and not failed.
        await wait_for(
            lambda: (
                (rows := new())
                and all(state == "pending" and attempts >= 1 for state, attempts in rows.values())
            ),
            30,
            "a failed delivery attempt of every message",
        )
        queued = set(new())
        assert len(smtp.to(recipient)) == received_before
    finally:
        smtp.start()
    await wait_for(
        lambda: all(state == "sent" for state, _ in new().values()),
        RETRY_WAIT,
        "every message to be sent",
    )
    await asyncio.sleep(6)  # one more round of both notifiers: nothing is sent twice
    arrived = smtp.to(recipient)[received_before:]
    ids = [m["Message-ID"] for m in arrived]
    assert len(ids) == len(set(ids)), "a message arrived twice"
    # Every message of the two uploads arrived: those tried while the relay was down and any
    # the notifiers' batching made only after one of them had been tried.
    sent = set(new())
    assert queued <= sent
    assert set(ids) == sent
    bodies = [m.get_body(("plain",)) for m in arrived]
    names = " ".join(str(body.get_content()) for body in bodies if body is not None)
    assert "while-down-1.pdf" in names and "while-down-2.pdf" in names
    assert all(node.alive() for node in cluster.nodes)
