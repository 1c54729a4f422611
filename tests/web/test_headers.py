"""Security headers on every kind of response, and errors that never leak internals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from tests.fixtures.app import World
from tests.fixtures.pages import csp_directives
from tests.fixtures.routes import concrete, route_inventory
from vault import folders as folder_service
from vault.models import Client
from web.app import create_app
from web.settings import Settings

API = "/api/v1"
PROBLEM = "application/problem+json"
SECRET = "db password is hunter2 at /srv/clientvault/secret.py line 42"


def assert_secure_headers(response: httpx.Response, where: str, *, download: bool = False) -> None:
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    permissions = headers.get("permissions-policy", "")
    assert "camera=()" in permissions and "geolocation=()" in permissions, where
    assert headers.get("x-frame-options") == "DENY", where
    csp_headers = headers.get_list("content-security-policy")
    assert len(csp_headers) == 1, f"{where}: {csp_headers}"
    csp = csp_directives(csp_headers[0])
    assert csp.get("frame-ancestors") == ["'none'"], f"{where}: {csp_headers[0]}"
    assert csp.get("default-src") == ["'none'"], f"{where}: {csp_headers[0]}"
    # Scripts fall back to default-src when script-src is absent; neither may allow inline.
    for directive in ("default-src", "script-src"):
        assert "'unsafe-inline'" not in csp.get(directive, []), f"{where}: {directive}"
        assert "'unsafe-eval'" not in csp.get(directive, []), f"{where}: {directive}"
    if download:
        assert "sandbox" in csp, where
    else:
        assert "'unsafe-inline'" not in csp_headers[0], where


async def test_every_response_carries_security_headers(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"].auth
    upload = await http.put(
        f"{API}/folders/{world.acme_folder}/files/page.html",
        content=b"<script>alert(1)</script>",
        headers=alice,
    )
    assert upload.status_code == 201
    document = upload.json()["document_id"]
    samples: list[tuple[str, httpx.Response, int]] = [
        ("healthz", await http.get("/healthz"), 200),
        ("readyz", await http.get("/readyz"), 200),
        ("openapi", await http.get(f"{API}/openapi.json"), 200),
        ("api json", await http.get(f"{API}/me", headers=alice), 200),
        ("created", upload, 201),
        ("api 404", await http.get(f"{API}/documents/{world.acme}", headers=alice), 404),
        ("router 404", await http.get(f"{API}/no/such/thing"), 404),
        ("405", await http.post("/healthz"), 405),
        ("401", await http.get(f"{API}/me"), 401),
        ("403", await http.delete(f"{API}/documents/{document}", headers=alice), 403),
        ("422", await http.post(f"{API}/clients", json={}, headers=world["ada"].auth), 422),
        ("204", await http.delete(f"{API}/documents/{document}", headers=world["sam"].auth), 204),
    ]
    for where, response, status in samples:
        assert response.status_code == status, where
        assert_secure_headers(response, where)
        if status >= 400:
            assert response.headers["content-type"].startswith(PROBLEM), where
            assert "no-store" in response.headers["cache-control"], where

    # Downloads, in every shape: full, partial, not modified, unsatisfiable.
    again = await http.put(
        f"{API}/folders/{world.acme_folder}/files/page.html", content=b"<b>hi</b>", headers=alice
    )
    content = f"{API}/documents/{again.json()['document_id']}/content"
    etag = (await http.get(content, headers=alice)).headers["etag"]
    downloads: list[tuple[str, httpx.Response, int]] = [
        ("download", await http.get(content, headers=alice), 200),
        ("206", await http.get(content, headers={**alice, "Range": "bytes=0-1"}), 206),
        ("304", await http.get(content, headers={**alice, "If-None-Match": etag}), 304),
        ("416", await http.get(content, headers={**alice, "Range": "bytes=999-"}), 416),
    ]
    for where, response, status in downloads:
        assert response.status_code == status, where
        assert_secure_headers(response, where, download=True)
        assert "no-store" in response.headers["cache-control"], where
        assert response.headers["content-disposition"].startswith("attachment;"), where


@pytest.fixture
async def lenient_http(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the app's 500 response instead of the re-raised exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_unexpected_error_is_a_bare_problem(
    lenient_http: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> list[Client]:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(folder_service, "list_clients", broken)
    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = await lenient_http.get(f"{API}/clients", headers=world["alice"].auth)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal server error",
        "status": 500,
    }
    for leak in ("hunter2", "secret.py", "RuntimeError", "Traceback", 'File "'):
        assert leak not in response.text
    # The detail goes to the log instead, for the operator.
    assert any(r.exc_info and str(r.exc_info[1]) == SECRET for r in caplog.records)
    # The app carries on after it.
    monkeypatch.undo()
    assert (
        await lenient_http.get(f"{API}/clients", headers=world["alice"].auth)
    ).status_code == 200


async def test_unexpected_error_carries_security_headers(tmp_path: Path) -> None:
    # Without its lifespan the app has no services, so /readyz fails unexpectedly: a 500
    # that needs no database.
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/readyz")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM)
    assert_secure_headers(response, "500")


async def test_every_signed_in_api_response_is_no_store(
    http: httpx.AsyncClient, world: World
) -> None:
    """Review item 14: no cache may keep what a signed-in caller was shown. Every API route,
    whatever it answers, with real ids where the route reads one."""
    ada = world["ada"].auth
    upload = await http.put(
        f"{API}/folders/{world.acme_folder}/files/cached.txt", content=b"x", headers=ada
    )
    document = upload.json()["document_id"]
    real = {
        "{client_id}": str(world.acme),
        "{folder_id}": str(world.acme_folder),
        "{document_id}": document,
    }
    seen = 0
    for method, path in sorted(route_inventory()):
        if method == "DELETE" and path == "/session":
            continue
        for param, value in real.items():
            path = path.replace(param, value)
        response = await http.request(
            method,
            API + concrete(path),
            headers={**ada, "Tus-Resumable": "1.0.0"},
            content=b"{}" if method in ("POST", "PUT", "PATCH") else None,
        )
        cache = response.headers.get("cache-control", "")
        assert "no-store" in cache, f"{method} {path} -> {response.status_code}: {cache!r}"
        seen += 1
    assert seen > 40
    for path in ("/me", "/clients", f"/documents/{document}", "/requests"):
        response = await http.get(API + path, headers=ada)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path


async def test_static_assets_stay_cacheable(http: httpx.AsyncClient) -> None:
    listed = await http.get("/signin")
    assert "no-store" in listed.headers["cache-control"]
    css = await http.get("/static/style.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("cache-control", "")
