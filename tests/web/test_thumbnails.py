"""Thumbnails drawn on the server: the right size and type, stored encrypted, drawn once,
shown only to those who may download the document, and none for what cannot be drawn."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import httpx
import pytest
from alembic import command
from PIL import Image
from sqlalchemy import inspect
from sqlmodel import select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.documents import events, put
from tests.fixtures.pages import other as other
from tests.fixtures.signin import sign_in
from tests.fixtures.thumbnails import bomb_png, pdf, png
from vault import crypto, maintenance, retention, thumbnails
from vault.crypto import blobs
from vault.db import alembic_config, transaction
from vault.maintenance import collect_garbage
from vault.models import Document, Version
from vault.policy import SYSTEM
from vault.retention import Rules
from vault.thumbnails import Thumbnail
from web.pages import document as document_pages
from web.services import Services
from web.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A 1 MiB ceiling, so a version past it is cheap to make.
    previews = settings.previews.model_copy(update={"thumbnail_max_mib": 1})
    return settings.model_copy(update={"previews": previews})


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The media types drawn, one entry per drawing (the real drawing code runs)."""
    drawn: list[str] = []
    real = thumbnails.render

    def counting(data: bytes, content_type: str) -> object:
        drawn.append(content_type)
        return real(data, content_type)

    monkeypatch.setattr(thumbnails, "render", counting)
    return drawn


def picture(response: httpx.Response) -> Image.Image:
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


async def stored(services: Services) -> list[tuple[str, bytes]]:
    found = []
    async for obj in services.store.list(thumbnails.PREFIX):
        found.append((obj.key, b"".join([p async for p in services.store.read(obj.key)])))
    return found


