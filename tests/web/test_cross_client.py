"""Tenant isolation: no route hands out, changes or even confirms another client's data.

The routes come from `web.api.routes()`, so a new route that takes an id fails
`test_every_id_route_is_covered` until it is added to `ID_ROUTES` below.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.notify import failed_email
from tests.fixtures.routes import route_inventory
from vault import accounts
from vault.db import transaction
from vault.models import User
from web.services import Services

API = "/api/v1"
PROBLEM = "application/problem+json"
ID_PARAM = re.compile(r"\{(\w+_id)(?::\w+)?\}")


def id_routes() -> set[tuple[str, str]]:
    return {(method, path) for method, path in route_inventory() if ID_PARAM.search(path)}


@dataclass(frozen=True)
class Ids:
    """The ids one probe uses: Acme's real ones, random ones or malformed ones."""

    client: str
    folder: str
    document: str
    # A document request of Acme's and one of its items; random and malformed probes reuse
    # their document id for these.
    request: str = ""
    item: str = ""

    @property
    def req(self) -> str:
        return self.request or self.document

    @property
    def req_item(self) -> str:
        return self.item or self.document


@dataclass(frozen=True)
class Call:
    method: str
    url: Callable[[Ids], str]
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


JSON = {"Content-Type": "application/json"}
# Valid bodies, so that what answers is the lookup of the ids, not validation.
NEW_REQUEST = (
    b'{"title": "Planted", "due_date": "2030-01-31", "items": ["x"], '
    b'"folder_id": "' + str(uuid.uuid4()).encode() + b'"}'
)
NEW_LINK = b'{"expires_at": "' + datetime.now(UTC).date().isoformat().encode() + b'"}'
SUBMIT = b'{"document_id": "' + str(uuid.uuid4()).encode() + b'"}'

# A resumable upload answers only a tus 1.0.0 request; any other is refused before any lookup.
TUS = {"Tus-Resumable": "1.0.0"}


