"""The Operations page against a real clamd: the scanner's status as it answers or not, and
the keyring counting and re-wrapping every kind of wrapped key (document versions,
quarantined versions, resumable uploads, thumbnails, two-step secrets)."""

from __future__ import annotations

import random
import re

import httpx
import pytest
from sqlmodel import select

from tests.fixtures.app import World
from tests.fixtures.clamd import ClamdServer
from tests.fixtures.documents import upload
from tests.fixtures.pages import browser as browser
from tests.fixtures.pages import form_for
from tests.fixtures.quarantine import scan_all
from tests.fixtures.signin import sign_in
from tests.fixtures.thumbnails import png
from tests.fixtures.tus import PART, download, new_upload, send
from vault import keykeeping
from vault.accounts.identity import TotpCredential
from vault.db import transaction
from vault.models import Version
from vault.policy import SYSTEM
from vault.quarantine_tables import HeldVersion
from vault.thumbnails import Thumbnail
from vault.uploads import Upload
from web.services import Services
from web.settings import ScanSettings, Settings

OPERATIONS = "/admin/operations"


@pytest.fixture
def settings(settings: Settings, clamd: ClamdServer) -> Settings:
    # Every upload is held until the test scans it, so a quarantined row is easy to keep.
    scan = ScanSettings(all_uploads=True, clamd_socket=str(clamd.socket), worker=False)
    return settings.model_copy(update={"scan": scan})


def scanner_shown(html: str) -> str:
    found = re.search(r"Virus scanner</dt><dd>(.*?)</dd>", html, re.S)
    assert found is not None, html
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


async def test_the_scanner_is_shown_available_then_unavailable_once_clamd_stops(
    browser: httpx.AsyncClient, world: World, clamd: ClamdServer
) -> None:
    await sign_in(browser, world["ada"], second_factor=True)
    assert scanner_shown((await browser.get(OPERATIONS)).text) == "Available"
    clamd.stop()
    page = await browser.get(OPERATIONS)
    assert page.status_code == 200
    assert scanner_shown(page.text) == "Unavailable"


def kek_row(html: str, kek_id: str) -> list[str]:
    """The numbers of one KEK's row: versions, quarantine, uploads, thumbnails, secrets."""
    found = re.search(rf'<tr><td><code dir="ltr">{re.escape(kek_id)}</code>.*?</tr>', html, re.S)
    assert found is not None, html
    cells = re.findall(r'<td class="num">(?:<span[^>]*>[^<]*</span>)?([^<]*)</td>', found.group(0))
    return [c.strip() for c in cells]


async def kek_ids(services: Services) -> dict[str, set[str | None]]:
    async with transaction(services.sessions) as session:
        return {
            model.__name__: set((await session.execute(select(model.kek_id))).scalars())
            for model in (Version, HeldVersion, Upload, Thumbnail, TotpCredential)
        }


async def test_every_wrapped_key_is_counted_and_rewrapped_and_still_decrypts(
    http: httpx.AsyncClient, browser: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"].auth
    picture = png(120, 80)
    shown = await upload(http, alice, world.acme_folder, "picture.png", picture, expect=202)
    picture_id = shown.json()["document_id"]
    assert await scan_all(services, services.settings) == 1  # published: a version
    await sign_in(http, world["alice"], second_factor=True)
    thumbnail = await http.get(f"/documents/{picture_id}/thumbnail")
    assert thumbnail.status_code == 200  # drawn and stored: a thumbnail
    held_data = random.Random(2).randbytes(40_000)
    held = await upload(http, alice, world.acme_folder, "held.bin", held_data, expect=202)
    resumable = random.Random(3).randbytes(PART + 100)
    url = await new_upload(http, alice, world.acme_folder, len(resumable), "open.bin")
    await send(http, url, alice, 0, resumable[:PART])  # an open upload

    # The admin rotates from the page: every key above is on a retired KEK now.
    old_id = services.keyring.active_id
    await sign_in(browser, world["ada"], second_factor=True)
    page = await browser.get(OPERATIONS)
    rotate = f"{OPERATIONS}/keys/rotate"
    assert (await browser.post(rotate, data=form_for(page.text, rotate))).status_code == 303
    services.keyring.reload()  # the app wrote the key file through its own keyring
    new_id = services.keyring.active_id
    assert new_id != old_id
    async with transaction(services.sessions) as session:
        state = await keykeeping.state(session, SYSTEM, services.keyring)
    [old] = [k for k in state.keks if k.kek_id == old_id]
    # Publishing the picture destroyed its quarantine row's copy of the key (the version's
    # row holds it now): only the file still held counts under quarantine.
    assert (old.versions, old.quarantined, old.uploads, old.thumbnails) == (1, 1, 1, 1)
    assert old.totp_secrets >= 1  # the signed-in people's second factors
    assert state.to_rewrap == old.keys == state.total
    page = await browser.get(OPERATIONS)
    assert kek_row(page.text, old_id) == ["1", "1", "1", "1", str(old.totp_secrets)]
    assert f"0 of {state.total} keys are on the active KEK; {state.total} to go" in page.text

    rewrap = f"{OPERATIONS}/keys/rewrap"
    assert (await browser.post(rewrap, data=form_for(page.text, rewrap))).status_code == 303
    page = await browser.get(OPERATIONS)
    assert "Every key is on the active KEK." in page.text
    assert kek_row(page.text, old_id) == ["0"] * 5
    assert await kek_ids(services) == {
        "Version": {new_id},
        "HeldVersion": {new_id, None},  # None: the published picture's destroyed copy
        "Upload": {new_id},
        "Thumbnail": {new_id},
        "TotpCredential": {new_id},
    }

    # Each re-wrapped key still opens its bytes: the stored thumbnail, the held version
    # once published, and the upload finished under its re-wrapped key.
    again = await http.get(f"/documents/{picture_id}/thumbnail")
    assert again.status_code == 200 and again.content == thumbnail.content
    done = await send(http, url, alice, PART, resumable[PART:])
    assert await scan_all(services, services.settings) == 2
    assert await download(http, alice, picture_id) == picture
    assert await download(http, alice, held.json()["document_id"]) == held_data
    assert await download(http, alice, done.headers["document-id"]) == resumable
