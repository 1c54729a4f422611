"""A folder with a PNG, a PDF and a CSV in Chromium against a live server whose thumbnail
worker drew them ahead: the listing shows the two thumbnails (loaded, at the size set in the
markup) and the CSV's icon, with no console error, no failed request and no error answer, in
English and in Persian, at desktop and phone width (`look_at`, axe-core on). Screenshots go
to `$CLIENTVAULT_TEST_ARTIFACTS` as `thumbnails-listing-*.png`."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response

from tests.fixtures.browser import DESKTOP, browser_sign_in, look_at
from tests.fixtures.live import LiveAppFactory
from tests.fixtures.portal import PASSWORD, add_person
from tests.fixtures.thumbnails import pdf, png

FILES = {
    "site-photo.png": png(640, 480),
    "engagement-letter.pdf": pdf(400, 560),
    "ledger.csv": b"date,amount\n2026-01-02,10.00\n",
}
LOADED: dict[str, Any] = {"wait_until": "load", "timeout": 60_000}


def strict_watch(page: Page, problems: list[str]) -> None:
    """Every console error, failed request and error answer the page meets."""

    def on_console(entry: ConsoleMessage) -> None:
        if entry.type == "error":
            problems.append(f"console: {entry.text}")

    def on_failed(request: Request) -> None:
        problems.append(f"failed: {request.url} {request.failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)


async def test_a_folder_lists_drawn_thumbnails_without_a_failed_request(
    live_app: LiveAppFactory, browser: Browser
) -> None:
    live = await live_app(
        config={
            "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 8192},
            "previews": {"worker_interval_seconds": 0.2},
        }
    )
    tenant = await live.provision("Acme", "Inbox")
    client = await add_person(live, "alice@example.test", "client", "Acme")
    ids: dict[str, str] = {}
    async with live.http() as http:
        for name, data in FILES.items():
            put = await http.put(
                f"/api/v1/folders/{tenant.folder_id}/files/{name}",
                content=data,
                headers=client.auth,
            )
            assert put.status_code == 201, put.text
            ids[name] = put.json()["document_id"]

    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    strict_watch(page, problems)
    await browser_sign_in(page, live.base_url, client.email, PASSWORD)
    folder_url = f"{live.base_url}/folders/{tenant.folder_id}"
    # The worker draws within moments of the upload; until then the icons show.
    for _ in range(150):
        await page.goto(folder_url, **LOADED)
        if await page.locator("img.ficon-thumb").count() == 2:
            break
        await page.wait_for_timeout(200)
    for lang in ("en", "fa"):
        if lang != "en":
            await page.goto(f"{live.base_url}/", **LOADED)
            async with page.expect_navigation():
                await page.get_by_label("Language").select_option(lang)
            await page.goto(folder_url, **LOADED)
        assert await page.get_attribute("html", "dir") == ("rtl" if lang == "fa" else "ltr")
        images = page.locator("img.ficon-thumb")
        assert await images.count() == 2
        await page.wait_for_function(
            "() => [...document.querySelectorAll('img.ficon-thumb')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        for name in ("site-photo.png", "engagement-letter.pdf"):
            row = page.locator(f'a[href="/documents/{ids[name]}"]')
            image = row.locator("img.ficon-thumb")
            assert await image.get_attribute("alt") == ""  # the link's text names the file
            assert await image.get_attribute("loading") == "lazy"
            assert (await image.get_attribute("width"), await image.get_attribute("height")) == (
                "28",
                "28",
            )
            drawn = await image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert max(drawn) == 256
            assert await row.locator("svg.ficon").count() == 0
        csv = page.locator(f'a[href="/documents/{ids["ledger.csv"]}"]')
        assert await csv.locator("img").count() == 0
        assert await csv.locator("svg.ficon").count() == 1
        await look_at(page, f"thumbnails-listing-{lang}")
        box = await page.locator("img.ficon-thumb").first.bounding_box()
        assert box is not None and round(box["width"]) == 28 and round(box["height"]) == 28
    assert problems == []
    await context.close()
