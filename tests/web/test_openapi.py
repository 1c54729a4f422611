"""`/api/v1/openapi.json` describes exactly the routes the app serves, so it cannot drift."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from tests.fixtures.app import World
from web.api import routes
from web.app import create_app
from web.settings import Settings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PLACEHOLDER = re.compile(r"\{(\w+)(?::\w+)?\}")


def openapi_path(starlette_path: str) -> str:
    """`/folders/{folder_id}/files/{name:path}` -> `/folders/{folder_id}/files/{name}`."""
    return PLACEHOLDER.sub(r"{\1}", starlette_path)


def inventory(api_routes: list[Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in api_routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        methods = route.methods or set()
        for method in methods:
            # Starlette adds HEAD to every GET route; a HEAD of its own (tus) is documented.
            if method != "HEAD" or "GET" not in methods:
                found.add((method.lower(), openapi_path(route.path)))
    return found


def documented(spec: dict[str, Any], *, public: bool = False) -> set[tuple[str, str]]:
    """The API's operations, or (`public`) those of the paths served outside /api/v1 (the
    visitor's side of links), which name their own server."""
    return {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS and ("servers" in item) == public
    }


@pytest.fixture
async def spec(tmp_path: Path) -> dict[str, Any]:
    """The document as served; it needs no database, so the app runs without its lifespan."""
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    assert isinstance(spec["paths"], dict) and spec["paths"]
    assert spec["servers"] == [{"url": "/api/v1"}]
    schemes = spec["components"]["securitySchemes"]
    for requirement in spec["security"]:
        assert set(requirement) <= set(schemes)
    for path, item in spec["paths"].items():
        assert path.startswith("/"), path
        assert set(item) <= METHODS | {"parameters", "summary", "description", "servers"}, path
        assert item.get("servers", [{"url": "/"}]) == [{"url": "/"}], path
        placeholders = set(PLACEHOLDER.findall(path))
        for method, operation in item.items():
            if method == "servers":
                continue
            where = f"{method.upper()} {path}"
            assert operation["summary"], where
            assert operation["responses"], where
            for status in operation["responses"]:
                assert re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", status), where
            params = operation.get("parameters", [])
            in_path = {p["name"] for p in params if p["in"] == "path"}
            # Every template variable is declared as a required path parameter, and only those.
            assert in_path == placeholders, where
            assert all(p["required"] for p in params if p["in"] == "path"), where
            assert all(p["in"] in {"path", "query", "header", "cookie"} for p in params), where
            names = [(p["name"], p["in"]) for p in params]
            assert len(names) == len(set(names)), where


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert refs
    for ref in refs:
        assert _resolve(spec, ref) is not None


def test_paths_equal_the_route_inventory(spec: dict[str, Any], tmp_path: Path) -> None:
    assert documented(spec) == inventory(routes())
    # And the app serves exactly those routes under the documented server URL.
    app = create_app(Settings(data_dir=tmp_path))
    [mount] = [
        r for r in app.routes if isinstance(r, Mount) and r.path == spec["servers"][0]["url"]
    ]
    assert inventory(list(mount.routes)) == documented(spec)


async def test_only_the_document_itself_is_public(http: httpx.AsyncClient, world: World) -> None:
    """What the document says about authentication is what the routes do."""
    spec = (await http.get("/api/v1/openapi.json")).json()
    ids = {name: str(uuid.uuid4()) for name in ("client_id", "folder_id", "document_id")}
    ids["name"] = "x.txt"
    bodies = {
        ("post", "/clients"): {"name": "Nobody"},
        ("post", "/folders"): {"client_id": str(world.acme), "name": "Nobody"},
    }
    for method, path in sorted(documented(spec)):
        operation = spec["paths"][path][method]
        public = operation.get("security", spec["security"]) == []
        values = {name: ids.get(name, str(uuid.uuid4())) for name in PLACEHOLDER.findall(path)}
        url = "/api/v1" + path.format(**values)
        response = await http.request(method.upper(), url, json=bodies.get((method, path)))
        where = f"{method.upper()} {path}"
        if public:
            # The ways in (sign-in, reset, invitation) answer the empty body on its merits.
            assert response.status_code != 401, where
            assert response.status_code < 500, where
        else:
            assert response.status_code == 401, f"{where}: {response.status_code}"
            assert response.headers["www-authenticate"].lower().startswith("bearer"), where