# Every id-taking route, with how to call it.
ID_ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/clients/{client_id}/folders"): Call(
        "GET", lambda i: f"{API}/clients/{i.client}/folders"
    ),
    ("GET", "/folders/{folder_id}"): Call("GET", lambda i: f"{API}/folders/{i.folder}"),
    ("PATCH", "/folders/{folder_id}"): Call(
        "PATCH", lambda i: f"{API}/folders/{i.folder}", b'{"name": "Renamed"}', JSON
    ),
    ("POST", "/folders/{folder_id}/paths"): Call(
        "POST", lambda i: f"{API}/folders/{i.folder}/paths", b'{"path": "planted/here"}', JSON
    ),
    ("PUT", "/folders/{folder_id}/files/{name:path}"): Call(
        "PUT", lambda i: f"{API}/folders/{i.folder}/files/planted.txt", b"planted by an outsider"
    ),
    ("GET", "/documents/{document_id}"): Call("GET", lambda i: f"{API}/documents/{i.document}"),
    ("DELETE", "/documents/{document_id}"): Call(
        "DELETE", lambda i: f"{API}/documents/{i.document}"
    ),
    ("PATCH", "/documents/{document_id}"): Call(
        "PATCH", lambda i: f"{API}/documents/{i.document}", b'{"name": "renamed.txt"}', JSON
    ),
    ("GET", "/documents/{document_id}/content"): Call(
        "GET", lambda i: f"{API}/documents/{i.document}/content"
    ),
    ("POST", "/documents/{document_id}/versions/{number}/restore"): Call(
        "POST", lambda i: f"{API}/documents/{i.document}/versions/1/restore"
    ),
    ("GET", "/documents/{document_id}/receipts"): Call(
        "GET", lambda i: f"{API}/documents/{i.document}/receipts"
    ),
    ("POST", "/documents/{document_id}/restore"): Call(
        "POST", lambda i: f"{API}/documents/{i.document}/restore"
    ),
    # Uploads exist only for their creator (tests/web/test_tus_creation.py probes Acme's).
    ("PATCH", "/uploads/{upload_id}"): Call(
        "PATCH",
        lambda i: f"{API}/uploads/{i.document}",
        b"planted by an outsider",
        {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    ),
    ("DELETE", "/uploads/{upload_id}"): Call(
        "DELETE", lambda i: f"{API}/uploads/{i.document}", headers=TUS
    ),
    ("PUT", "/me/notifications/{client_id}"): Call(
        "PUT",
        lambda i: f"{API}/me/notifications/{i.client}",
        b'{"cadence": "off"}',
        {"Content-Type": "application/json"},
    ),
    ("GET", "/clients/{client_id}/requests"): Call(
        "GET", lambda i: f"{API}/clients/{i.client}/requests"
    ),
    ("POST", "/clients/{client_id}/requests"): Call(
        "POST", lambda i: f"{API}/clients/{i.client}/requests", NEW_REQUEST, JSON
    ),
    ("GET", "/requests/{request_id}"): Call("GET", lambda i: f"{API}/requests/{i.req}"),
    ("POST", "/requests/{request_id}/items/{item_id}/submit"): Call(
        "POST", lambda i: f"{API}/requests/{i.req}/items/{i.req_item}/submit", SUBMIT, JSON
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/answer"): Call(
        "POST",
        lambda i: f"{API}/requests/{i.req}/items/{i.req_item}/answer",
        b'{"status": "rejected", "reason": "planted"}',
        JSON,
    ),
    ("POST", "/requests/{request_id}/close"): Call(
        "POST", lambda i: f"{API}/requests/{i.req}/close"
    ),
    ("PATCH", "/requests/{request_id}"): Call(
        "PATCH", lambda i: f"{API}/requests/{i.req}", b'{"title": "planted"}', JSON
    ),
    ("POST", "/requests/{request_id}/reminders"): Call(
        "POST", lambda i: f"{API}/requests/{i.req}/reminders"
    ),
    ("POST", "/documents/{document_id}/links"): Call(
        "POST", lambda i: f"{API}/documents/{i.document}/links", NEW_LINK, JSON
    ),
    ("POST", "/folders/{folder_id}/links"): Call(
        "POST", lambda i: f"{API}/folders/{i.folder}/links", NEW_LINK, JSON
    ),
    # Links of Acme's are probed with real ones in tests/web/test_links_api.py.
    ("DELETE", "/links/{link_id}"): Call("DELETE", lambda i: f"{API}/links/{i.document}"),
    ("GET", "/clients/{client_id}/link-policy"): Call(
        "GET", lambda i: f"{API}/clients/{i.client}/link-policy"
    ),
    ("PUT", "/clients/{client_id}/link-policy"): Call(
        "PUT", lambda i: f"{API}/clients/{i.client}/link-policy", b'{"allowed": true}', JSON
    ),
    # Records management (tests/web/test_records_api.py covers who may use them).
    ("GET", "/clients/{client_id}/usage"): Call("GET", lambda i: f"{API}/clients/{i.client}/usage"),
    ("PUT", "/clients/{client_id}/quota"): Call(
        "PUT", lambda i: f"{API}/clients/{i.client}/quota", b'{"quota_bytes": 1}', JSON
    ),
    ("GET", "/clients/{client_id}/retention"): Call(
        "GET", lambda i: f"{API}/clients/{i.client}/retention"
    ),
    ("PUT", "/clients/{client_id}/retention"): Call(
        "PUT", lambda i: f"{API}/clients/{i.client}/retention", b'{"keep_versions": 1}', JSON
    ),
    ("GET", "/clients/{client_id}/retention/plan"): Call(
        "GET", lambda i: f"{API}/clients/{i.client}/retention/plan"
    ),
    ("GET", "/clients/{client_id}/holds"): Call("GET", lambda i: f"{API}/clients/{i.client}/holds"),
    ("POST", "/clients/{client_id}/holds"): Call(
        "POST", lambda i: f"{API}/clients/{i.client}/holds", b'{"reason": "planted"}', JSON
    ),
    ("POST", "/holds/{hold_id}/release"): Call(
        "POST", lambda i: f"{API}/holds/{i.document}/release", b'{"reason": "planted"}', JSON
    ),
}
# Ids that name a user, a token or an outbox message rather than a client's data. Who may not
# act on them gets one answer for real and invented ids alike (see
# `test_user_scoped_ids_are_no_oracle`).
USER_ID_ROUTES = {
    ("PATCH", "/users/{user_id}"),
    ("DELETE", "/users/{user_id}/totp"),
    ("DELETE", "/me/tokens/{token_id}"),
    ("POST", "/notifications/{notification_id}/retry"),
    ("GET", "/audit/alerts/{alert_id}"),  # firm-wide, for auditors and admins only
}
# The firm's request templates belong to no client: every staff member may use them
# (tests/web/test_request_management_api.py covers who may).
FIRM_ID_ROUTES = {
    ("PATCH", "/request-templates/{template_id}"),
    ("DELETE", "/request-templates/{template_id}"),
}
# The one route for which a trashed document exists, to those who look after its client
# (`check_trashed_looks_like_never_existed` proves the rest answer 404 for it).
TRASH_ROUTES = {("POST", "/documents/{document_id}/restore")}
# A version query on the content route goes through the same checks with another code path.
EXTRA_CALLS: list[Call] = [
    Call("GET", lambda i: f"{API}/documents/{i.document}/content?version=1"),
    Call("GET", lambda i: f"{API}/documents/{i.document}/content?version=99"),
]