async def test_a_png_and_a_pdf_get_thumbnails_of_the_right_size_and_type(
    http: httpx.AsyncClient, world: World
) -> None:
    image = await put(http, world, "alice", world.acme_folder, "wide.png", png(1000, 500))
    paper = await put(http, world, "alice", world.acme_folder, "tall.pdf", pdf(200, 400))
    await sign_in(http, world["alice"], second_factor=True)

    wide = await http.get(f"/documents/{image}/thumbnail?version=1")
    assert wide.status_code == 200
    assert wide.headers["content-type"] == "image/webp"
    assert picture(wide).format == "WEBP"
    assert picture(wide).size == (256, 128)
    assert wide.headers["cache-control"] == "private, max-age=3600"
    assert wide.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in wide.headers["content-security-policy"]
    assert "default-src 'none'" in wide.headers["content-security-policy"]

    tall = await http.get(f"/documents/{paper}/thumbnail")
    assert tall.status_code == 200
    assert picture(tall).size == (128, 256)
    # The current version's address may change content: revalidated, never served stale.
    assert tall.headers["cache-control"] == "private, no-cache"
    again = await http.get(
        f"/documents/{paper}/thumbnail", headers={"If-None-Match": tall.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""

    page = await http.get(f"/documents/{image}")
    # A PNG this small is previewed in full; the thumbnail stands in only where it is not.
    assert "/thumbnail" not in page.text


async def test_the_stored_thumbnail_is_ciphertext_that_decrypts_to_the_image(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "photo.png", png(640, 480))
    await sign_in(http, world["alice"], second_factor=True)
    shown = await http.get(f"/documents/{doc}/thumbnail")
    assert shown.status_code == 200

    [(key, raw)] = await stored(services)
    assert b"\x89PNG" not in raw
    assert b"RIFF" not in raw and b"WEBP" not in raw
    assert shown.content not in raw
    async with transaction(services.sessions) as session:
        [row] = (await session.execute(select(Thumbnail))).scalars().all()
        version = await session.get_one(Version, row.version_id)
        document = await session.get_one(Document, version.document_id)
    assert row.storage_key == key and row.media_type == "image/webp"
    assert row.wrapped_dek is not None and row.kek_id is not None and row.header is not None
    dek = services.keyring.unwrap(row.kek_id, row.wrapped_dek)
    # Bound to its own id, not the version's: it cannot pass for the version's object.
    context = crypto.ObjectContext(document.client_id, document.id, row.id)
    opened = crypto.parse_header(row.header, context, dek)
    plain = b"".join(
        [
            p
            async for p in blobs.read_decrypted(
                services.store, key, opened=opened, object_size=row.object_size
            )
        ]
    )
    assert plain == shown.content


async def test_the_second_request_is_served_from_the_store_and_each_person_audited_once(
    http: httpx.AsyncClient,
    other: httpx.AsyncClient,
    world: World,
    services: Services,
    renders: list[str],
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "scan.pdf", pdf(300, 200))
    await sign_in(http, world["alice"], second_factor=True)
    await sign_in(other, world["sam"], second_factor=True)
    first = await http.get(f"/documents/{doc}/thumbnail?version=1")
    second = await http.get(f"/documents/{doc}/thumbnail?version=1")
    by_staff = await other.get(f"/documents/{doc}/thumbnail")
    assert first.status_code == second.status_code == by_staff.status_code == 200
    assert first.content == second.content == by_staff.content
    assert renders == ["application/pdf"]
    assert len(await stored(services)) == 1

    seen = await events(services, "document.thumbnail_viewed")
    assert sorted(e.actor_id or "" for e in seen) == sorted(
        [str(world["alice"].id), str(world["sam"].id)]
    )
    assert all(e.document_id == doc and '"version":1' in e.details for e in seen)
    history = await other.get(f"/audit/documents/{doc}")
    assert history.status_code == 200
    assert "saw a thumbnail of" in history.text


async def test_another_client_s_document_has_no_thumbnail_for_you(
    http: httpx.AsyncClient, other: httpx.AsyncClient, world: World, services: Services
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "private.png", png(300, 300))
    await sign_in(other, world["bob"], second_factor=True)
    refused = await other.get(f"/documents/{doc}/thumbnail")
    assert refused.status_code == 404
    await sign_in(http, world["otto"], second_factor=True)
    assert (await http.get(f"/documents/{doc}/thumbnail")).status_code == 404
    assert await stored(services) == []
    assert await events(services, "document.thumbnail_viewed") == []
    # Not signed in: the sign-in page, as for any page.
    anonymous = httpx.AsyncClient(transport=other._transport, base_url="http://testserver")
    async with anonymous:
        assert (await anonymous.get(f"/documents/{doc}/thumbnail")).status_code == 303


async def test_types_without_a_thumbnail_answer_404(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    text = await put(http, world, "alice", world.acme_folder, "notes.txt", b"plain words")
    svg = await put(http, world, "alice", world.acme_folder, "logo.svg", b"<svg/>")
    await sign_in(http, world["alice"], second_factor=True)
    for doc in (text, svg):
        assert (await http.get(f"/documents/{doc}/thumbnail")).status_code == 404
    assert (await http.get(f"/documents/{text}/thumbnail?version=7")).status_code == 404
    assert (await http.get(f"/documents/{text}/thumbnail?version=x")).status_code == 404
    assert await stored(services) == []


async def test_a_bomb_or_a_version_past_the_limit_gets_no_thumbnail_and_the_page_still_shows(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    bomb = await put(http, world, "alice", world.acme_folder, "bomb.png", bomb_png())
    big = await put(http, world, "alice", world.acme_folder, "big.png", png(700, 700, noise=True))
    await sign_in(http, world["alice"], second_factor=True)

    assert (await http.get(f"/documents/{big}/thumbnail")).status_code == 404
    assert renders == []  # past the limit: not even read
    for _ in range(2):
        assert (await http.get(f"/documents/{bomb}/thumbnail")).status_code == 404
    assert renders == ["image/png"]  # refused once, remembered
    assert await stored(services) == []
    async with transaction(services.sessions) as session:
        [failed] = (await session.execute(select(Thumbnail))).scalars().all()
    assert failed.storage_key is None and failed.failure

    for doc in (bomb, big):
        page = await http.get(f"/documents/{doc}")
        assert page.status_code == 200
        assert "/thumbnail" not in page.text


async def test_a_type_without_a_preview_shows_its_thumbnail_on_the_page(
    http: httpx.AsyncClient, world: World
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(out, format="TIFF")
    doc = await put(http, world, "alice", world.acme_folder, "drawing.tiff", out.getvalue())
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    assert f'src="/documents/{doc}/thumbnail?version=1"' in page.text
    assert "There is no preview" not in page.text
    shown = await http.get(f"/documents/{doc}/thumbnail?version=1")
    assert picture(shown).size == (256, 192)


async def test_thumbnails_go_with_their_versions_are_rewrapped_and_gc_clears_strays(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "kept.png", png(100, 100))
    await put(http, world, "alice", world.acme_folder, "kept.png", png(120, 60))
    await sign_in(http, world["alice"], second_factor=True)
    for number in (1, 2):
        assert (await http.get(f"/documents/{doc}/thumbnail?version={number}")).status_code == 200
    newest = await http.get(f"/documents/{doc}/thumbnail?version=2")
    assert len(await stored(services)) == 2

    # Retention shreds version 1: its thumbnail goes with it, row and object.
    async with transaction(services.sessions) as session:
        await retention.set_policy(
            session, SYSTEM, TEST_CONTEXT, world.acme, folder_id=None, rules=Rules(keep_versions=1)
        )
    run = await retention.apply(services.sessions, services.store)
    assert [(d.kind, d.version) for d in run.deleted] == [("version", 1)]
    [(key, _)] = await stored(services)
    async with transaction(services.sessions) as session:
        [row] = (await session.execute(select(Thumbnail))).scalars().all()
    assert row.storage_key == key

    # A new KEK: the thumbnail's data key moves to it, and it still decrypts.
    new_id = services.keyring.rotate()
    await maintenance.rewrap_all(services.sessions, services.keyring)
    async with transaction(services.sessions) as session:
        [row] = (await session.execute(select(Thumbnail))).scalars().all()
    assert row.kek_id == new_id
    again = await http.get(f"/documents/{doc}/thumbnail?version=2")
    assert again.content == newest.content
    assert renders == ["image/png", "image/png"]
    rewrapped = [json.loads(e.details) for e in await events(services, "keys.rewrapped")]
    assert {"thumbnails": 1, "kek_id": new_id} in rewrapped

    # An object no row refers to (its row gone while the store was down) is collected.
    async with transaction(services.sessions) as session:
        assert await thumbnails.forget(session, [row.version_id]) == [key]
    collected = await collect_garbage(services.sessions, services.store, grace=timedelta(0))
    assert collected.objects_deleted == 1
    assert await stored(services) == []


async def test_a_damaged_version_is_recorded_and_nothing_of_it_is_drawn(
    http: httpx.AsyncClient, world: World, services: Services, renders: list[str]
) -> None:
    doc = await put(http, world, "alice", world.acme_folder, "damaged.png", png(200, 200))
    async with transaction(services.sessions) as session:
        [version] = (await session.execute(select(Version))).scalars().all()
    raw = bytearray(b"".join([p async for p in services.store.read(version.storage_key)]))
    raw[-40] ^= 1  # inside the last segment's ciphertext
    upload_id = await services.store.create_multipart(version.storage_key)
    etag = await services.store.upload_part(version.storage_key, upload_id, 1, bytes(raw))
    await services.store.complete_multipart(version.storage_key, upload_id, [(1, etag)])

    await sign_in(http, world["alice"], second_factor=True)
    failed = await http.get(f"/documents/{doc}/thumbnail")
    assert failed.status_code == 500
    assert renders == []
    [event] = await events(services, "document.integrity_failed")
    assert event.document_id == doc
    assert await stored(services) == []
    assert await events(services, "document.thumbnail_viewed") == []


async def test_a_preview_too_large_to_embed_shows_the_thumbnail_beside_its_link(
    http: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page embeds previews up to 25 MiB; lowered here, so a small PDF stands for a big one.
    monkeypatch.setattr(document_pages, "EMBED_LIMIT", 100)
    doc = await put(http, world, "alice", world.acme_folder, "large.pdf", pdf(400, 300))
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/documents/{doc}")
    assert "Open the preview in a new tab" in page.text
    assert f'src="/documents/{doc}/thumbnail?version=1"' in page.text
    assert "<iframe" not in page.text
    shown = await http.get(f"/documents/{doc}/thumbnail?version=1")
    assert picture(shown).size == (256, 192)


async def test_the_migration_downgrades_and_upgrades_again(services: Services) -> None:
    async with services.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0019"))
        gone = await conn.run_sync(lambda c: inspect(c).get_table_names())
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        back = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert not {"thumbnails", "thumbnail_views"} & set(gone)
    assert {"thumbnails", "thumbnail_views"} <= set(back)
