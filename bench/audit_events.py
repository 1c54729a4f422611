"""The synthetic audit log `bench.audit` searches: a million chained events in PostgreSQL.

Events are spread over the past year across 2,000 clients, 5,000 people and 200,000
documents, Zipf-like (a few of each far busier than the rest), with a mix of actions and
outcomes, and each carries its real seq, prev and leaf hash (`vault.audit.leaf_hash`), so the
log verifies and its Merkle tree is the server's own.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import psycopg

from vault import audit
from vault.models import AuditEvent

CLIENTS = 2_000
PEOPLE = 5_000
DOCUMENTS = 200_000
STAFF = 150  # the first people are staff, the next few auditors, the rest client users
AUDITORS = 10
# The planted large client and its busiest document: enough events that a search for either
# still has pages left after --depth (100 of 100 events), so "deep" means page 101.
HOT_CLIENT = 0
HOT_DOCUMENT = 0
HOT_CLIENT_SHARE = 0.15
HOT_DOCUMENT_SHARE = 0.02
# (action, weight, about a document?)
ACTIONS = (
    ("document.downloaded", 30, True),
    ("document.viewed", 18, True),
    ("document.previewed", 8, True),
    ("document.uploaded", 7, True),
    ("document.version_added", 3, True),
    ("document.deleted", 1, True),
    ("folder.viewed", 12, False),
    ("folder.created", 1, False),
    ("client.viewed", 8, False),
    ("session.created", 8, False),
    ("session.failed", 2, False),
    ("audit.viewed", 2, False),
)
OUTCOMES = (("success", 94), ("denied", 4), ("failure", 2))
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
    "curl/8.5.0",
)
COLUMNS = (
    "seq",
    "ts",
    "actor_id",
    "actor_role",
    "action",
    "client_id",
    "target_type",
    "target_id",
    "document_id",
    "ip",
    "user_agent",
    "outcome",
    "details",
    "prev_hash",
    "leaf_hash",
    "v",
    "actor_email",
    "actor_name",
    "target_label",
)


@dataclass(slots=True)
class Event:
    """The columns `vault.audit.entry` reads, without an ORM object per row."""

    seq: int
    ts: str
    actor_id: str | None
    actor_role: str | None
    action: str
    client_id: str | None
    target_type: str | None
    target_id: str | None
    document_id: str | None
    ip: str | None
    user_agent: str | None
    outcome: str
    details: str
    prev_hash: str
    leaf_hash: str = ""
    # Version 2: who and what as they were, inside the hashed encoding (docs/audit-log.md).
    v: int = 2
    actor_email: str | None = None
    actor_name: str | None = None
    target_label: str | None = None

    def row(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


@dataclass(frozen=True, slots=True)
class World:
    clients: list[str]
    people: list[str]
    documents: list[str]
    document_client: list[int]
    person_client: list[int]
    hot_documents: list[int]  # the planted client's documents, its busiest first
    end: datetime


def _ids(rng: random.Random, count: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def skewed(count: int) -> list[float]:
    """Zipf-like weights: a few busy clients, people and documents, a long quiet tail."""
    return [1 / (rank + 10) ** 0.9 for rank in range(count)]


def make_world(seed: int) -> World:
    rng = random.Random(seed)
    clients, people, documents = _ids(rng, CLIENTS), _ids(rng, PEOPLE), _ids(rng, DOCUMENTS)
    document_client = [rng.randrange(CLIENTS) for _ in range(DOCUMENTS)]
    document_client[HOT_DOCUMENT] = HOT_CLIENT
    hot = [HOT_DOCUMENT] + [
        d for d, c in enumerate(document_client) if c == HOT_CLIENT and d != HOT_DOCUMENT
    ]
    return World(
        clients=clients,
        people=people,
        documents=documents,
        document_client=document_client,
        person_client=[rng.randrange(CLIENTS) for _ in range(PEOPLE)],
        hot_documents=hot,
        end=datetime.now(UTC).replace(microsecond=0),
    )


def generate(world: World, count: int, *, first_seq: int, prev: str, seed: int) -> Iterator[Event]:
    """`count` chained events, oldest first, evenly over the year before `world.end`."""
    rng = random.Random(seed)
    kinds = rng.choices(range(len(ACTIONS)), [a[1] for a in ACTIONS], k=count)
    outcomes = rng.choices([o[0] for o in OUTCOMES], [o[1] for o in OUTCOMES], k=count)
    people = rng.choices(range(PEOPLE), skewed(PEOPLE), k=count)
    documents = rng.choices(range(DOCUMENTS), skewed(DOCUMENTS), k=count)
    planted = rng.choices(
        (0, 1, 2),
        (1 - HOT_CLIENT_SHARE, HOT_CLIENT_SHARE - HOT_DOCUMENT_SHARE, HOT_DOCUMENT_SHARE),
        k=count,
    )
    start = world.end - timedelta(days=365)
    step = timedelta(days=365) / max(count, 1)
    for i in range(count):
        action, _, on_document = ACTIONS[kinds[i]]
        person = people[i]
        role = "staff" if person < STAFF else "auditor" if person < STAFF + AUDITORS else "client"
        document_id = target_type = target_id = None
        details: dict[str, object] = {}
        label = None
        if on_document:
            doc = documents[i]
            if planted[i] == 1:
                doc = world.hot_documents[1 + doc % (len(world.hot_documents) - 1)]
            elif planted[i] == 2:
                doc = HOT_DOCUMENT
            client = world.document_client[doc]
            document_id = target_id = world.documents[doc]
            target_type = "document"
            details = {"version": 1 + doc % 4}
            label = f"Document {doc:06d}.pdf (version {1 + doc % 4})"
        else:
            if planted[i]:
                client = HOT_CLIENT
            elif role == "client":
                client = world.person_client[person]
            else:
                client = rng.randrange(CLIENTS)
            target_type, target_id = "client", world.clients[client]
            label = f"Client {client:04d}"
        event = Event(
            seq=first_seq + i,
            ts=audit.timestamp(start + step * i),
            actor_id=world.people[person],
            actor_role=role,
            action=action,
            client_id=world.clients[client] if action != "audit.viewed" else None,
            target_type=target_type,
            target_id=target_id,
            document_id=document_id,
            ip=f"203.0.113.{person % 250 + 1}",
            user_agent=AGENTS[person % len(AGENTS)],
            outcome=outcomes[i],
            details=json.dumps(details, sort_keys=True, separators=(",", ":")),
            prev_hash=prev,
            actor_email=f"person{person:04d}@bench.example",
            actor_name=f"Person {person:04d}",
            target_label=label,
        )
        event.leaf_hash = audit.leaf_hash(cast(AuditEvent, event))
        prev = event.leaf_hash
        yield event


def fill(dsn: str, world: World, count: int, *, seed: int) -> int:
    """COPY `count` events after the current head; returns the new head's seq."""
    with psycopg.connect(dsn) as conn:
        seq, prev = conn.execute("SELECT seq, leaf_hash FROM audit_head WHERE id = 1").fetchone()  # type: ignore[misc]
        last = Event(0, "", None, None, "", None, None, None, None, None, None, "", "", prev)
        names = ", ".join(COLUMNS)
        with conn.cursor().copy(f"COPY audit_events ({names}) FROM STDIN") as copy:
            for last in generate(world, count, first_seq=seq + 1, prev=prev, seed=seed):
                copy.write_row(last.row())
        conn.execute(
            "UPDATE audit_head SET seq = %s, leaf_hash = %s WHERE id = 1",
            (last.seq, last.leaf_hash),
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_events")
    return int(last.seq)