def random_ids() -> Ids:
    return Ids(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


MALFORMED = [
    Ids("not-a-uuid", "not-a-uuid", "not-a-uuid"),
    Ids("1", "1", "1"),
    Ids("%2E%2E", "%2E%2E", "%2E%2E"),
    Ids(str(uuid.uuid4())[:-1], str(uuid.uuid4())[:-1], str(uuid.uuid4())[:-1]),
]


async def acme_ids(http: httpx.AsyncClient, world: World) -> Ids:
    response = await http.put(
        f"{API}/folders/{world.acme_folder}/files/acme-secret.pdf",
        content=b"%PDF acme only",
        headers=world["alice"].auth,
    )
    assert response.status_code == 201, response.text
    document = response.json()["document_id"]
    asked = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={
            "title": "Acme year end",
            "due_date": "2030-01-31",
            "folder_id": str(world.acme_folder),
            "items": ["Bank statements"],
        },
        headers=world["sam"].auth,
    )
    assert asked.status_code == 201, asked.text
    [item] = asked.json()["items"]
    submitted = await http.post(
        f"{API}/requests/{asked.json()['id']}/items/{item['id']}/submit",
        json={"document_id": document},
        headers=world["alice"].auth,
    )
    assert submitted.status_code == 200, submitted.text
    return Ids(str(world.acme), str(world.acme_folder), document, asked.json()["id"], item["id"])


async def call(
    http: httpx.AsyncClient, probe: Call, ids: Ids, auth: dict[str, str]
) -> httpx.Response:
    return await http.request(
        probe.method, probe.url(ids), content=probe.content, headers={**probe.headers, **auth}
    )


def not_found(response: httpx.Response, where: str) -> dict[str, Any]:
    assert response.status_code == 404, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), where
    body: dict[str, Any] = response.json()
    assert body["status"] == 404 and body["title"] == "Not found", where
    assert b"acme" not in response.content.lower(), where
    return body


def test_every_id_route_is_covered() -> None:
    assert id_routes() == set(ID_ROUTES) | USER_ID_ROUTES | FIRM_ID_ROUTES, (
        "a route that takes an id must be added to ID_ROUTES in this module"
    )
    # And the inventory is not trivially small: the known id routes are all there.
    assert len(ID_ROUTES) >= 6


async def assert_acme_is_invisible(
    http: httpx.AsyncClient, auth: dict[str, str], acme: Ids, who: str
) -> None:
    for probe in [*ID_ROUTES.values(), *EXTRA_CALLS]:
        where = f"{who} {probe.method} {probe.url(acme)}"
        real = not_found(await call(http, probe, acme, auth), where)
        never = not_found(await call(http, probe, random_ids(), auth), f"{where} (random)")
        # Identical answers: a 404 does not tell "someone else's" from "no such thing".
        assert real == never, where
        for bad in MALFORMED:
            body = not_found(await call(http, probe, bad, auth), f"{where} ({bad.document})")
            assert body == never, f"{where} malformed {bad.document}"


async def assert_acme_untouched(
    http: httpx.AsyncClient, world: World, services: Services, acme: Ids
) -> None:
    ada = world["ada"].auth
    meta = await http.get(f"{API}/documents/{acme.document}", headers=ada)
    assert meta.status_code == 200  # not deleted
    assert len(meta.json()["versions"]) == 1  # no version added
    folder = (await http.get(f"{API}/folders/{acme.folder}", headers=ada)).json()
    assert [d["name"] for d in folder["documents"]] == ["acme-secret.pdf"]  # nothing planted
    globex = (await http.get(f"{API}/folders/{world.globex_folder}", headers=ada)).json()
    assert globex["documents"] == []
    objects = [obj.key async for obj in services.store.list("")]
    assert len(objects) == 1, objects
    asked = (await http.get(f"{API}/requests/{acme.request}", headers=ada)).json()
    assert asked["closed_at"] is None  # neither closed nor answered
    assert [i["status"] for i in asked["items"]] == ["submitted"]
    acme_requests = (await http.get(f"{API}/clients/{acme.client}/requests", headers=ada)).json()
    assert len(acme_requests["requests"]) == 1  # nothing planted
    assert await services.store.list_multipart_uploads("") == []


