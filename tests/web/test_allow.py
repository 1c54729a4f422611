"""Every 405 lists in `Allow` exactly the methods its path answers (RFC 9110 §15.5.6): one
route per path, and the methods of every template that matches the path."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
from starlette.convertors import IntegerConvertor
from starlette.routing import BaseRoute, Mount, Route

from web.app import create_app
from web.settings import Settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix, route


def concrete(prefix: str, route: Route) -> str:
    """The route's path with every parameter filled in by a value its convertor takes."""
    values = {
        name: 1 if isinstance(convertor, IntegerConvertor) else f"x-{name}"
        for name, convertor in route.param_convertors.items()
    }
    return prefix + route.url_path_for(route.name, **values)


def answering(routes: list[tuple[str, Route]], url: str) -> set[str]:
    """The methods of every route whose template matches `url` (two may: a tus upload id
    and a fixed word after the same prefix)."""
    found: set[str] = set()
    for prefix, route in routes:
        if url.startswith(prefix) and route.path_regex.fullmatch(url[len(prefix) :]):
            found |= route.methods or set()
    return found


async def test_every_405_lists_every_method_of_its_path(tmp_path: Path) -> None:
    # The router answers 405 before any endpoint runs: no lifespan, no database.
    app = create_app(Settings(data_dir=tmp_path))
    seen: set[str] = set()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        routes = list(walk(app.routes))
        for prefix, route in routes:
            path = prefix + route.path
            assert path not in seen, f"{path} has more than one route"
            seen.add(path)
            url = concrete(prefix, route)
            supported = answering(routes, url)
            for method in METHODS:
                if method in supported:
                    continue
                answer = await http.request(method, url)
                assert answer.status_code == 405, (method, path, answer.status_code)
                allow = {m.strip() for m in answer.headers["allow"].split(",")}
                assert allow == supported, (method, path, allow)
    assert "/api/v1/session" in seen and "/api/v1/uploads/{upload_id}" in seen
