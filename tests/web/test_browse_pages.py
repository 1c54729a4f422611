"""The folder browser driven without JavaScript: listing, sorting, search, documents, version
restore, trash, delivery receipts, previews and folders as streamed zip archives."""

from __future__ import annotations

import hashlib
import io
import random
import re
import tracemalloc
import uuid
import zipfile
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from sqlmodel import col, select
from starlette.types import ASGIApp

from notify import feed
from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.documents import API, events, put
from tests.fixtures.pages import csp_directives, csrf_of, post_forms
from tests.fixtures.pages import other as other
from tests.fixtures.signin import sign_in
from vault import accounts
from vault.db import transaction
from vault.models import AuditEvent, Role, VersionReceipt
from vault.notifications import NotificationItem
from web.pages.render import PAGE_CSP
from web.services import Services

PERSIAN = "گزارش مالی ۱۴۰۳.pdf"
JAPANESE = "請求書_二〇二六年.txt"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def make_folder(
    http: httpx.AsyncClient, world: World, name: str, parent: uuid.UUID | str | None = None
) -> str:
    body: dict[str, Any] = {"client_id": str(world.acme), "name": name}
    if parent:
        body["parent_id"] = str(parent)
    response = await http.post(f"{API}/folders", json=body, headers=world["sam"].auth)
    assert response.status_code == 201, response.text
    folder_id: str = response.json()["id"]
    return folder_id


def row_names(html: str) -> list[str]:
    """Names in the listing's rows, in order (folders then documents)."""
    listing = html.split('id="folder-listing"', 1)[1]
    return re.findall(
        r'<th scope="row"><a href="[^"]+">(?:<span[^>]*>[^<]*</span> )?<bdi>([^<]*)</bdi>', listing
    )


# --- browsing -----------------------------------------------------------------------------


async def test_folder_lists_subfolders_then_documents_with_breadcrumbs(
    http: httpx.AsyncClient, world: World
) -> None:
    sub = await make_folder(http, world, "Receipts", world.acme_folder)
    deep = await make_folder(http, world, "März", sub)
    await put(http, world, "alice", world.acme_folder, "b.txt", b"bb")
    await put(http, world, "sam", world.acme_folder, "A.txt", b"a")
    await put(http, world, "alice", deep, PERSIAN, b"%PDF-1.4 fa")
    await sign_in(http, world["alice"], second_factor=True)

    root = await http.get(f"/clients/{world.acme}")
    assert root.status_code == 200, root.text
    assert row_names(root.text) == ["Tax 2026"]
    page = await http.get(f"/folders/{world.acme_folder}")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert row_names(page.text) == ["Receipts", "A.txt", "b.txt"]
    # Modified by whom: the uploader of the current version.
    assert "sam@example.test" in page.text and "alice@example.test" in page.text
    assert f'href="/folders/{world.acme_folder}/download.zip"' in page.text

    nested = await http.get(f"/folders/{deep}")
    crumbs = re.search(r'<nav class="breadcrumbs".*?</nav>', nested.text, re.S)
    assert crumbs is not None
    labels = re.findall(r"<bdi>([^<]*)</bdi>", crumbs.group(0))
    assert labels == ["Acme", "Tax 2026", "Receipts", "März"]
    assert 'aria-current="page"' in crumbs.group(0)
    assert row_names(nested.text) == [PERSIAN]