async def test_other_clients_ids_are_not_found(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    acme = await acme_ids(http, world)
    for who in ("bob", "gina"):  # Globex's client user and Globex's staff (who may delete)
        await assert_acme_is_invisible(http, world[who].auth, acme, who)
    await assert_acme_untouched(http, world, services, acme)

    # Ids in a body get the same treatment as ids in the path.
    gina = world["gina"].auth
    bodies: list[dict[str, str]] = [
        {"client_id": acme.client, "name": "Planted"},
        {"client_id": str(world.globex), "parent_id": acme.folder, "name": "Planted"},
        {"client_id": acme.client, "parent_id": acme.folder, "name": "Planted"},
    ]
    never: list[dict[str, str]] = [
        {"client_id": str(uuid.uuid4()), "name": "Planted"},
        {"client_id": str(world.globex), "parent_id": str(uuid.uuid4()), "name": "Planted"},
        {"client_id": str(uuid.uuid4()), "parent_id": str(uuid.uuid4()), "name": "Planted"},
    ]
    for body, other in zip(bodies, never, strict=True):
        real = not_found(await http.post(f"{API}/folders", json=body, headers=gina), str(body))
        assert real == not_found(await http.post(f"{API}/folders", json=other, headers=gina), "")
    root = (
        await http.get(f"{API}/clients/{acme.client}/folders", headers=world["ada"].auth)
    ).json()
    assert [f["name"] for f in root["folders"]] == ["Tax 2026"]


async def test_auditor_client_user_and_trash(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    acme = await acme_ids(http, world)
    await assert_acme_is_invisible(http, world["otto"].auth, acme, "otto")
    await assert_acme_untouched(http, world, services, acme)
    clients = await http.get(f"{API}/clients", headers=world["otto"].auth)
    assert clients.json() == {"clients": []}
    await check_client_user_cannot_see_the_other_client(http, world)
    await check_trashed_looks_like_never_existed(http, world, acme)


async def check_client_user_cannot_see_the_other_client(
    http: httpx.AsyncClient, world: World
) -> None:
    alice = world["alice"].auth
    never = not_found(await http.get(f"{API}/clients/{uuid.uuid4()}/folders", headers=alice), "")
    globex = await http.get(f"{API}/clients/{world.globex}/folders", headers=alice)
    assert not_found(globex, "alice → Globex") == never
    folder = await http.get(f"{API}/folders/{world.globex_folder}", headers=alice)
    assert not_found(folder, "alice → Globex folder") == not_found(
        await http.get(f"{API}/folders/{uuid.uuid4()}", headers=alice), ""
    )
    own = await http.get(f"{API}/clients/{world.acme}/folders", headers=alice)
    assert own.status_code == 200
    assert [f["name"] for f in own.json()["folders"]] == ["Tax 2026"]


async def check_trashed_looks_like_never_existed(
    http: httpx.AsyncClient, world: World, acme: Ids
) -> None:
    sam = world["sam"].auth
    assert (await http.delete(f"{API}/documents/{acme.document}", headers=sam)).status_code == 204
    for (method, path), probe in ID_ROUTES.items():
        if "{document_id}" not in path or (method, path) in TRASH_ROUTES:
            continue
        trashed = not_found(await call(http, probe, acme, sam), f"trashed {probe.method}")
        assert trashed == not_found(await call(http, probe, random_ids(), sam), "random")
    # The client's own member cannot tell a trashed document from one that never was.
    restore = ID_ROUTES[("POST", "/documents/{document_id}/restore")]
    hidden = not_found(await call(http, restore, acme, world["alice"].auth), "alice restore")
    assert hidden == not_found(await call(http, restore, random_ids(), world["alice"].auth), "")


async def test_user_scoped_ids_are_no_oracle(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    """Non-admins (and other users) get the same answer for real and invented ids."""
    alice = world["alice"]
    async with transaction(services.sessions) as session:
        token, _ = await accounts.create_token(
            session, TEST_CONTEXT, await session.get_one(User, alice.id), name="alice's"
        )
        failed = failed_email(alice, world.acme)
        session.add(failed)
    real = {
        "user": str(alice.id),
        "token": str(token.id),
        "notification": str(failed.id),
    }
    calls = [
        ("PATCH", "/users/{user}", b'{"active": false}'),
        ("DELETE", "/users/{user}/totp", None),
        ("DELETE", "/me/tokens/{token}", None),
        ("POST", "/notifications/{notification}/retry", None),
    ]
    for who in ("bob", "gina", "otto", "sam"):
        for method, template, body in calls:
            headers = {**world[who].auth, "Content-Type": "application/json"}
            url = API + template.format(**real)
            invented = API + template.format(**{k: str(uuid.uuid4()) for k in real})
            one = await http.request(method, url, content=body, headers=headers)
            other = await http.request(method, invented, content=body, headers=headers)
            where = f"{who} {method} {template}"
            assert one.status_code in (403, 404), f"{where}: {one.status_code}"
            assert (one.status_code, one.json()) == (other.status_code, other.json()), where
    # And nothing happened to them.
    me = await http.get(f"{API}/me", headers={"Authorization": f"Bearer {alice.token}"})
    assert me.status_code == 200
