"""A visitor without an account through a share link: full and ranged downloads, refusals
after the limit, revocation and expiry (one 404 for all), the password and its cookie,
guessing limits, the emailed code, and folder links kept inside their folder. Every step is
in the audit log naming the link, and the token is in no event and no log line."""

from __future__ import annotations

import email
import hashlib
import hmac
import io
import json
import logging
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlmodel import col, select
from starlette.types import ASGIApp

from tests.fixtures.app import World
from vault.accounts.identity import RateLimit
from vault.db import transaction
from vault.link_access import CODE_PURPOSE, LinkCode
from vault.links import Link
from vault.models import AuditEvent, ClientAccess
from web.services import Services
from web.settings import Settings

API = "/api/v1"
DATA = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def settings(settings: Settings) -> Settings:
    links = settings.links.model_copy(update={"max_failures": 3, "address_max_failures": 5})
    return settings.model_copy(update={"links": links})


@pytest.fixture
async def visitor(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own, with no account and its own cookies."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def soon(days: float = 3) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def put(http: httpx.AsyncClient, world: World, folder: object, name: str, data: bytes) -> str:
    response = await http.put(
        f"{API}/folders/{folder}/files/{name}", content=data, headers=world["sam"].auth
    )
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def share(http: httpx.AsyncClient, world: World, path: str, **body: Any) -> tuple[str, str]:
    response = await http.post(
        f"{API}/{path}/links", json={"expires_at": soon(), **body}, headers=world["sam"].auth
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return response.json()["id"], url.removeprefix("http://127.0.0.1:8000")


async def link_events(services: Services, link_id: str) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        found = await session.execute(
            select(AuditEvent).where(AuditEvent.target_id == link_id).order_by(col(AuditEvent.seq))
        )
        return list(found.scalars().all())


async def all_details(services: Services) -> list[str]:
    async with transaction(services.sessions) as session:
        return list((await session.execute(select(AuditEvent.details))).scalars().all())


def reason(event: AuditEvent) -> str | None:
    value: str | None = json.loads(event.details).get("reason")
    return value


async def test_a_visitor_downloads_full_and_ranged_until_the_limit_and_each_step_is_audited(
    http: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    world: World,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    document_id = await put(http, world, world.acme_folder, "accounts.pdf", DATA)
    link_id, path = await share(http, world, f"documents/{document_id}", max_downloads=2)
    token = path.removeprefix("/s/")

    page = await visitor.get(path)
    assert page.status_code == 200
    assert "accounts.pdf" in page.text and "ClientVault" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "no-store" in page.headers["cache-control"]

    full = await visitor.get(f"{path}/content")
    assert full.status_code == 200 and full.content == DATA
    assert full.headers["referrer-policy"] == "no-referrer"
    assert full.headers["content-disposition"].startswith("attachment")
    ranged = await visitor.get(f"{path}/content", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == DATA[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(DATA)}"

    spent = await visitor.get(f"{path}/content")
    unknown = await visitor.get("/s/" + "x" * 43 + "/content")
    assert spent.status_code == unknown.status_code == 404
    assert spent.text == unknown.text
    assert (await visitor.get(path)).status_code == 404  # the page too, once exhausted

    events = await link_events(services, link_id)
    assert [(e.action, e.outcome) for e in events] == [
        ("link.created", "success"),
        ("link.viewed", "success"),
        ("link.downloaded", "success"),
        ("link.downloaded", "success"),
        ("link.refused", "denied"),
        ("link.refused", "denied"),
    ]
    for event in events[1:]:
        facts = json.loads(event.details)
        assert facts["link_id"] == link_id
        assert facts["created_by"] == str(world["sam"].id)
        assert event.ip == "203.0.113.7" and event.actor_role == "visitor"
    assert [json.loads(e.details)["range"] for e in events[2:4]] == [None, "100-199"]
    assert reason(events[4]) == reason(events[5]) == "exhausted"
    assert not any(token in details for details in await all_details(services))
    # The test's own HTTP client (httpx) logs the URLs it requests; the server logs none.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server and not [r.name for r in server if token in r.getMessage()]


async def test_revoked_and_expired_links_answer_as_an_unknown_one_does(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await put(http, world, world.acme_folder, "letter.txt", b"dear client")
    revoked_id, revoked = await share(http, world, f"documents/{document_id}")
    expired_id, expired = await share(http, world, f"documents/{document_id}")
    assert (await visitor.get(f"{revoked}/content")).status_code == 200
    gone = await http.delete(f"{API}/links/{revoked_id}", headers=world["sam"].auth)
    assert gone.status_code == 204
    async with transaction(services.sessions) as session:
        link = await session.get(Link, __import__("uuid").UUID(expired_id))
        assert link is not None
        link.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(link)

    unknown = await visitor.get("/s/nothing-here")
    for path in (revoked, f"{revoked}/content", expired, f"{expired}/content"):
        answer = await visitor.get(path)
        assert answer.status_code == 404 and answer.text == unknown.text, path
    assert [
        reason(e) for e in await link_events(services, revoked_id) if e.action == "link.refused"
    ] == ["revoked", "revoked"]
    assert [
        reason(e) for e in await link_events(services, expired_id) if e.action == "link.refused"
    ] == ["expired", "expired"]


async def test_the_password_cookie_opens_its_own_link_and_no_other(
    http: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    world: World,
    services: Services,
    app: ASGIApp,
) -> None:
    document_id = await put(http, world, world.acme_folder, "payroll.csv", b"a,b\n1,2\n")
    first_id, first = await share(
        http, world, f"documents/{document_id}", password="first link passphrase"
    )
    second_id, second = await share(
        http, world, f"documents/{document_id}", password="second link passphrase"
    )

    asked = await visitor.get(f"{first}/content")
    assert asked.status_code == 303 and asked.headers["location"] == first
    form = await visitor.get(first)
    assert 'name="password"' in form.text and "payroll.csv" not in form.text

    wrong = await visitor.post(f"{first}/password", data={"password": "not it at all"})
    assert wrong.status_code == 400
    right = await visitor.post(f"{first}/password", data={"password": "first link passphrase"})
    assert right.status_code == 303
    cookie = visitor.cookies.get("cv_link")
    assert cookie
    assert (await visitor.get(f"{first}/content")).content == b"a,b\n1,2\n"

    # The same grant presented on the other link's address opens nothing there.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies={"cv_link": cookie}
    ) as thief:
        assert (await thief.get(f"{first}/content")).status_code == 200  # the cookie works
        replay = await thief.get(f"{second}/content")
    assert replay.status_code == 303 and replay.headers["location"] == second
    refused = [e for e in await link_events(services, second_id) if e.action == "link.refused"]
    assert [reason(e) for e in refused] == ["locked"]
    unlocks = [e.action for e in await link_events(services, first_id) if "unlock" in e.action]
    assert unlocks == ["link.unlock_failed", "link.unlocked"]
    assert not any("first link passphrase" in d for d in await all_details(services))


async def test_password_guesses_are_limited_per_link_and_per_address(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World
) -> None:
    document_id = await put(http, world, world.acme_folder, "ledger.txt", b"ledger")
    _, path = await share(http, world, f"documents/{document_id}", password="the right passphrase")
    statuses = [
        (await visitor.post(f"{path}/password", data={"password": "guess"})).status_code
        for _ in range(3)
    ]
    assert statuses == [400, 400, 429]  # the third wrong one locks the link
    locked = await visitor.post(f"{path}/password", data={"password": "the right passphrase"})
    assert locked.status_code == 429  # locked: even the right password waits
    assert "cv_link" not in visitor.cookies

    # Another link from the same address: two more failures reach the address's limit of 5.
    _, other = await share(http, world, f"documents/{document_id}", password="another passphrase")
    first = await visitor.post(f"{other}/password", data={"password": "guess"})
    second = await visitor.post(f"{other}/password", data={"password": "guess"})
    assert (first.status_code, second.status_code) == (400, 429)
    blocked = await visitor.post(f"{other}/password", data={"password": "another passphrase"})
    assert blocked.status_code == 429


async def test_the_recipient_confirms_a_code_sent_by_email(
    http: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    document_id = await put(http, world, world.acme_folder, "offer.pdf", b"%PDF offer")
    link_id, path = await share(
        http, world, f"documents/{document_id}", recipient_email="bank@example.test"
    )
    page = await visitor.get(path)
    assert "b•••@example.test" in page.text and "offer.pdf" not in page.text
    sent = await visitor.post(f"{path}/code")
    assert sent.status_code == 200
    messages = [
        email.message_from_bytes(p.read_bytes()) for p in settings.outbox_path.glob("*.eml")
    ]
    assert [m["To"] for m in messages] == ["bank@example.test"]
    text = messages[0].get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
    code = next(word for word in text.split() if word.isdigit() and len(word) == 8)

    assert (await visitor.post(f"{path}/code/verify", data={"code": "00000000"})).status_code == 400
    done = await visitor.post(f"{path}/code/verify", data={"code": code})
    assert done.status_code == 303
    assert (await visitor.get(f"{path}/content")).content == b"%PDF offer"
    # Single use: the code does not open the link in another browser.
    assert (await http.post(f"{path}/code/verify", data={"code": code})).status_code == 400
    assert not any(code in d for d in await all_details(services))
    actions = [e.action for e in await link_events(services, link_id)]
    assert "link.code_sent" in actions and "link.unlocked" in actions


async def test_a_folder_link_never_reaches_a_sibling_or_parent_folder(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World, services: Services
) -> None:
    async def folder(parent: object, name: str) -> str:
        response = await http.post(
            f"{API}/folders",
            json={"client_id": str(world.acme), "parent_id": str(parent), "name": name},
            headers=world["sam"].auth,
        )
        assert response.status_code == 201, response.text
        folder_id: str = response.json()["id"]
        return folder_id

    shared = await folder(world.acme_folder, "For the bank")
    inner = await folder(shared, "Statements")
    sibling = await folder(world.acme_folder, "Internal")
    in_shared = await put(http, world, shared, "summary.txt", b"summary")
    in_inner = await put(http, world, inner, "january.txt", b"january")
    in_sibling = await put(http, world, sibling, "secret.txt", b"secret")
    in_parent = await put(http, world, world.acme_folder, "top.txt", b"top")
    link_id, path = await share(http, world, f"folders/{shared}")

    page = await visitor.get(path)
    assert "summary.txt" in page.text and "Statements" in page.text and "secret" not in page.text
    assert "january.txt" in (await visitor.get(path, params={"folder": inner})).text
    assert (await visitor.get(f"{path}/files/{in_shared}")).content == b"summary"
    assert (await visitor.get(f"{path}/files/{in_inner}")).content == b"january"
    archive = await visitor.get(f"{path}/download.zip")
    assert archive.status_code == 200
    names = sorted(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert names == [
        "For the bank/",
        "For the bank/Statements/",
        "For the bank/Statements/january.txt",
        "For the bank/summary.txt",
    ]

    unknown = await visitor.get("/s/nothing-here")
    for attempt in (
        visitor.get(path, params={"folder": sibling}),
        visitor.get(path, params={"folder": str(world.acme_folder)}),
        visitor.get(path, params={"folder": str(world.globex_folder)}),
        visitor.get(f"{path}/files/{in_sibling}"),
        visitor.get(f"{path}/files/{in_parent}"),
        visitor.get(f"{path}/download.zip", params={"folder": sibling}),
        visitor.get(f"{path}/download.zip", params={"folder": str(world.acme_folder)}),
        visitor.get(f"{path}/content"),
    ):
        answer = await attempt
        assert answer.status_code == 404 and answer.text == unknown.text
    refusals = [
        reason(e) for e in await link_events(services, link_id) if e.action == "link.refused"
    ]
    assert refusals.count("outside_folder") == 7


async def test_a_client_policy_switched_off_stops_its_links_and_upload_links_serve_nothing(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await put(http, world, world.acme_folder, "plan.txt", b"plan")
    link_id, path = await share(http, world, f"documents/{document_id}")
    _, drop = await share(http, world, f"folders/{world.acme_folder}", kind="upload")
    # An upload link lists nothing and serves nothing, not even through the download routes.
    assert "plan.txt" not in (await visitor.get(drop)).text
    for attempt in (f"{drop}/content", f"{drop}/download.zip", f"{drop}/files/{document_id}"):
        assert (await visitor.get(attempt)).status_code == 404, attempt

    assert (await visitor.get(f"{path}/content")).content == b"plan"
    off = await http.put(
        f"{API}/clients/{world.acme}/link-policy",
        json={"allowed": False},
        headers=world["ada"].auth,
    )
    assert off.status_code == 200, off.text
    assert (await visitor.get(f"{path}/content")).status_code == 404
    refused = [e for e in await link_events(services, link_id) if e.action == "link.refused"]
    assert [reason(e) for e in refused] == ["links_disabled"]


async def test_the_language_chooser_keeps_the_visitor_on_the_link(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World
) -> None:
    document_id = await put(http, world, world.acme_folder, "memo.txt", b"memo")
    _, path = await share(http, world, f"documents/{document_id}")
    chosen = await visitor.get(path, params={"lang": "fa"})
    assert chosen.status_code == 303 and chosen.headers["location"] == path
    page = await visitor.get(path)
    assert '<html lang="fa" dir="rtl">' in page.text
    # A made-up token with a line break goes nowhere but to its own (404) address.
    odd = await visitor.get("/s/a%0d%0aSet-Cookie:%20x=1", params={"lang": "he"})
    assert odd.status_code == 303 and "\n" not in odd.headers["location"]
    assert "x" not in visitor.cookies


async def test_a_link_stops_when_its_creator_is_deactivated_or_loses_the_client(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World, services: Services
) -> None:
    document_id = await put(http, world, world.acme_folder, "deed.txt", b"deed")
    link_id, path = await share(http, world, f"documents/{document_id}")
    folder_link_id, folder_path = await share(http, world, f"folders/{world.acme_folder}")
    assert (await visitor.get(f"{path}/content")).content == b"deed"
    sam, ada = world["sam"], world["ada"]

    off = await http.patch(f"{API}/users/{sam.id}", json={"active": False}, headers=ada.auth)
    assert off.status_code == 200, off.text
    unknown = await visitor.get("/s/" + "x" * 43 + "/content")
    for attempt in (f"{path}/content", path, f"{folder_path}/download.zip"):
        answer = await visitor.get(attempt)
        assert answer.status_code == 404 and answer.text == unknown.text, attempt
    refused = [e for e in await link_events(services, link_id) if e.action == "link.refused"]
    assert [reason(e) for e in refused] == ["creator_gone", "creator_gone"]
    assert refused[0].outcome == "denied" and refused[0].ip == "203.0.113.7"

    # Back at work, but no longer assigned to the client: the link lends nothing.
    on = await http.patch(f"{API}/users/{sam.id}", json={"active": True}, headers=ada.auth)
    assert on.status_code == 200, on.text
    async with transaction(services.sessions) as session:
        await session.execute(
            sqlalchemy.delete(ClientAccess).where(col(ClientAccess.user_id) == sam.id)
        )
    assert (await visitor.get(f"{folder_path}/download.zip")).status_code == 404
    refused = [e for e in await link_events(services, folder_link_id) if e.action == "link.refused"]
    assert [reason(e) for e in refused] == ["creator_gone", "creator_lost_access"]


def code_for(settings: Settings, recipient: str) -> str:
    """The code in the newest email to `recipient`."""
    paths = sorted(settings.outbox_path.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    for path in reversed(paths):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == recipient:
            text = message.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
            return next(word for word in text.split() if word.isdigit() and len(word) == 8)
    raise AssertionError(f"no email to {recipient}")


async def lockouts_lapse(services: Services) -> None:
    async with transaction(services.sessions) as session:
        await session.execute(sqlalchemy.delete(RateLimit))


async def test_code_guesses_are_limited_per_link_per_code_and_per_address(
    http: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    document_id = await put(http, world, world.acme_folder, "lease.pdf", b"%PDF lease")

    async def coded(recipient: str) -> tuple[str, str]:
        _, path = await share(http, world, f"documents/{document_id}", recipient_email=recipient)
        assert (await visitor.post(f"{path}/code")).status_code == 200
        return path, code_for(settings, recipient)

    async def guess(path: str, code: str, who: httpx.AsyncClient = visitor) -> int:
        return (await who.post(f"{path}/code/verify", data={"code": code})).status_code

    # Per link: the third wrong code locks it; then even the right one waits, from anywhere.
    path, code = await coded("one@example.test")
    wrong = "99999999" if code != "99999999" else "11111111"
    assert [await guess(path, wrong) for _ in range(3)] == [400, 400, 429]
    assert await guess(path, code) == 429
    assert await guess(path, code, http) == 429
    # Per code: five wrong entries kill it, lockouts or not.
    await lockouts_lapse(services)
    assert [await guess(path, wrong) for _ in range(2)] == [400, 400]
    await lockouts_lapse(services)
    assert await guess(path, code) == 400
    assert (await visitor.get(f"{path}/content")).status_code == 303  # still locked

    # Per address, across links: five wrong codes from one address lock it out of all.
    await lockouts_lapse(services)
    first, _ = await coded("two@example.test")
    second, _ = await coded("three@example.test")
    third, right = await coded("four@example.test")
    assert [await guess(first, wrong), await guess(first, wrong)] == [400, 400]
    assert [await guess(second, wrong), await guess(second, wrong)] == [400, 400]
    assert await guess(third, wrong) == 429
    assert await guess(third, right) == 429
    assert await guess(third, right, http) == 303  # another address, and the link is not locked


async def test_codes_sent_are_limited_and_kept_only_as_keyed_hashes(
    http: httpx.AsyncClient,
    visitor: httpx.AsyncClient,
    world: World,
    services: Services,
    settings: Settings,
) -> None:
    document_id = await put(http, world, world.acme_folder, "will.pdf", b"%PDF will")
    link_id, path = await share(
        http, world, f"documents/{document_id}", recipient_email="heir@example.test"
    )
    assert [(await visitor.post(f"{path}/code")).status_code for _ in range(5)] == [200] * 5
    sixth = await visitor.post(f"{path}/code")
    assert sixth.status_code == 429
    sent = [p for p in settings.outbox_path.glob("*.eml") if b"heir@example.test" in p.read_bytes()]
    assert len(sent) == 5
    refused = [e for e in await link_events(services, link_id) if e.action == "link.code_refused"]
    assert [reason(e) for e in refused] == ["too_many_codes"]

    code = code_for(settings, "heir@example.test")
    async with transaction(services.sessions) as session:
        stored = set((await session.execute(select(LinkCode.code_hash))).scalars())
    _, key = services.keyring.derive(CODE_PURPOSE)
    message = f"{link_id}:{code}".encode()
    assert hmac.new(key, message, hashlib.sha256).hexdigest() in stored
    assert hashlib.sha256(message).hexdigest() not in stored  # no hash a reader could invert
    assert (await visitor.post(f"{path}/code/verify", data={"code": code})).status_code == 303


async def test_a_pinned_link_keeps_serving_its_version_after_a_new_one(
    http: httpx.AsyncClient, visitor: httpx.AsyncClient, world: World
) -> None:
    document_id = await put(http, world, world.acme_folder, "budget.csv", b"v1 figures")
    _, pinned = await share(http, world, f"documents/{document_id}", version=1)
    _, latest = await share(http, world, f"documents/{document_id}")
    await put(http, world, world.acme_folder, "budget.csv", b"v2 figures, revised")
    assert (await visitor.get(f"{pinned}/content")).content == b"v1 figures"
    ranged = await visitor.get(f"{pinned}/content", headers={"Range": "bytes=3-"})
    assert ranged.status_code == 206 and ranged.content == b"figures"
    assert (await visitor.get(f"{latest}/content")).content == b"v2 figures, revised"
    missing = await http.post(
        f"{API}/documents/{document_id}/links",
        json={"expires_at": soon(), "version": 9},
        headers=world["sam"].auth,
    )
    assert missing.status_code == 404
