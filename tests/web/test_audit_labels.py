"""Events that read on their own: who acted and on what, hashed as it was at the time
(entry format 2), and older format 1 events shown with today's labels, marked as such."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import update
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.tamper import tamper
from vault import audit
from vault.audit import export_check
from vault.db import transaction
from vault.models import AuditEvent, AuditHead, Document, User
from web import audit_sentences
from web.services import Services

API = "/api/v1"


async def _rename(services: Services, world: World, person: str, display_name: str) -> None:
    async with transaction(services.sessions) as session:
        await session.execute(
            update(User).where(User.id == world[person].id).values(display_name=display_name)  # type: ignore[arg-type]
        )


async def _append_format1(services: Services, **fields: Any) -> int:
    """An event as the log wrote them before labels existed (entry format 1)."""
    async with transaction(services.sessions) as session:
        head = (
            await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        ).scalar_one()
        event = AuditEvent(
            seq=head.seq + 1,
            ts=audit.timestamp(),
            outcome="success",
            details="{}",
            prev_hash=head.leaf_hash,
            leaf_hash="",
            v=1,
            **fields,
        )
        event.leaf_hash = audit.leaf_hash(event)
        head.seq, head.leaf_hash = event.seq, event.leaf_hash
        session.add_all([event, head])
        return event.seq


async def _audit(http: httpx.AsyncClient, world: World, **params: str) -> list[dict[str, Any]]:
    response = await http.get(f"{API}/audit", params=params, headers=world["otto"].auth)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def _upload(http: httpx.AsyncClient, world: World, name: str) -> str:
    response = await http.put(
        f"{API}/folders/{world.acme_folder}/files/{quote(name)}",
        content=b"0123456789" * 10,
        headers=world["alice"].auth,
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def _the_label_is_the_name_and_details_say_which_bytes(
    http: httpx.AsyncClient, world: World, services: Services, document_id: str
) -> None:
    """docs/audit-log.md: a ranged download's `target_label` is the document's name alone;
    `details.version` and `details.range` complete it, in the API, both exports and the
    sentence every reader shows."""
    exported: list[dict[str, Any]] = []
    for fmt in ("jsonl", "csv"):
        response = await http.get(
            f"{API}/audit/export",
            params={"format": fmt, "document_id": document_id},
            headers=world["otto"].auth,
        )
        assert response.status_code == 200, response.text
        if fmt == "jsonl":
            rows = [json.loads(x) for x in response.text.splitlines()[:-1]]
        else:
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                rows = list(csv.DictReader(io.StringIO(archive.read("audit.csv").decode())))
                for row in rows:
                    row["details"] = json.loads(row["details"])
        exported += [r for r in rows if r["action"] == "document.downloaded"]
    assert len(exported) == 2
    for row in exported:
        assert row["target_label"] == "Tax return 2025.pdf"
        assert (row["details"]["version"], row["details"]["range"]) == (1, "0-9")
    async with transaction(services.sessions) as session:
        event = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.document_id == document_id,
                    AuditEvent.action == "document.downloaded",
                )
            )
        ).scalar_one()
        labels = {"actor_email": event.actor_email, "actor_name": event.actor_name}
        labels["target_label"] = event.target_label
    said = audit_sentences.sentence(event, labels, "en", with_ip=False, isolate=False)
    assert "Tax return 2025.pdf (version 1, bytes 0–9)" in said, said
    schema = (await http.get(f"{API}/openapi.json")).json()["components"]["schemas"]
    described = schema["AuditEvent"]["properties"]["target_label"]["description"]
    assert "details.version and details.range" in described


async def test_a_ranged_download_names_who_and_what_as_it_was(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await _rename(services, world, "alice", "Alice Example")
    document_id = await _upload(http, world, "Tax return 2025.pdf")
    response = await http.get(
        f"{API}/documents/{document_id}/content",
        headers={**world["alice"].auth, "Range": "bytes=0-9"},
    )
    assert response.status_code == 206
    # Renamed afterwards: the event still says who it was and what it was called then.
    await _rename(services, world, "alice", "Alice Renamed")
    async with transaction(services.sessions) as session:
        document = await session.get(Document, uuid.UUID(document_id))
        assert document is not None
        document.name = "Renamed.pdf"
        session.add(document)

    (event,) = await _audit(http, world, document_id=document_id, action="document.downloaded")
    assert event["v"] == 2 and event["labels_from"] == "event"
    assert event["actor_email"] == "alice@example.test"
    assert event["actor_name"] == "Alice Example"
    assert event["actor_role"] == "client"
    assert event["target_label"] == "Tax return 2025.pdf"
    assert event["details"]["version"] == 1 and event["details"]["range"] == "0-9"
    await _the_label_is_the_name_and_details_say_which_bytes(http, world, services, document_id)
    created = await http.post(
        f"{API}/folders",
        json={"client_id": str(world.acme), "parent_id": str(world.acme_folder), "name": "Q1"},
        headers=world["sam"].auth,
    )
    assert created.status_code == 201, created.text
    folders = await _audit(http, world, action="folder.created", client_id=str(world.acme))
    assert [f["target_label"] for f in folders] == ["Tax 2026 / Q1", "Tax 2026"]
    assert folders[0]["actor_email"] == "sam@example.test"

    # The labels are inside the hash: changing one is an altered event.
    await tamper(
        services.engine,
        "UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = :seq",
        params={"seq": event["seq"]},
    )
    async with transaction(services.sessions) as session:
        result = await audit.verify(session)
    assert not result.ok and result.first_bad_seq == event["seq"]


async def test_format1_events_show_current_labels_and_still_verify(
    http: httpx.AsyncClient, world: World, services: Services, tmp_path: Path
) -> None:
    await _rename(services, world, "sam", "Sam Staff")
    document_id = await _upload(http, world, "Contract.pdf")
    old = await _append_format1(
        services,
        actor_id=str(world["sam"].id),
        actor_role="staff",
        action="document.viewed",
        client_id=str(world.acme),
        target_type="document",
        target_id=document_id,
        document_id=document_id,
    )
    async with transaction(services.sessions) as session:
        stored = await session.get(AuditEvent, old)
        assert stored is not None
        assert not set(audit.LABEL_FIELDS) & set(audit.entry(stored))
        assert (await audit.verify(session)).ok

    (shown,) = [e for e in await _audit(http, world, document_id=document_id) if e["seq"] == old]
    assert shown["v"] == 1 and shown["labels_from"] == "current"
    assert (shown["actor_email"], shown["actor_name"]) == ("sam@example.test", "Sam Staff")
    assert shown["target_label"] == "Contract.pdf"

    key = tmp_path / "checkpoint.key"
    key.write_text((await http.get(f"{API}/audit/checkpoint/key", headers=world["otto"].auth)).text)
    for fmt, params in [("jsonl", {}), ("csv", {}), ("jsonl", {"document_id": document_id})]:
        response = await http.get(
            f"{API}/audit/export", params={"format": fmt, **params}, headers=world["otto"].auth
        )
        assert response.status_code == 200
        path = tmp_path / f"export-{fmt}-{len(params)}"
        path.write_bytes(response.content)
        report = export_check.verify(str(path), key.read_text())
        assert report.ok, report.problems
        if fmt == "jsonl":
            lines = [json.loads(x) for x in response.text.splitlines()[:-1]]
        else:
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                lines = list(csv.DictReader(io.StringIO(archive.read("audit.csv").decode())))
        row = next(x for x in lines if int(x["seq"]) == old)
        assert row["actor_name"] == "Sam Staff" and row["labels_from"] == "current"
        upload = next(x for x in lines if x["action"] == "document.created")
        assert upload["actor_email"] == "alice@example.test"
        assert upload["target_label"] == "Contract.pdf"

    # A current label is not evidence: changing it in an export is not an altered event,
    # but changing the hashed fields of the same line still is.
    jsonl = tmp_path / "export-jsonl-0"
    text = jsonl.read_text().replace('"actor_name":"Sam Staff"', '"actor_name":"Someone"')
    jsonl.write_text(text)
    assert export_check.verify(str(jsonl), key.read_text()).ok
    jsonl.write_text(
        text.replace('"actor_role":"staff","client_id"', '"actor_role":"admin","client_id"', 1)
    )
    assert not export_check.verify(str(jsonl), key.read_text()).ok


async def test_a_document_request_is_named_by_its_title(
    http: httpx.AsyncClient, world: World
) -> None:
    created = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={
            "title": "2025 year-end documents",
            "due_date": "2030-01-31",
            "folder_id": str(world.acme_folder),
            "items": ["1099-NEC forms"],
        },
        headers=world["sam"].auth,
    )
    assert created.status_code == 201, created.text
    (opened,) = await _audit(http, world, action="request.opened")
    assert opened["target_label"] == "2025 year-end documents"
    assert opened["actor_email"] == "sam@example.test"