async def test_sorting_by_each_column_with_aria_sort(http: httpx.AsyncClient, world: World) -> None:
    await put(http, world, "alice", world.acme_folder, "beta.txt", b"x" * 300)
    await put(http, world, "sam", world.acme_folder, "Alpha.txt", b"x" * 100)
    await put(http, world, "alice", world.acme_folder, "Gamma.txt", b"x" * 200)
    await put(http, world, "alice", world.acme_folder, "ärger.txt", b"x" * 10)
    await sign_in(http, world["alice"], second_factor=True)
    base = f"/folders/{world.acme_folder}"

    by_name = await http.get(base)
    # Case- and accent-insensitive on the folded key: ä folds to itself, after a–z in code points.
    assert row_names(by_name.text) == ["Alpha.txt", "beta.txt", "Gamma.txt", "ärger.txt"]
    assert re.search(
        r'<th scope="col" aria-sort="ascending">\s*<a href="[^"]*sort=name&amp;order=desc"',
        by_name.text,
    )
    assert by_name.text.count("aria-sort=") == 1

    desc = await http.get(base, params={"sort": "name", "order": "desc"})
    assert row_names(desc.text) == ["ärger.txt", "Gamma.txt", "beta.txt", "Alpha.txt"]
    assert 'aria-sort="descending"' in desc.text

    size = await http.get(base, params={"sort": "size", "order": "desc"})
    assert row_names(size.text) == ["beta.txt", "Gamma.txt", "Alpha.txt", "ärger.txt"]
    assert re.search(
        r'aria-sort="descending" class="num">\s*<a href="[^"]*sort=size&amp;order=asc"', size.text
    )

    modified = await http.get(base, params={"sort": "modified"})
    assert row_names(modified.text) == ["beta.txt", "Alpha.txt", "Gamma.txt", "ärger.txt"]

    by = await http.get(base, params={"sort": "by"})
    names = row_names(by.text)
    assert names[-1] == "Alpha.txt"  # sam sorts after alice

    bogus = await http.get(base, params={"sort": "nonsense", "order": "sideways"})
    assert bogus.status_code == 200 and row_names(bogus.text) == row_names(by_name.text)


async def test_empty_states_say_what_to_do(
    http: httpx.AsyncClient, other: httpx.AsyncClient, world: World
) -> None:
    empty = await make_folder(http, world, "Empty", world.acme_folder)
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/folders/{empty}")
    assert "This folder is empty. Drag files here or use Upload to add some." in page.text
    assert "create a folder" not in page.text
    assert 'action="/folders/' + empty + '/folders"' not in page.text  # clients create none

    await sign_in(other, world["sam"], second_factor=True)
    page = await other.get(f"/folders/{empty}")
    assert "or create a folder" in page.text
    assert f'action="/folders/{empty}/folders"' in page.text