def test_tus_bodies_document_checksums_and_their_mismatch_status(spec: dict[str, Any]) -> None:
    for method in ("post", "patch"):
        path = "/uploads" if method == "post" else "/uploads/{upload_id}"
        operation = spec["paths"][path][method]
        assert "460" in operation["responses"], method
        headers = {p["name"]: p["required"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers["Upload-Checksum"] is False
        assert headers["Tus-Resumable"] is True
    assert "creation-with-upload" in spec["paths"]["/uploads"]["options"]["summary"]


def test_every_operation_has_its_own_id(spec: dict[str, Any]) -> None:
    ids = [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids)) == len(documented(spec)) + len(documented(spec, public=True))
    assert all(re.fullmatch(r"[a-z][a-z_]*", op_id) for op_id in ids), ids
    assert spec["paths"]["/me/tokens"]["post"]["operationId"] == "create_token"


async def test_security_says_where_a_token_is_refused(
    http: httpx.AsyncClient, world: World
) -> None:
    """Operations declared for the session cookie only refuse a valid Bearer token; the
    others take it."""
    spec = (await http.get("/api/v1/openapi.json")).json()
    session_only = {
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS and operation.get("security", spec["security"]) == [{"session": []}]
    }
    assert ("post", "/me/tokens") in session_only and ("get", "/me") not in session_only
    for method, path in sorted(session_only):
        url = "/api/v1" + path.format(handle="x", token_id=str(uuid.uuid4()))
        response = await http.request(method.upper(), url, headers=world["ada"].auth, json={})
        where = f"{method.upper()} {path}"
        # 403 from account management; the browser's own session is missing (404) or has
        # no second factor waiting (409) when a token is sent.
        assert response.status_code in (403, 404, 409), f"{where}: {response.status_code}"
        assert str(response.status_code) in spec["paths"][path][method]["responses"], where
    me = await http.get("/api/v1/me", headers=world["ada"].auth)
    assert me.status_code == 200


def test_links_are_described_with_their_url_limits_and_public_side(
    spec: dict[str, Any], tmp_path: Path
) -> None:
    schemas = spec["components"]["schemas"]
    link = schemas["Link"]["properties"]
    for field in ("url", "max_file_bytes", "max_files", "max_total_bytes"):
        assert field in link, field
    for field in ("files_received", "bytes_received", "downloads"):
        assert field in link and field in schemas["Link"]["required"], field
    # The URL (with its token) is in the answer that creates the link, and only there.
    assert "url" not in schemas["Link"]["required"]
    assert "url" in schemas["CreatedLink"]["required"]
    for path in ("/documents/{document_id}/links", "/folders/{folder_id}/links"):
        created = spec["paths"][path]["post"]["responses"]["201"]["content"]
        assert created["application/json"]["schema"]["$ref"].endswith("/CreatedLink")

    public = documented(spec, public=True)
    assert {
        ("get", "/s/{token}"),
        ("get", "/s/{token}/content"),
        ("post", "/s/{token}/uploads"),
    } <= public
    content = spec["paths"]["/s/{token}/content"]["get"]
    params = {(p["name"], p["in"]) for p in content["parameters"]}
    assert {("Range", "header"), ("cv_link", "cookie"), ("token", "path")} <= params
    assert {"200", "206", "303", "404"} <= set(content["responses"])
    assert "content" not in content["responses"]["206"]  # bytes, not a JSON object
    create = spec["paths"]["/s/{token}/uploads"]["post"]
    metadata = next(p for p in create["parameters"] if p["name"] == "Upload-Metadata")
    for key in ("filename", "uploader_name", "uploader_email"):
        assert key in metadata["description"], key
    assert {"201", "404", "413", "422"} <= set(create["responses"])
    for path, item in spec["paths"].items():
        if "servers" in item:
            assert all(op.get("security") == [] for m, op in item.items() if m in METHODS), path
    # Every public operation described is one the app serves at that address.
    app = create_app(Settings(data_dir=tmp_path))
    served = inventory([r for r in app.routes if isinstance(r, Route) and r.path.startswith("/s/")])
    assert public <= served
