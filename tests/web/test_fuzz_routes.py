"""No input makes the app answer 5xx (issue 13, item 9): every route of the app, found from
its own router, gets arbitrary query strings, headers, path parameters and bodies, as a
stranger, with a Bearer token, and as a signed-in browser (session cookie and CSRF token).

Hypothesis draws the inputs with a fixed seed and a bounded number of examples per route,
so a run is repeatable and takes about a minute on SQLite. One app, one world and one
signed-in browser serve every route, on purpose: what earlier requests left behind (new
folders, documents, versions) is more input.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as fuzzing
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Mount, Route

from tests.fixtures.app import make_world
from tests.fixtures.signin import sign_in
from vault.crypto.keyring import KeyFile
from web.app import create_app
from web.services import open_services
from web.settings import AuthSettings, DatabaseSettings, Settings, StorageSettings

pytestmark = pytest.mark.fuzz

API = "/api/v1"
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# Calls that would end the browser session under test; fuzzing them is the same as any other
# state-changing call, but the rest of the run needs the session.
SIGN_OUT = {("DELETE", f"{API}/session"), ("POST", "/logout")}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /api/v1/documents/{document_id}


def inventory(routes: Sequence[BaseRoute], prefix: str = "") -> list[Endpoint]:
    """Every (method, template) of the router; HEAD only where GET does not imply it."""
    found: list[Endpoint] = []
    for route in routes:
        if isinstance(route, Mount):
            found += inventory(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")
            found += [Endpoint(m, prefix + route.path) for m in sorted(methods)]
    return found


# --- strategies -----------------------------------------------------------------------------

# Parameter names the routes read, so that drawn values reach the parsers behind them.
QUERY_NAMES = [
    "version", "limit", "cursor", "since", "until", "client_id", "actor", "action",
    "document_id", "format", "disposition", "done", "q", "next", "lang", "page", "sort",
]  # fmt: skip
BODY_NAMES = [
    "email", "password", "code", "name", "client_id", "folder_id", "parent_id", "title",
    "items", "due_date", "message", "token", "new_password", "current_password", "role",
    "client_ids", "days", "scope", "cadence", "language", "csrf_token", "display_name",
]  # fmt: skip
HEADER_NAMES = [
    "Range", "If-None-Match", "If-Range", "Upload-Length", "Upload-Offset", "Upload-Metadata",
    "Upload-Defer-Length", "Tus-Resumable", "Accept-Language", "Origin", "Sec-Fetch-Site",
    "Content-Type", "Authorization", "X-CSRF-Token", "Accept",
]  # fmt: skip
NASTY = [
    "", "0", "-1", "²", "١", "１", str(2**63), str(2**70), "9" * 5000, "1e309", "NaN",
    "\x00", "../", "%", "%00", "..", "null", "[]", "{}", "\u202e", "a" * 300,
    "2026-13-45T99:99:99Z", "bytes=0-", "bytes=-0", "bytes=5-1", "*",
]  # fmt: skip
# Well-formed values too, so that a request gets past one check to the parsers behind it.
PLAUSIBLE = ["1", "2", "10", "csv", "jsonl", "inline", "attachment", "fa", "document.*"]


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


# Header values travel as Latin-1 (RFC 9110 §5.5): "²" is byte 0xB2 and gets through.
LATIN1 = st.characters(codec="latin-1", categories=("L", "N", "P", "S", "Zs"))
header_values = st.one_of(
    st.sampled_from([v for v in NASTY + PLAUSIBLE if _latin1(v)]), st.text(LATIN1, max_size=40)
)
texts = st.one_of(st.sampled_from(NASTY), st.sampled_from(PLAUSIBLE), st.text(max_size=30))
# JSON may carry lone surrogates as escapes; the body encoder below writes them that way.
json_strings = st.one_of(texts, st.sampled_from(["\ud800", "x\udfffy", "\udc00@example.test"]))
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
    json_strings,
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(BODY_NAMES), texts), inner, max_size=4),
    ),
    max_leaves=12,
)
# Each known name independently present or not, each with its own value.
json_objects = st.fixed_dictionaries({}, optional=dict.fromkeys(BODY_NAMES, json_values))
raw_json = st.sampled_from(
    [b"[" * 30_000 + b"]" * 30_000, b'{"name": ' + b"9" * 5000 + b"}", b"{", b"\xff", b""]
)


@dataclass(frozen=True)
class Draw:
    """The parts of one request that hypothesis chose."""

    path_values: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: tuple[str, Any]  # (kind, value): none, json, raw-json, form, bytes


bodies = st.one_of(
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("json"), st.one_of(json_objects, json_values)),
    st.tuples(st.just("raw-json"), raw_json),
    st.tuples(
        st.just("form"), st.fixed_dictionaries({}, optional=dict.fromkeys(BODY_NAMES, texts))
    ),
    st.tuples(st.just("bytes"), st.binary(max_size=200)),
)


def draws(names: list[str], known: dict[str, str]) -> st.SearchStrategy[Draw]:
    def value_for(name: str) -> st.SearchStrategy[str]:
        real = [known[name]] if name in known else []
        return st.one_of(
            st.sampled_from([*real, str(uuid.uuid4())]),
            # A URL path is UTF-8: a lone surrogate cannot be sent at all (the client fails).
            st.text(
                st.characters(exclude_characters="/?#", exclude_categories=["Cs"]),
                min_size=1,
                max_size=20,
            ),
            st.sampled_from([n for n in NASTY if n and "/" not in n]),
        )

    return st.builds(
        Draw,
        path_values=st.fixed_dictionaries({n: value_for(n) for n in names}),
        query=st.fixed_dictionaries({}, optional=dict.fromkeys(QUERY_NAMES, texts)).map(
            lambda q: list(q.items())
        ),
        headers=st.fixed_dictionaries({}, optional=dict.fromkeys(HEADER_NAMES, header_values)),
        body=bodies,
    )


# --- the run --------------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    client: httpx.AsyncClient
    headers: dict[str, str]
    csrf: str = ""


def build_request(caller: Caller, endpoint: Endpoint, draw: Draw) -> httpx.Request:
    path = PARAM.sub(lambda m: quote(draw.path_values[m.group(1)], safe=""), endpoint.path)
    url = path + ("?" + urlencode(draw.query) if draw.query else "")
    headers = {k: v for k, v in draw.headers.items() if not (caller.csrf and k == "X-CSRF-Token")}
    if caller.name == "bearer":
        headers.pop("Authorization", None)
    headers.update(caller.headers)
    kind, value = draw.body
    content: bytes | None = None
    if kind == "json":
        content = json.dumps(value).encode()  # ensure_ascii: surrogates as \\u escapes
        headers.setdefault("Content-Type", "application/json")
    elif kind == "raw-json":
        content = value
        headers.setdefault("Content-Type", "application/json")
    elif kind == "form":
        fields = {**value, "csrf_token": caller.csrf} if caller.csrf else value
        content = urlencode(fields).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif kind == "bytes":
        content = value
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return caller.client.build_request(endpoint.method, url, headers=raw_headers, content=content)


ENDPOINTS = inventory(create_app(Settings()).routes)
EXAMPLES_PER_ROUTE = 8


def test_the_inventory_holds_the_api_and_the_pages() -> None:
    paths = {e.path for e in ENDPOINTS}
    assert {f"{API}/documents/{{document_id}}/content", "/folders/{folder_id}", "/login"} <= paths
    assert len(ENDPOINTS) > 80


@dataclass
class Portal:
    callers: list[Caller]
    known: dict[str, str]


@pytest.fixture(scope="module")
async def portal(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Portal]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copyfile(sqlite_template, root / "clientvault.db")
    (root / "data").mkdir(mode=0o700)
    KeyFile.create(root / "data" / "keys.json")
    config = Settings(
        data_dir=root / "data",
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{root / 'clientvault.db'}"),
        storage=StorageSettings(backend="local", part_size_mib=5),
        auth=AuthSettings(argon2_time_cost=1, argon2_memory_kib=8192),
    )
    async with open_services(config) as services:
        world = await make_world(services)
    async with LifespanManager(create_app(config)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        base = "http://testserver"
        async with (
            httpx.AsyncClient(transport=transport, base_url=base) as stranger,
            httpx.AsyncClient(transport=transport, base_url=base) as scripted,
            httpx.AsyncClient(transport=transport, base_url=base) as browser,
        ):
            alice = world["alice"]
            upload = await scripted.put(
                f"{API}/folders/{world.acme_folder}/files/fuzz.txt",
                content=b"fuzz",
                headers=alice.auth,
            )
            assert upload.status_code == 201, upload.text
            await sign_in(browser, alice)
            csrf = (await browser.get(f"{API}/session")).json()["csrf_token"]
            yield Portal(
                callers=[
                    Caller("anonymous", stranger, {}),
                    Caller("bearer", scripted, dict(world["ada"].auth)),
                    Caller("browser", browser, {"X-CSRF-Token": csrf}, csrf),
                ],
                known={
                    "client_id": str(world.acme),
                    "folder_id": str(world.acme_folder),
                    "document_id": upload.json()["document_id"],
                    "number": "1",
                    "name": "fuzz.txt",
                },
            )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
@fuzzing(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,  # a fixed seed: the same inputs on every run and in CI
    deadline=None,
    database=None,
    # No shrinking: the drawn values are small already, and a failure should fail fast
    # in CI with the request it made, not spend minutes minimising it.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_input_makes_a_route_answer_5xx(
    portal: Portal, endpoint: Endpoint, data: st.DataObject
) -> None:
    names = sorted(set(PARAM.findall(endpoint.path)))
    draw = data.draw(draws(names, portal.known))
    for caller in portal.callers:
        if caller.name == "browser" and (endpoint.method, endpoint.path) in SIGN_OUT:
            continue
        request = build_request(caller, endpoint, draw)
        answer = await caller.client.send(request)
        assert answer.status_code < 500, (
            caller.name,
            request.method,
            str(request.url)[:300],
            answer.text[:300],
        )
