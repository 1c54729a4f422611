"""Every page route, found from the app itself, is closed to a browser that has not signed in:
a newly added page cannot forget its access check."""

from __future__ import annotations

import re
import uuid

import httpx
from starlette.routing import Route

from web.pages import routes

PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
# The ways in: they answer anyone.
# A share link's pages answer anyone who holds the link (tests/web/test_share_links.py).
SHARE_GET = {
    "/s/{token}",
    "/s/{token}/content",
    "/s/{token}/files/{document_id}",
    "/s/{token}/download.zip",
}
SHARE_POST = {"/s/{token}/password", "/s/{token}/code", "/s/{token}/code/verify"}
PUBLIC_GET = {"/login", "/reset", "/invite/{token}", "/reset/{token}", *SHARE_GET}
PUBLIC_POST = {
    "/login",
    "/reset",
    "/invite/{token}",
    "/reset/{token}",
    "/language",
    "/s/{token}/uploads/form",
    *SHARE_POST,
}


def page_routes() -> set[tuple[str, str]]:
    found = set()
    for route in routes():
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def concrete(path: str) -> str:
    return PARAM.sub(lambda m: "1" if m.group(2) == "int" else str(uuid.uuid4()), path)


async def test_pages_send_a_stranger_to_sign_in(http: httpx.AsyncClient) -> None:
    gets = sorted(p for m, p in page_routes() if m == "GET" and p not in PUBLIC_GET)
    assert len(gets) >= 3
    for path in gets:
        answer = await http.get(concrete(path))
        assert (answer.status_code, answer.headers.get("location")) == (303, "/login"), path


async def test_a_made_up_share_link_shows_a_stranger_nothing(http: httpx.AsyncClient) -> None:
    for method, path in sorted(page_routes()):
        if path in SHARE_GET | SHARE_POST:
            answer = await http.request(method, concrete(path))
            assert answer.status_code == 404, (method, path)


async def test_forms_do_nothing_for_a_stranger(http: httpx.AsyncClient) -> None:
    posts = sorted(p for m, p in page_routes() if m == "POST" and p not in PUBLIC_POST)
    assert len(posts) >= 3
    for path in posts:
        answer = await http.post(concrete(path), data={"csrf_token": "x", "name": "x"})
        # Sign-in first, or a refusal; never a page that did something.
        assert answer.status_code in (303, 403, 415), (path, answer.status_code)
        if answer.status_code == 303:
            assert answer.headers["location"] == "/login", path
