"""The folder browser driven without JavaScript: listing, sorting, search, who sees which
folder, and folders as streamed zip archives."""

from __future__ import annotations

import io
import re
import tracemalloc
import uuid
import zipfile
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from sqlmodel import select
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.browse import JAPANESE, PERSIAN, payload, row_names
from tests.fixtures.documents import API, events, put
from tests.fixtures.pages import csrf_of
from tests.fixtures.pages import other as other
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import VersionReceipt
from web.pages.render import PAGE_CSP
from web.services import Services


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
    # The text names the upload button as the page labels it.
    assert "This folder is empty. Add documents with “Choose files”." in page.text
    assert ">Choose files<" in page.text
    assert "New folder" not in page.text
    assert 'action="/folders/' + empty + '/folders"' not in page.text  # clients create none
    # Nothing to download: no archive of an empty folder is offered.
    assert "/download.zip" not in page.text

    await sign_in(other, world["sam"], second_factor=True)
    page = await other.get(f"/folders/{empty}")
    assert "or make a sub-folder with “New folder”" in page.text
    assert ">New folder<" in page.text
    assert f'action="/folders/{empty}/folders"' in page.text
    assert "/download.zip" not in page.text


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
