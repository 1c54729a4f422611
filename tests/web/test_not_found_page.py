"""A path that matches no route: browsers get the styled page, machines keep problem+json."""

from __future__ import annotations

import httpx

from tests.fixtures.app import World
from web.pages.render import PAGE_CSP


async def test_unknown_path_is_the_styled_page_with_the_signed_in_navigation(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"]
    signed_in = await http.post("/login", data={"email": alice.email, "password": alice.password})
    assert signed_in.status_code == 303, signed_in.text

    response = await http.get("/no/such/page")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<h1>Not found</h1>" in response.text
    assert 'action="/logout"' in response.text  # the navigation of a signed-in page
    assert 'href="/account"' in response.text


async def test_unknown_path_without_a_session_is_the_page_without_navigation(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/no/such/page", headers={"Accept-Language": "fa"})

    assert response.status_code == 404
    assert 'dir="rtl"' in response.text
    assert 'action="/logout"' not in response.text


async def test_unknown_api_and_static_paths_keep_problem_json(http: httpx.AsyncClient) -> None:
    for path in ("/api/v1/no-such-thing", "/static/no-such-file.css"):
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json", path


async def test_the_favicon_is_served(http: httpx.AsyncClient) -> None:
    legacy = await http.get("/favicon.ico")
    assert legacy.status_code == 301
    icon = await http.get(legacy.headers["location"])
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    page = await http.get("/login")
    assert '<link rel="icon" href="/static/favicon.svg"' in page.text