async def test_staff_create_a_folder_from_the_page(http: httpx.AsyncClient, world: World) -> None:
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    token = csrf_of(page.text)
    made = await http.post(
        f"/folders/{world.acme_folder}/folders", data={"csrf_token": token, "name": "領収書"}
    )
    assert made.status_code == 303
    assert made.headers["location"].endswith("?done=folder-created")
    listing = await http.get(f"/folders/{world.acme_folder}")
    assert "領収書" in row_names(listing.text)

    again = await http.post(
        f"/folders/{world.acme_folder}/folders", data={"csrf_token": token, "name": "領収書"}
    )
    assert again.status_code == 409 and "already here" in again.text
    bad = await http.post(
        f"/folders/{world.acme_folder}/folders", data={"csrf_token": token, "name": "../x"}
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    forged = await http.post(
        f"/folders/{world.acme_folder}/folders", data={"csrf_token": "nope", "name": "Forged"}
    )
    assert forged.status_code == 403
    root = await http.post(
        f"/clients/{world.acme}/folders", data={"csrf_token": token, "name": "Payroll"}
    )
    assert root.status_code == 303
    assert "Payroll" in row_names((await http.get(f"/clients/{world.acme}")).text)


async def test_other_clients_pages_are_not_found(http: httpx.AsyncClient, world: World) -> None:
    acme_doc = await put(http, world, "alice", world.acme_folder, "secret.txt", b"acme")
    await sign_in(http, world["bob"], second_factor=True)
    for path in (
        f"/clients/{world.acme}",
        f"/folders/{world.acme_folder}",
        f"/documents/{acme_doc}",
        f"/clients/{world.acme}/search?q=secret",
        f"/folders/{world.acme_folder}/download.zip",
        f"/documents/{uuid.uuid4()}",
        "/folders/not-an-id",
    ):
        response = await http.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "secret.txt" not in response.text, path
    own = await http.get(f"/folders/{world.globex_folder}")
    assert own.status_code == 200
    token = csrf_of(own.text)
    for path in (
        f"/folders/{world.acme_folder}/folders",
        f"/documents/{acme_doc}/trash",
        f"/documents/{acme_doc}/versions/1/restore",
        f"/trash/{acme_doc}/restore",
    ):
        response = await http.post(path, data={"csrf_token": token, "name": "x"})
        assert response.status_code == 404, path


async def test_signed_out_pages_go_to_sign_in(http: httpx.AsyncClient, world: World) -> None:
    for path in (f"/clients/{world.acme}", f"/folders/{world.acme_folder}", "/trash"):
        response = await http.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login"


# --- search -------------------------------------------------------------------------------


async def test_search_across_folders_finds_non_latin_names(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    sub = await make_folder(http, world, "Receipts", world.acme_folder)
    await put(http, world, "alice", sub, PERSIAN, b"%PDF fa")
    await put(http, world, "alice", world.acme_folder, JAPANESE, b"ja")
    await put(http, world, "alice", world.acme_folder, "RÉSUMÉ 100%.txt", b"r")
    await put(http, world, "bob", world.globex_folder, "گزارش globex.pdf", b"globex")
    await sign_in(http, world["alice"], second_factor=True)

    found = await http.get(f"/clients/{world.acme}/search", params={"q": "گزارش"})
    assert found.status_code == 200
    assert PERSIAN in found.text and "globex" not in found.text
    # The folder path, each name isolated in its own direction, the steps in the page's.
    assert "<bdi>Tax 2026</bdi> › <bdi>Receipts</bdi>" in found.text
    japanese = await http.get(f"/clients/{world.acme}/search", params={"q": "請求書"})
    assert JAPANESE in japanese.text
    # Case folding of the stored key: upper-case query, lower-case stored form and back.
    folded = await http.get(f"/clients/{world.acme}/search", params={"q": "résumé"})
    assert "RÉSUMÉ 100%.txt" in folded.text
    # `%` and `_` are characters, not wildcards.
    assert "RÉSUMÉ" in (await http.get(f"/clients/{world.acme}/search?q=100%25")).text
    nothing = await http.get(f"/clients/{world.acme}/search", params={"q": "_%"})
    assert "Nothing is named like" in nothing.text
    folders = await http.get(f"/clients/{world.acme}/search", params={"q": "receipt"})
    assert f'href="/folders/{sub}"' in folders.text
    assert len(await events(services, "folder.searched")) == 6


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


# --- folder as zip ------------------------------------------------------------------------


async def test_folder_downloads_as_a_streamed_zip(
    http: httpx.AsyncClient, other: httpx.AsyncClient, world: World, services: Services
) -> None:
    big = payload(3 * 1024 * 1024 + 17, seed=9)
    text = ("ledger line\n" * 50_000).encode()
    sub = await make_folder(http, world, "領収書", world.acme_folder)
    await make_folder(http, world, "Empty", sub)
    await put(http, world, "alice", world.acme_folder, "big.bin", big)
    await put(http, world, "alice", world.acme_folder, "ledger.txt", b"old")
    await put(http, world, "alice", world.acme_folder, "ledger.txt", text)
    await put(http, world, "alice", sub, PERSIAN, b"%PDF fa")
    gone = await put(http, world, "alice", sub, "trashed.txt", b"gone")
    assert (
        await http.delete(f"{API}/documents/{gone}", headers=world["sam"].auth)
    ).status_code == 204
    await sign_in(http, world["alice"], second_factor=True)

    async with http.stream(
        "GET",
        f"/folders/{world.acme_folder}/download.zip",
        headers={"Sec-Fetch-Site": "same-origin"},  # as the portal's own link is followed
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert "content-length" not in response.headers  # streamed as it is built
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
    disposition = response.headers["content-disposition"]
    assert disposition == "attachment; filename=\"Tax 2026.zip\"; filename*=UTF-8''Tax%202026.zip"

    archive = zipfile.ZipFile(io.BytesIO(bytes(body)))
    assert archive.testzip() is None
    names = archive.namelist()
    assert set(names) == {
        "Tax 2026/",
        "Tax 2026/big.bin",
        "Tax 2026/ledger.txt",
        "Tax 2026/領収書/",
        f"Tax 2026/領収書/{PERSIAN}",
        "Tax 2026/領収書/Empty/",
    }
    assert archive.read("Tax 2026/big.bin") == big
    assert archive.read("Tax 2026/ledger.txt") == text  # the current version
    assert archive.read(f"Tax 2026/領収書/{PERSIAN}") == b"%PDF fa"
    assert archive.getinfo(f"Tax 2026/領収書/{PERSIAN}").flag_bits & 0x800  # UTF-8 name
    # Text is compressed, the rest stored as it is.
    assert archive.getinfo("Tax 2026/ledger.txt").compress_size < len(text) // 10

    head = await http.head(f"/folders/{world.acme_folder}/download.zip")
    assert head.status_code == 200 and head.headers["content-type"] == "application/zip"
    [folder_event] = await events(services, "folder.downloaded")  # the HEAD recorded none
    assert '"documents":3' in folder_event.details
    zipped = [
        e for e in await events(services, "document.downloaded") if '"via":"zip"' in e.details
    ]
    assert len(zipped) == 3
    assert len(await events(services, "document.download_completed")) == 3
    async with transaction(services.sessions) as session:
        assert len((await session.execute(select(VersionReceipt))).scalars().all()) == 3

    # Non-Latin names survive in the download names too (RFC 8187 `filename*`).
    nested = await http.get(f"/folders/{sub}/download.zip")
    assert nested.headers["content-disposition"].endswith(
        "filename*=UTF-8''" + quote("領収書.zip", safe="")
    )
    assert zipfile.ZipFile(io.BytesIO(nested.content)).namelist()[0] == "領収書/"
    [persian] = [
        d["id"]
        for d in (await http.get(f"{API}/folders/{sub}", headers=world["alice"].auth)).json()[
            "documents"
        ]
    ]
    single = await http.get(f"{API}/documents/{persian}/content", headers=world["alice"].auth)
    assert single.headers["content-disposition"].endswith(
        "filename*=UTF-8''" + quote(PERSIAN.encode(), safe="!#$&+-.^_`|~")
    )

    await sign_in(other, world["otto"], second_factor=True)
    assert (await other.get(f"/folders/{world.acme_folder}/download.zip")).status_code == 404


async def test_zip_memory_stays_flat_in_the_file_size(
    http: httpx.AsyncClient, app: ASGIApp, world: World
) -> None:
    """The app alone, driven over raw ASGI so that no client buffers the body: its peak
    allocation while streaming an archive is far below the size of the file inside."""
    size = 24 * 1024 * 1024
    chunk = payload(1024 * 1024, seed=3)
    url = f"{API}/folders/{world.acme_folder}/files/large.bin"
    stored = await http.put(url, content=chunk * (size // len(chunk)), headers=world["alice"].auth)
    assert stored.status_code == 201
    await sign_in(http, world["alice"], second_factor=True)
    cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    path = f"/folders/{world.acme_folder}/download.zip"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    total = 0
    status = 0

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal total, status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            total += len(message.get("body", b""))

    tracemalloc.start()
    try:
        async with anyio.create_task_group() as tasks:

            async def run() -> None:
                await app(scope, receive, send)
                tasks.cancel_scope.cancel()

            tasks.start_soon(run)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200
    assert total > size  # the file went through, stored without compression
    assert peak < 8 * 1024 * 1024, peak  # a few parts in flight, not the 24 MiB file


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
