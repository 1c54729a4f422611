"""The auditor's pages: search, a document's access history, a person's timeline and the
access report (CSV and PDF), for auditors and admins only; each read is itself audited."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata

import httpx
import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader
from sqlalchemy import update

from tests.fixtures.app import Person, World
from tests.fixtures.audit_trail import API, upload
from tests.fixtures.audit_trail import downloaded as downloaded
from tests.fixtures.signin import sign_in
from vault.db import transaction
from vault.models import User
from web.services import Services

_ISOLATES = str.maketrans("", "", "\u2068\u2069")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def results(html: str) -> str:
    """The text of a search page below its form: the matches and the events."""
    below = html.split('class="card audit-form"', 1)[1].split("</form>", 1)[1]
    return text_of(below.split('<footer class="site-footer">')[0])


async def audit_events(
    http: httpx.AsyncClient, world: World, action: str
) -> list[dict[str, object]]:
    response = await http.get(f"{API}/audit", params={"action": action}, headers=world["otto"].auth)
    events: list[dict[str, object]] = response.json()["events"]
    return events


async def test_the_pages_exist_for_auditors_and_admins_only(
    http: httpx.AsyncClient, world: World, downloaded: str
) -> None:
    urls = [
        "/audit",
        f"/audit/people/{world['alice'].id}",
        "/audit/report",
        f"/audit/report/download?format=csv&client={world.acme}",
    ]
    jars: dict[str, httpx.Cookies] = {}
    for who in ("alice", "bob", "sam", "gina", "otto", "ada"):
        http.cookies = httpx.Cookies()
        await sign_in(http, world[who], second_factor=True)
        jars[who] = http.cookies
    for who in ("alice", "bob", "sam", "gina"):
        http.cookies = jars[who]
        for url in urls:
            assert (await http.get(url)).status_code == 404, (who, url)
    # A document's history: staff who look after its client see it (the document page links
    # it), staff of another client and client users do not.
    history = f"/audit/documents/{downloaded}"
    for who, status in [("alice", 404), ("gina", 404), ("sam", 200)]:
        http.cookies = jars[who]
        assert (await http.get(history)).status_code == status, who
    http.cookies = jars["sam"]
    document_page = await http.get(f"/documents/{downloaded}")
    assert f'href="{history}"' in document_page.text
    for who in ("otto", "ada"):
        http.cookies = jars[who]
        for url in [*urls[:3], history]:
            assert (await http.get(url)).status_code == 200, (who, url)


async def test_a_document_history_says_who_read_it_with_names_and_ranges(
    http: httpx.AsyncClient, world: World, downloaded: str
) -> None:
    await sign_in(http, world["otto"], second_factor=True)
    page = await http.get(f"/audit/documents/{downloaded}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Alice Example downloaded Tax return 2025.pdf (version 1, bytes 0–1,023)" in text
    assert "Alice Example downloaded Tax return 2025.pdf (version 1)" in text
    assert "alice@example.test" in text and "From 127.0.0.1" in text
    assert '<bdi dir="auto">Alice Example</bdi>' in page.text
    (viewed,) = [
        e
        for e in await audit_events(http, world, "audit.viewed")
        if e["details"]["view"] == "document"  # type: ignore[index]
    ]
    assert viewed["details"]["filters"] == {"document_id": downloaded}  # type: ignore[index]


async def set_locale(services: Services, person: Person, locale: str) -> None:
    async with transaction(services.sessions) as session:
        await session.execute(
            update(User).where(User.id == person.id).values(locale=locale)  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("locale", "wanted"),
    [
        ("he", "הוריד/ה את"),
        ("fa", "را دانلود کرد"),
        ("ja", "をダウンロードしました"),
        ("zh", "下载了"),
    ],
)
async def test_the_history_reads_in_every_language(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    downloaded: str,
    locale: str,
    wanted: str,
) -> None:
    await set_locale(services, world["otto"], locale)
    await sign_in(http, world["otto"], second_factor=True)
    page = await http.get(f"/audit/documents/{downloaded}")
    assert page.status_code == 200
    assert f'lang="{locale}"' in page.text
    assert ('dir="rtl"' in page.text) == (locale in ("he", "fa"))
    text = text_of(page.text)
    assert wanted in text, text
    assert "Alice Example" in text and "Tax return 2025.pdf" in text


async def test_search_finds_who_downloaded_a_document_by_its_name(
    http: httpx.AsyncClient, world: World, downloaded: str
) -> None:
    await upload(http, world["gina"], world.globex_folder, "Globex plan.pdf")
    await sign_in(http, world["otto"], second_factor=True)
    found = await http.get("/audit", params={"document": "tax return", "group": "document"})
    assert found.status_code == 200
    text = results(found.text)
    assert text.count("Alice Example downloaded Tax return 2025.pdf") == 2
    assert "Globex" not in text
    # Several matches: the page offers each person rather than guessing.
    several = await http.get("/audit", params={"person": "example.test"})
    assert f'href="/audit/people/{world["alice"].id}"' in several.text
    assert "Several people match" in several.text
    # By person (email), outcome, address and days; nothing matches outside the range.
    mine = results((await http.get("/audit", params={"person": "alice@example.test"})).text)
    assert "Alice Example downloaded" in mine and "Sam" not in mine
    refused = await http.get(f"{API}/documents/{downloaded}", headers=world["bob"].auth)
    assert refused.status_code == 404
    denied = results((await http.get("/audit", params={"outcome": "denied"})).text)
    # Refused on another client's document: the auditor, who sees every client, learns which.
    assert "Bob Globex was refused access to Tax return 2025.pdf (refused)" in denied
    assert "Alice Example downloaded" not in denied
    by_ip = results(
        (await http.get("/audit", params={"ip": "192.0.2.1", "group": "document"})).text
    )
    assert "No events match." in by_ip
    old = results((await http.get("/audit", params={"until": "2020-01-01"})).text)
    assert "No events match." in old
    bad = await http.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 200 and "Write days as YYYY-MM-DD." in bad.text


async def test_pages_go_back_in_time_one_keyset_page_at_a_time(
    http: httpx.AsyncClient, world: World, downloaded: str
) -> None:
    for _ in range(55):
        await http.get(f"{API}/documents/{downloaded}", headers=world["alice"].auth)
    await sign_in(http, world["otto"], second_factor=True)
    first = await http.get(f"/audit/people/{world['alice'].id}")
    seqs = [int(n) for n in re.findall(r"Event (\d+)", text_of(first.text))]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    (older,) = re.findall(r'href="\?(before=\d+)"', first.text)
    second = await http.get(f"/audit/people/{world['alice'].id}?{older}")
    more = [int(n) for n in re.findall(r"Event (\d+)", text_of(second.text))]
    assert more and max(more) < min(seqs)
    assert "Alice Example" in text_of(first.text) and "Activity timeline" in first.text


async def test_the_access_report_downloads_as_csv_and_pdf_and_is_audited(
    http: httpx.AsyncClient, world: World, downloaded: str
) -> None:
    await sign_in(http, world["otto"], second_factor=True)
    form = await http.get("/audit/report")
    assert f'value="{world.acme}"' in form.text
    views = [e["details"]["view"] for e in await audit_events(http, world, "audit.viewed")]  # type: ignore[index]
    assert views[0] == "report"
    report = await http.get(
        "/audit/report/download", params={"format": "csv", "client": str(world.acme)}
    )
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    ranged = [r for r in rows if r["range"] == "0-1023"]
    assert len(ranged) == 1
    assert ranged[0]["actor_name"] == "Alice Example"
    assert ranged[0]["actor_email"] == "alice@example.test"
    assert ranged[0]["target_label"] == "Tax return 2025.pdf"
    assert ranged[0]["sentence"].translate(_ISOLATES) == (
        "Alice Example downloaded Tax return 2025.pdf (version 1, bytes 0–1,023) from 127.0.0.1"
    )
    assert all(r["action"].startswith("document.") for r in rows)

    pdf = await http.get(
        "/audit/report/download", params={"format": "pdf", "client": str(world.acme)}
    )
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Access report: Acme" in text
    assert "Alice Example" in text and "bytes 0–1,023" in text.replace("\n", " ")
    checkpoint = (await http.get(f"{API}/audit/checkpoint", headers=world["otto"].auth)).text
    origin, size = checkpoint.splitlines()[:2]
    flat = text.replace("\n", " ")
    assert origin in flat and f"tree size {size}" in flat, (checkpoint, flat)

    recorded = await audit_events(http, world, "audit.report_downloaded")
    assert [e["details"]["format"] for e in recorded] == ["pdf", "csv"]  # type: ignore[index]
    assert {e["client_id"] for e in recorded} == {str(world.acme)}
    assert recorded[0]["target_label"] == "Acme"
    bad = await http.get(
        "/audit/report/download", params={"format": "xls", "client": str(world.acme)}
    )
    assert bad.status_code == 400
    assert json.loads(json.dumps(len(recorded))) == 2


@pytest.mark.parametrize(
    ("locale", "heading", "name", "sentence"),
    [
        ("he", "דוח גישה: Acme", "שרה כהן", "הוריד/ה את"),
        ("fa", "گزارش دسترسی: Acme", "سارا احمدی", "را دانلود کرد"),
        ("ja", "アクセスレポート: Acme", "山田 花子", "をダウンロードしました"),
    ],
)
async def test_the_pdf_report_reads_in_the_auditors_language_and_direction(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    locale: str,
    heading: str,
    name: str,
    sentence: str,
) -> None:
    async with transaction(services.sessions) as session:
        await session.execute(
            update(User).where(User.id == world["alice"].id).values(display_name=name)  # type: ignore[arg-type]
        )
    document_id = await upload(http, world["sam"], world.acme_folder, "Tax return 2025.pdf")
    read = await http.get(f"{API}/documents/{document_id}/content", headers=world["alice"].auth)
    assert read.status_code == 200
    await set_locale(services, world["otto"], locale)
    await sign_in(http, world["otto"], second_factor=True)
    pdf = await http.get(
        "/audit/report/download", params={"format": "pdf", "client": str(world.acme)}
    )
    assert pdf.status_code == 200
    document = pdfium.PdfDocument(pdf.content)
    # The reader's extraction puts right-to-left text drawn in display order back into
    # logical order, and folds joined Persian letters to the letters themselves; a line
    # drawn in logical order would come out reversed.
    text = unicodedata.normalize(
        "NFKC", "\n".join(page.get_textpage().get_text_range() for page in document)
    )
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == heading, lines[:3]
    assert name in text and name[::-1] not in text
    assert sentence in text
    flat = " ".join(lines)
    assert "Tax return 2025.pdf" in flat
