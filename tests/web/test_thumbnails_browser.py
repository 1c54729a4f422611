"""A document without a full preview shows its server-drawn thumbnail: in English and in
Persian, at desktop and phone width, the image loaded at its drawn size and nothing axe-core
objects to."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.async_api import Browser

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import PASSWORD, add_person


def tiff() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (800, 600), (29, 78, 216))
    image.paste((245, 158, 11), (0, 0, 400, 300))
    image.save(out, format="TIFF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("lang", "name", "heading"),
    [("en", "site-plan.tiff", "Preview"), ("fa", "نقشه سایت.tiff", "پیش‌نمایش")],
)
async def test_a_tiff_shows_its_thumbnail_on_the_document_page(
    live_app: LiveAppFactory, browser: Browser, lang: str, name: str, heading: str
) -> None:
    live = await live_app(config={"auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192}})
    tenant = await live.provision("Acme", "Inbox")
    client = await add_person(live, "alice@example.test", "client", "Acme")
    async with live.http() as http:
        put = await http.put(
            f"/api/v1/folders/{tenant.folder_id}/files/{name.replace('.', '%2E')}",
            content=tiff(),
            headers=client.auth,
        )
        assert put.status_code == 201, put.text
        document_id = put.json()["document_id"]

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB", bypass_csp=True)
    page = await context.new_page()
    await browser_sign_in(page, live.base_url, client.email, PASSWORD)
    if lang != "en":
        async with page.expect_navigation():
            await page.get_by_label("Language").select_option(lang)
    await page.goto(f"{live.base_url}/documents/{document_id}")
    thumb = page.locator("img.browse-thumb__image")
    await thumb.wait_for()
    assert heading in await page.locator("#preview-heading").inner_text()
    await page.wait_for_function("() => document.querySelector('img.browse-thumb__image').complete")
    drawn = await thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert drawn == [256, 192]
    assert name in (await thumb.get_attribute("alt") or "")
    await look_at(page, f"thumbnail-document-{lang}")
    await context.close()
