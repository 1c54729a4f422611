"""The account page speaks to people, not developers: sessions by browser and system, time
zones by city, recovery codes to download or print, and no tokens for client users unless
the firm offers them."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.pages import csrf_of, enrol
from tests.fixtures.session_api import csrf
from tests.fixtures.signin import sign_in
from vault import accounts
from vault.db import transaction
from vault.models import User
from web.services import Services

CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
API = "/api/v1"


async def test_sessions_are_named_by_browser_and_system_and_how_long_ago(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    http.headers["User-Agent"] = CHROME_ON_LINUX
    await sign_in(http, alice)
    page = (await http.get("/account")).text
    assert "Chrome on Linux" in page
    assert f'title="{CHROME_ON_LINUX}"' in page  # the whole header, for whoever wants it
    assert re.search(r"last active (\d+ seconds? ago|0 seconds ago|in 0 seconds|now)", page), page


async def test_time_zones_are_offered_by_city_in_the_page_language(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    await sign_in(http, world["alice"])
    english = (await http.get("/account")).text
    assert '<option value="Europe/Berlin">Berlin</option>' in english
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["alice"].id)
        assert user is not None
        user.locale = "fa"
    persian = (await http.get("/account")).text
    assert '<option value="Europe/Berlin">برلین</option>' in persian
    assert '<option value="Asia/Tehran">تهران</option>' in persian


async def test_recovery_codes_can_be_downloaded_as_text_and_printed(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    await sign_in(http, alice)
    await enrol(http, password=alice.password)
    token = csrf_of((await http.get("/account")).text)
    made = await http.post(
        "/account/recovery-codes", data={"csrf_token": token, "password": alice.password}
    )
    assert made.status_code == 200
    codes = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", made.text)
    link = re.search(
        r'href="data:text/plain;charset=utf-8,([^"]+)" download="clientvault-recovery-codes.txt"',
        made.text,
    )
    assert link is not None
    text = unquote(link.group(1))
    assert text.splitlines()[2:] == codes  # a title line, a blank line, then every code
    assert "data-print" in made.text


async def test_client_users_get_no_tokens_unless_the_firm_offers_them(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice, sam = world["alice"], world["sam"]
    await sign_in(http, alice)
    page = (await http.get("/account")).text
    # No form to make one; the token she was given before stays listed, to revoke.
    assert 'action="/account/tokens" class="form"' not in page
    assert 'action="/account/tokens/' in page
    refused = await http.post(
        "/account/tokens",
        data={
            "csrf_token": csrf_of(page),
            "name": "x",
            "scope": "read",
            "days": "30",
            "password": alice.password,
        },
    )
    assert refused.status_code == 404
    # Nor through the API from a browser session: it answers as for anything not there.
    session = (await sign_in(http, alice, api=True)).json()
    minted = await http.post(
        f"{API}/me/tokens",
        json={"name": "x", "password": alice.password},
        headers=csrf(session["csrf_token"]),
    )
    assert minted.status_code == 404, minted.text

    # Staff keep them, whatever the setting.
    async with transaction(services.sessions) as db:
        staff = await db.get(User, sam.id)
        assert staff is not None
        _, secret = await accounts.create_token(
            db, TEST_CONTEXT, staff, name="ci", clients_allowed=False
        )
    assert (await http.get(f"{API}/me", headers={"Authorization": f"Bearer {secret}"})).is_success
