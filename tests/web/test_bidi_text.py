"""User-typed text keeps its own direction on right-to-left pages.

"2025 year-end tax documents" in a Persian page must read as typed, not as "year-end tax
documents 2025"; "1099-NEC forms" not as "NEC forms-1099"; a message's full stop stays at its
end. The check is on what Chromium lays out: the on-screen position of each piece of the text
(`Range.getClientRects`), not on the markup. Chromium is served by the app in process: every
request the page makes is answered through the signed-in test client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, Route
from sqlmodel import select
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.browser import DESKTOP, look_at
from vault.db import transaction
from vault.models import User
from web.services import Services

API = "/api/v1"
TITLE = "2025 year-end tax documents"
ITEM = "1099-NEC forms"
MESSAGE = "Please upload them by Friday."

# Where each fragment of `text` is drawn: the left edge of its first box, in CSS pixels.
LEFT_OF = """([selector, text, fragments]) => {
  const element = [...document.querySelectorAll(selector)]
    .find(e => e.textContent.includes(text));
  if (!element) return null;
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode()) && !node.data.includes(text)) {}
  if (!node) return null;
  const start = node.data.indexOf(text);
  const out = {};
  for (const fragment of fragments) {
    const range = document.createRange();
    const at = start + text.indexOf(fragment);
    range.setStart(node, at);
    range.setEnd(node, at + fragment.length);
    out[fragment] = range.getClientRects()[0].left;
  }
  return out;
}"""


@pytest.fixture
async def signed_in(http: httpx.AsyncClient, world: World, services: Services) -> httpx.AsyncClient:
    async with transaction(services.sessions) as session:
        user = (
            await session.execute(select(User).where(User.id == world["alice"].id))
        ).scalar_one()
        user.locale = "fa"
    alice = world["alice"]
    response = await http.post("/login", data={"email": alice.email, "password": alice.password})
    assert response.status_code == 303, response.text
    return http


@pytest.fixture
async def page(browser: Browser, signed_in: httpx.AsyncClient) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport=DESKTOP)

    async def through_the_app(route: Route) -> None:
        request = route.request
        answer = await signed_in.request(
            request.method,
            request.url,
            headers={k: v for k, v in request.headers.items() if k.lower() != "cookie"},
            content=request.post_data_buffer,
        )
        await route.fulfill(
            status=answer.status_code, headers=dict(answer.headers), body=answer.content
        )

    await context.route("http://testserver/**", through_the_app)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def left_of(page: Page, selector: str, text: str, *fragments: str) -> dict[str, float]:
    found = await page.evaluate(LEFT_OF, [selector, text, list(fragments)])
    assert found is not None, f"{text!r} is not in {selector}"
    return {str(k): float(v) for k, v in found.items()}


async def test_english_text_reads_as_typed_on_a_persian_request_page(
    page: Page, app: ASGIApp, world: World
) -> None:
    # Staff ask through the API; the client reads the request in Persian.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as staff:
        created = await staff.post(
            f"{API}/clients/{world.acme}/requests",
            json={
                "title": TITLE,
                "due_date": (datetime.now(UTC).date() + timedelta(days=14)).isoformat(),
                "folder_id": str(world.acme_folder),
                "items": [ITEM],
                "message": MESSAGE,
            },
            headers=world["sam"].auth,
        )
    assert created.status_code == 201, created.text
    await page.goto(f"http://testserver/requests/{created.json()['id']}")
    assert await page.get_attribute("html", "dir") == "rtl"

    title = await left_of(page, "h1", TITLE, "2025", "documents")
    assert title["2025"] < title["documents"], title
    item = await left_of(page, "h3", ITEM, "1099", "NEC", "forms")
    assert item["1099"] < item["NEC"] < item["forms"], item
    # Inside a translated sentence too ("a file for «1099-NEC forms»").
    label = await left_of(page, "label", ITEM, "1099", "NEC", "forms")
    assert label["1099"] < label["NEC"] < label["forms"], label
    message = await left_of(page, ".request-message", MESSAGE, "Please", "Friday.")
    assert message["Please"] < message["Friday."], message
    # Counts in a sentence are in Persian digits, as dates and sizes are.
    progress = await page.inner_text("main")
    assert "۰ از ۱" in progress, progress
    await look_at(page, "bidi-request-fa")
