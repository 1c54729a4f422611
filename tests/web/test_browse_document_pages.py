"""A document's pages driven without JavaScript: versions and their restore, trash, previews,
delivery receipts, and restores reaching the notification feed."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import col, select
from starlette.types import ASGIApp

from notify import feed
from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.browse import JAPANESE, PERSIAN, payload, row_names
from tests.fixtures.documents import API, events, put
from tests.fixtures.pages import csp_directives, post_forms
from tests.fixtures.pages import other as other
from tests.fixtures.signin import sign_in
from vault import accounts
from vault.db import transaction
from vault.models import AuditEvent, Role, VersionReceipt
from vault.notifications import NotificationItem
from web.services import Services

# --- documents, versions, restore ---------------------------------------------------------


async def test_document_page_shows_versions_and_restores_an_old_one(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    v1, v2 = payload(300_000, seed=1), payload(1000, seed=2)
    doc = await put(http, world, "alice", world.acme_folder, JAPANESE, v1)
    await put(http, world, "sam", world.acme_folder, JAPANESE, v2)
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    assert page.status_code == 200
    assert hashlib.sha256(v1).hexdigest()[:12] in page.text
    assert f"/api/v1/documents/{doc}/content?version=1" in page.text
    restore_forms = [f for f in post_forms(page.text) if f.action.endswith("/restore")]
    assert [f.action for f in restore_forms] == [f"/documents/{doc}/versions/1/restore"]
    assert "Move to trash" not in page.text  # clients may not delete

    done = await http.post(restore_forms[0].action, data=restore_forms[0].fields)
    assert done.status_code == 303
    assert done.headers["location"] == f"/documents/{doc}?done=restored&version=3"
    after = await http.get(done.headers["location"])
    assert "restored as version 3" in after.text
    v3 = await http.get(f"{API}/documents/{doc}/content", headers=world["alice"].auth)
    assert v3.content == v1
    meta = (await http.get(f"{API}/documents/{doc}", headers=world["alice"].auth)).json()
    assert [v["sha256"] for v in meta["versions"]] == [
        hashlib.sha256(v1).hexdigest(),
        hashlib.sha256(v2).hexdigest(),
        hashlib.sha256(v1).hexdigest(),
    ]
    # Recorded as a new version (so notified like an upload), saying where it came from.
    [added] = [
        e for e in await events(services, "document.version_added") if '"version":3' in e.details
    ]
    assert '"restored_from":1' in added.details
    # Three objects, each under its own key: the restore did not reuse version 1's object.
    assert len([o async for o in services.store.list("")]) == 3

    api = await http.post(f"{API}/documents/{doc}/versions/2/restore", headers=world["sam"].auth)
    assert api.status_code == 201
    assert api.json() == {"document_id": doc, "version": 4, "restored_from": 2}
    current = await http.post(
        f"{API}/documents/{doc}/versions/4/restore", headers=world["sam"].auth
    )
    assert current.status_code == 409
    missing = await http.post(
        f"{API}/documents/{doc}/versions/9/restore", headers=world["sam"].auth
    )
    assert missing.status_code == 404
    read_only = await http.post(
        f"{API}/documents/{doc}/versions/1/restore", headers=world["otto"].auth
    )
    assert read_only.status_code == 404


async def test_trash_and_restore_from_the_pages(
    http: httpx.AsyncClient, other: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, PERSIAN, b"%PDF fa")
    await put(http, world, "bob", world.globex_folder, "globex.txt", b"g")
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    [trash_form] = [f for f in post_forms(page.text) if f.action.endswith("/trash")]
    assert "Move “" + PERSIAN + "” to the trash?" in page.text  # the confirmation text
    moved = await http.post(trash_form.action, data=trash_form.fields)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/folders/{world.acme_folder}?done=trashed"
    assert (await http.get(f"/documents/{doc}")).status_code == 404
    assert PERSIAN not in row_names((await http.get(f"/folders/{world.acme_folder}")).text)

    trash = await http.get("/trash")
    assert trash.status_code == 200
    assert PERSIAN in trash.text and "sam@example.test" in trash.text
    assert "globex.txt" not in trash.text  # sam does not look after Globex

    # A live document took the name meanwhile: a clear error, nothing renamed.
    await put(http, world, "alice", world.acme_folder, PERSIAN, b"new one")
    [restore] = [f for f in post_forms(trash.text) if f.action == f"/trash/{doc}/restore"]
    refused = await http.post(restore.action, data=restore.fields)
    assert refused.status_code == 409
    assert "a document with the same name is now in its folder" in refused.text
    api_refused = await http.post(f"{API}/documents/{doc}/restore", headers=world["sam"].auth)
    assert api_refused.status_code == 409

    listed = await http.get(f"{API}/trash", headers=world["sam"].auth)
    assert [d["id"] for d in listed.json()["documents"]] == [doc]
    assert (await http.get(f"{API}/trash", headers=world["alice"].auth)).json()["documents"] == []
    # Move the newcomer away, then the restore works.
    live = (await http.get(f"{API}/folders/{world.acme_folder}", headers=world["sam"].auth)).json()
    [newcomer] = [d["id"] for d in live["documents"] if d["name"] == PERSIAN]
    assert (
        await http.delete(f"{API}/documents/{newcomer}", headers=world["sam"].auth)
    ).status_code == 204
    restored = await http.post(restore.action, data=restore.fields)
    assert restored.status_code == 303
    assert (await http.get(f"/documents/{doc}")).status_code == 200
    [event] = await events(services, "document.restored")
    assert event.document_id == doc
    # Clients see no trash.
    await sign_in(other, world["alice"], second_factor=True)
    assert "Only staff" in (await other.get("/trash")).text


# --- previews -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "media", "inline"),
    [
        ("scan.png", b"\x89PNG\r\n\x1a\nfake", "image/png", True),
        ("report.pdf", b"%PDF-1.4 fake", "application/pdf", True),
        ("notes.txt", b"plain", "text/plain", True),
        ("logo.svg", b"<svg onload=alert(1)>", "application/octet-stream", False),
        ("page.html", b"<script>alert(1)</script>", "application/octet-stream", False),
    ],
)
async def test_inline_preview_only_for_safe_types(
    http: httpx.AsyncClient, world: World, name: str, data: bytes, media: str, inline: bool
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, name, data)
    response = await http.get(
        f"{API}/documents/{doc}/content",
        params={"disposition": "inline"},
        headers=world["alice"].auth,
    )
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"].split(";")[0] == media
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    csp = csp_directives(response.headers["content-security-policy"])
    assert "script-src" not in csp and csp["default-src"] == ["'none'"]
    if inline:
        assert disposition.startswith("inline;")
        assert csp["frame-ancestors"] == ["'self'"]
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        # Chromium's PDF viewer does not start in a sandboxed document; all else is sandboxed.
        assert ("sandbox" in csp) == (media != "application/pdf")
    else:
        assert disposition.startswith("attachment;")
        assert "sandbox" in csp and csp["frame-ancestors"] == ["'none'"]
    plain = await http.get(f"{API}/documents/{doc}/content", headers=world["alice"].auth)
    assert plain.headers["content-disposition"].startswith("attachment;")
    bad = await http.get(
        f"{API}/documents/{doc}/content?disposition=evil", headers=world["alice"].auth
    )
    assert bad.status_code == 422


async def test_document_page_embeds_its_preview(http: httpx.AsyncClient, world: World) -> None:
    pdf = await put(http, world, "alice", world.acme_folder, "report.pdf", b"%PDF-1.4")
    png = await put(http, world, "alice", world.acme_folder, "scan.png", b"\x89PNG")
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/documents/{pdf}")
    frame = f"/api/v1/documents/{pdf}/content?version=1&amp;disposition=inline"
    assert f'browse-preview__frame--pdf" src="{frame}"' in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    image = await http.get(f"/documents/{png}")
    src = f"/api/v1/documents/{png}/content?version=1&amp;disposition=inline"
    assert f'<img class="browse-preview__image" src="{src}"' in image.text


# --- delivery receipts --------------------------------------------------------------------


async def test_receipts_leave_out_the_uploader_of_a_version(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    async with transaction(services.sessions) as session:
        await accounts.create_user(
            session,
            TEST_CONTEXT,
            email="carol@example.test",
            role=Role.CLIENT,
            client_ids=[world.acme],
            password_hash=None,
        )
    doc = await put(http, world, "alice", world.acme_folder, "books.xlsx", payload(1_000))
    receipts = await http.get(f"{API}/documents/{doc}/receipts", headers=world["sam"].auth)
    [v1] = receipts.json()["versions"]
    # Alice uploaded it: she has it already, so only Carol is waited for.
    assert v1["received"] == []
    assert [m["email"] for m in v1["waiting"]] == ["carol@example.test"]


async def test_receipts_after_a_full_download_not_after_a_range(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    data = payload(200_000, seed=5)
    doc = await put(http, world, "sam", world.acme_folder, "statement.pdf", data)
    alice = world["alice"].auth

    ranged = await http.get(
        f"{API}/documents/{doc}/content", headers={**alice, "Range": "bytes=0-99"}
    )
    assert ranged.status_code == 206
    head = await http.head(f"{API}/documents/{doc}/content", headers=alice)
    assert head.status_code == 200
    preview = await http.get(
        f"{API}/documents/{doc}/content", params={"disposition": "inline"}, headers=alice
    )
    assert preview.status_code == 200 and preview.content == data
    receipts = await http.get(f"{API}/documents/{doc}/receipts", headers=world["sam"].auth)
    assert receipts.status_code == 200
    [v1] = receipts.json()["versions"]
    assert v1["received"] == [] and [m["email"] for m in v1["waiting"]] == ["alice@example.test"]
    assert await events(services, "document.download_completed") == []

    full = await http.get(f"{API}/documents/{doc}/content", headers=alice)
    assert full.status_code == 200 and full.content == data
    again = await http.get(f"{API}/documents/{doc}/content", headers=alice)
    assert again.status_code == 200
    [v1] = (await http.get(f"{API}/documents/{doc}/receipts", headers=world["sam"].auth)).json()[
        "versions"
    ]
    assert [m["email"] for m in v1["received"]] == ["alice@example.test"]
    assert v1["received"][0]["completed_at"] and v1["waiting"] == []
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(VersionReceipt))).scalars().all()
        assert [r.user_id for r in rows] == [world["alice"].id]  # one receipt, kept once
    completed = await events(services, "document.download_completed")
    assert [('"first":true' in e.details) for e in completed] == [True, False]

    # The page shows it to staff, not to the client.
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    assert "Delivery receipts" in page.text
    assert re.search(r'browse-receipts__done" data-member="alice@example.test"', page.text)
    denied = await http.get(f"{API}/documents/{doc}/receipts", headers=alice)
    assert denied.status_code == 403
    auditor = await http.get(f"{API}/documents/{doc}/receipts", headers=world["otto"].auth)
    assert auditor.status_code == 404


async def test_restores_reach_the_notification_feed(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    """A restored version is announced like an upload, a document back from the trash as
    `document.restored`; both reach the client's member but not the actor."""
    doc = await put(http, world, "alice", world.acme_folder, "plan.txt", b"one")
    await put(http, world, "alice", world.acme_folder, "plan.txt", b"two")
    async with transaction(services.sessions) as session:
        await feed.collect(session, now=datetime.now(UTC), batch_window_seconds=0)
    sam = world["sam"].auth
    restored = await http.post(f"{API}/documents/{doc}/versions/1/restore", headers=sam)
    assert restored.status_code == 201
    assert (await http.delete(f"{API}/documents/{doc}", headers=sam)).status_code == 204
    back = await http.post(f"{API}/documents/{doc}/restore", headers=sam)
    assert back.status_code == 200 and back.json()["version"] == 3
    async with transaction(services.sessions) as session:
        await feed.collect(session, now=datetime.now(UTC), batch_window_seconds=0)
        items = (
            await session.execute(
                select(NotificationItem, AuditEvent)
                .join(AuditEvent, col(AuditEvent.seq) == col(NotificationItem.seq))
                .where(col(NotificationItem.user_id) == world["alice"].id)
                .order_by(col(NotificationItem.seq))
            )
        ).all()
    actions = [event.action for _, event in items]
    assert actions == ["document.version_added", "document.deleted", "document.restored"]
    assert '"restored_from":1' in items[0][1].details


async def test_a_document_without_preview_says_so_and_clients_see_checksums_on_request(
    http: httpx.AsyncClient, world: World, app: ASGIApp
) -> None:
    data = b"year,amount\n2025,100\n"
    doc = await put(http, world, "sam", world.acme_folder, "ledger.csv", data)
    digest = hashlib.sha256(data).hexdigest()

    await sign_in(http, world["alice"], second_factor=True)
    page = (await http.get(f"/documents/{doc}")).text
    assert "There is no preview for this kind of file." in page
    # A client sees no checksum column; the full hash waits under "Checksums".
    assert '<th scope="col">SHA-256</th>' not in page
    assert re.search(r"<details class=\"browse-checksums\">.*" + digest, page, flags=re.DOTALL), (
        "the checksum is not offered"
    )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as staff:
        await sign_in(staff, world["sam"], second_factor=True)
        staff_page = (await staff.get(f"/documents/{doc}")).text
    assert '<th scope="col">SHA-256</th>' in staff_page
    assert 'class="browse-checksums"' not in staff_page
