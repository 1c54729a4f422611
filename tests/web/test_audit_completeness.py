"""Every route of the app and every command of the CLI leaves an audit event (issue 12, item 2).

The routes are found from the app's own router and the commands from the CLI's own command
tree; each (method, route) and each command must have an entry in `ROUTES` or `COMMANDS`,
so a route or command added later without one makes this test fail. An entry says how to
call it as an allowed caller and as a refused one, and which action each call must leave
among the events the call wrote. Routes that read and change nothing of anyone's are listed
in `UNAUDITED` with the reason.

Adding a route: one line in `audit_calls.API_CALLS` (or `audit_page_calls.PAGE_CALLS`, or
`audit_link_calls.LINK_CALLS` for share links), e.g.
    ("GET", "/api/v1/things/{thing_id}"): E(ok("sam", "thing.viewed"), no("bob")),
where path parameters are filled from the ids `set_up` below makes.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from asgi_lifespan import LifespanManager
from click import Group
from click.testing import CliRunner
from sqlmodel import select
from starlette.routing import BaseRoute, Mount, Route

from notify.links import UnsubscribeLinks
from tests.fixtures.app import TEST_CONTEXT, Person, World
from tests.fixtures.audit_calls import API, API_CALLS, FIRST, TUS, TUS_BODY, UNAUDITED, E
from tests.fixtures.audit_console_calls import CONSOLE_CALLS, set_up_console
from tests.fixtures.audit_driver import (
    Browsers,
    Ids,
    events_of,
    forget_refusals,
    leaked_secrets,
    newest_seq,
    prepare,
)
from tests.fixtures.audit_link_calls import LINK_CALLS, SET_UP_LINKS, note_link_tokens, set_up_links
from tests.fixtures.audit_page_calls import PAGE_CALLS
from tests.fixtures.audit_records_calls import RECORDS_CALLS, SET_UP_DROP_LINKS, set_up_records
from tests.fixtures.people import invite
from tests.fixtures.thumbnails import png
from vault import accounts, audit
from vault.accounts import email_links, people
from vault.accounts.identity import EmailLinkPurpose
from vault.accounts.passwords import hash_password
from vault.audit import alerts
from vault.db import transaction
from vault.models import Announcement, AuditEvent, Role, User
from vault.notifications import DeliveryState, Notification
from vault.policy import SYSTEM
from web.app import create_app
from web.cli import main
from web.services import Services, open_services
from web.settings import Settings

ROUTES: dict[tuple[str, str], E] = {
    **API_CALLS,
    **PAGE_CALLS,
    **LINK_CALLS,
    **RECORDS_CALLS,
    **CONSOLE_CALLS,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Client users may hold tokens here, so token routes are called by a client as well."""
    return settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"client_tokens": True})}
    )


def inventory(routes: Sequence[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """Every (method, route template) of the router; HEAD only where GET does not imply it."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            if route.path == "/static":
                continue  # static assets: the same files for everyone
            found |= inventory(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")
            found |= {(m, prefix + route.path) for m in methods}
    return found


def test_every_route_has_an_entry() -> None:
    routes = inventory(create_app(Settings()).routes)
    listed = set(ROUTES) | set(UNAUDITED)
    assert sorted(routes - listed) == [], "routes without an entry in ROUTES or UNAUDITED"
    assert sorted(listed - routes) == [], "entries for routes that no longer exist"


EXTRA = {
    "carol": Role.CLIENT, "dave": Role.CLIENT, "hal": Role.STAFF, "rita": Role.CLIENT,
    "ross": Role.CLIENT, "uma": Role.CLIENT, "tess": Role.CLIENT,
    "ivan": Role.STAFF,
}  # fmt: skip


async def set_up(services: Services, browsers: Browsers, world: World) -> None:
    ids, http = browsers.ids, browsers.http
    async with transaction(services.sessions) as session:
        for name, role in EXTRA.items():
            password = f"{name} likes long passphrases"
            user = await accounts.create_user(
                session,
                TEST_CONTEXT,
                email=f"{name}@example.test",
                role=role,
                client_ids=[world.acme],
                password_hash=hash_password(password, services.password_hasher),
            )
            _, secret = await accounts.create_token(session, TEST_CONTEXT, user, name="test")
            ids.people[name] = Person(user.id, user.email, role, secret, password)
            if name in ("rita", "ross"):
                key = "reset" if name == "rita" else "reset2"
                ids[key] = await email_links.issue(
                    session, EmailLinkPurpose.PASSWORD_RESET, user, valid_for=timedelta(minutes=30)
                )
        alice = await session.get(User, world["alice"].id)
        assert alice is not None
        for key in ("token_id", "token2"):
            token, _ = await accounts.create_token(session, TEST_CONTEXT, alice, name=key)
            ids[key] = str(token.id)
    ids["invite"] = await invite(services, "ivy@example.test", Role.CLIENT, [world.acme])
    ids["invite2"] = await invite(services, "jon@example.test", Role.CLIENT, [world.acme])
    links = UnsubscribeLinks(services.keyring, services.settings.server.public_url)
    ids["unsubscribe"] = links.token(world["alice"].id, world.acme)
    ids.update(
        client_id=str(world.acme), folder_id=str(world.acme_folder), name="a.txt", number="1",
        user_id=str(ids.people["uma"].id),
        folder_b64=base64.b64encode(str(world.acme_folder).encode()).decode(),
    )  # fmt: skip
    alice_api = {"Authorization": f"Bearer {world['alice'].token}"}
    sam_api = {"Authorization": f"Bearer {world['sam'].token}"}
    put = await http.put(
        f"{API}/folders/{world.acme_folder}/files/a.txt", content=FIRST, headers=alice_api
    )
    assert put.status_code == 201, put.text
    ids["document_id"] = put.json()["document_id"]
    image = await http.put(
        f"{API}/folders/{world.acme_folder}/files/a.png", content=png(40, 30), headers=alice_api
    )
    assert image.status_code == 201, image.text
    ids["image_id"] = image.json()["document_id"]
    second = await http.post(
        f"{API}/folders", json={"client_id": str(world.acme), "name": "Moves"}, headers=sam_api
    )
    assert second.status_code == 201, second.text
    ids["folder2"] = second.json()["id"]
    opened = await http.post(
        f"{API}/clients/{world.acme}/requests",
        json={"title": "Set-up", "due_date": "2099-01-01", "folder_id": str(world.acme_folder),
              "items": ["One", "Two"]},
        headers=sam_api,
    )  # fmt: skip
    assert opened.status_code == 201, opened.text
    ids["request_id"] = opened.json()["id"]
    ids["item_id"] = opened.json()["items"][0]["id"]
    again = await http.post(opened.request.url, content=opened.request.content, headers=sam_api)
    assert again.status_code == 201, again.text
    ids["request2"] = again.json()["id"]
    ids["item2"], ids["item3"] = [i["id"] for i in again.json()["items"]]
    for key in ("template_id", "template2", "template3"):
        made = await http.post(
            f"{API}/request-templates",
            json={"name": f"Set-up {key}", "title": "Set-up", "items": ["One"]},
            headers=sam_api,
        )
        assert made.status_code == 201, made.text
        ids[key] = made.json()["id"]
    submitted = await http.post(
        f"{API}/requests/{ids['request2']}/items/{ids['item3']}/submit",
        json={"document_id": ids["document_id"]},
        headers=alice_api,
    )
    assert submitted.status_code == 200, submitted.text
    upload = await http.post(
        f"{API}/uploads",
        headers={**alice_api, **TUS, "Upload-Length": str(len(TUS_BODY)),
                 "Upload-Metadata": f"folder_id {ids['folder_b64']},filename dXAudHh0"},
    )  # fmt: skip
    assert upload.status_code == 201, upload.text
    ids["upload_id"] = upload.headers["location"].rsplit("/", 1)[-1]
    upload = await http.post(f"{API}/uploads", headers=upload.request.headers)
    ids["upload2"] = upload.headers["location"].rsplit("/", 1)[-1]
    await browsers.password_only("alice")
    lister = await browsers.password_only("alice")
    listed = (await lister.get(f"{API}/me/sessions")).json()["sessions"]
    ids["handle"] = next(s["id"] for s in listed if not s["current"])
    ids["handle2"] = next(s["id"] for s in listed if s["current"])
    for name in ("sam", "gina"):
        await browsers.of(name)  # enrols TOTP: later calls sign in with its codes
    ada, csrf = await browsers.of("ada")
    posted = await ada.post(
        "/announcements", data={"csrf_token": csrf, "title": "Set-up", "body": "x"}
    )
    assert posted.status_code == 303, posted.text
    async with transaction(services.sessions) as session:
        ids["announcement_id"] = str(
            (await session.execute(select(Announcement.id))).scalars().first()
        )
    async with transaction(services.sessions) as session:
        failed = Notification(
            user_id=world["alice"].id, email="alice@example.test", message_id="<m@test>",
            subject="s", body_text="t", body_html="h", seqs="[]",
            state=DeliveryState.FAILED, next_attempt_at=datetime.now(UTC),
        )  # fmt: skip
        session.add(failed)
    ids["notification_id"] = str(failed.id)
    async with transaction(services.sessions) as session:
        await audit.append(session, TEST_CONTEXT, "keys.rotated")
    async with transaction(services.sessions) as session:
        [alert] = await alerts.evaluate(session, alerts.Rules())
    ids["alert_id"] = str(alert.id)
    await set_up_links(services, browsers, world)
    await set_up_records(services, browsers, world)
    await set_up_console(services, browsers, world)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_route_audits_allowed_and_refused_calls(
    http: httpx.AsyncClient, services: Services, world: World
) -> None:
    browsers = Browsers(http, Ids(world))
    await set_up(services, browsers, world)
    problems: list[str] = []
    for (method, template), entry in ROUTES.items():
        for side, call in (("allowed", entry.ok), ("refused", entry.no)):
            await forget_refusals(services)
            try:
                prepared = await prepare(browsers, method, template, call)
                after = await newest_seq(services)
                answer = await prepared.send()
            except Exception as exc:
                problems.append(f"{side} {method} {template}: {exc!r}")
                continue
            secret = (
                answer.json().get("secret")
                if "json" in answer.headers.get("content-type", "")
                and method == "POST"
                and template.endswith("/me/totp")
                else None
            )
            if secret:
                browsers.ids.totp[call.who.rpartition(":")[2]] = secret
            note_link_tokens(browsers, answer)
            events = await events_of(services, answer.headers["x-request-id"], after)
            actions = [e.action for e in events]
            status_ok = answer.status_code < 400 if side == "allowed" else True
            if call.quiet:
                if not status_ok:
                    problems.append(f"{side} {method} {template}: {answer.status_code}")
            elif (
                not status_ok
                or call.action not in actions
                or (
                    side == "refused"
                    and all(e.outcome == "success" for e in events if e.action == call.action)
                )
            ):
                problems.append(
                    f"{side} {method} {template} as {call.who}: {answer.status_code} {actions} "
                    f"(want {call.action}) {[(e.outcome, e.details) for e in events]} "
                    f"{answer.text[:120]!r}"
                )
    assert problems == [], "\n".join(problems)
    made = sum(entry.ok.action == "link.created" for entry in ROUTES.values())
    # At least every link made (answers may show a link's URL more than once elsewhere).
    assert len(browsers.ids.link_tokens) >= SET_UP_LINKS + SET_UP_DROP_LINKS + made, (
        "a link's token went unchecked"
    )
    assert await leaked_secrets(services, browsers.ids) == []


# --- the command line ------------------------------------------------------------------------

# Whoever runs the CLI holds the database credentials and the key file: there is no caller
# to refuse, so each command is called once, as its operator, with what it must leave.
CLI_UNAUDITED = {
    ("init",): "creates the data directory, keys and schema the log itself lives in",
    ("migrate",): "changes the schema, not data; runs before the app may start",
    ("serve",): "starts the server, whose requests are audited like any other",
    ("notify", "run"): "each email it sends is audited as notification.sent (tests/notify)",
    ("audit", "verify-export"): "offline: reads a file, never the database",
    ("restore",): "writes backup.restored into the fresh database it fills "
    "(tests/web/test_backup_restore.py); it refuses one that holds tables",
    ("scan", "ping"): "asks whether clamd answers; reads and changes no one's data",
}
COMMANDS: dict[tuple[str, ...], tuple[list[str], str]] = {
    ("client", "add"): (["client", "add", "Hooli"], "client.created"),
    ("client", "share"): (["client", "share", "Hooli"], "client.shared"),
    ("client", "unshare"): (["client", "unshare", "Hooli"], "client.unshared"),
    ("user", "add"): (["user", "add", "kim@example.test", "--role", "auditor"], "user.created"),
    ("token", "create"): (["token", "create", "kim@example.test"], "token.created"),
    ("token", "list"): (["token", "list", "kim@example.test"], "token.listed"),
    ("token", "revoke"): (["token", "revoke", "kim@example.test", "{token}"], "token.revoked"),
    ("keys", "rotate"): (["keys", "rotate"], "keys.rotated"),
    ("keys", "rewrap"): (["keys", "rewrap"], "keys.rewrapped"),
    ("audit", "verify"): (["audit", "verify"], "audit.verified"),
    ("audit", "key"): (["audit", "key"], "audit.key_viewed"),
    ("audit", "alerts"): (["audit", "alerts", "--once"], "alert.raised"),
    ("gc",): (["gc", "--grace-hours", "0"], "storage.collected"),
    ("fsck",): (["fsck"], "storage.checked"),
    ("backup",): (["backup", "{tmp}/backup"], "backup.created"),
    ("client", "quota"): (["client", "quota", "Hooli"], "records.viewed"),
    ("retention", "set"): (
        ["retention", "set", "Acme", "--keep-versions", "1"],
        "retention.policy_set",
    ),
    ("retention", "run"): (["retention", "run"], "retention.applied"),
    ("hold", "place"): (["hold", "place", "Hooli", "--reason", "Audit"], "hold.placed"),
    ("hold", "list"): (["hold", "list", "Hooli"], "records.viewed"),
    ("hold", "release"): (["hold", "release", "{hold}", "--reason", "Done"], "hold.released"),
    ("scan", "run"): (["scan", "run", "--once"], "quarantine.scanned"),
}


# Each command that names a client, a person or an id refuses an unknown one with exit
# status 1, and leaves the refusal as `access.denied` with the command as its route and the
# name or id as given as its target.
NOBODY = "nobody@example.test"
UNKNOWN = str(uuid.UUID(int=1))
CLI_REFUSED: list[tuple[tuple[str, ...], list[str]]] = [
    (("client", "share"), ["client", "share", "Nobody"]),
    (("client", "unshare"), ["client", "unshare", "Nobody"]),
    (("client", "quota"), ["client", "quota", "Nobody"]),
    (
        ("user", "add"),
        ["user", "add", "lee@example.test", "--role", "client", "--client", "Nobody"],
    ),
    (("token", "create"), ["token", "create", NOBODY]),
    (("token", "list"), ["token", "list", NOBODY]),
    (("token", "revoke"), ["token", "revoke", NOBODY, UNKNOWN]),
    # A person who exists (made by `user add` above), a token id that does not, or no id.
    (("token", "revoke"), ["token", "revoke", "kim@example.test", UNKNOWN]),
    (("token", "revoke"), ["token", "revoke", "kim@example.test", "not-an-id"]),
    (("retention", "set"), ["retention", "set", "Nobody", "--keep-versions", "1"]),
    (("retention", "run"), ["retention", "run", "--client", "Nobody"]),
    (("hold", "place"), ["hold", "place", "Nobody", "--reason", "Audit"]),
    (("hold", "place"), ["hold", "place", "Hooli", "--reason", "Audit", "--folder", UNKNOWN]),
    (("hold", "release"), ["hold", "release", UNKNOWN, "--reason", "Done"]),
    (("hold", "list"), ["hold", "list", "Nobody"]),
    (("fsck",), ["fsck", "--client", "Nobody"]),
]


def command_paths(group: Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, Group):
            found |= command_paths(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_every_command_has_an_entry() -> None:
    commands = command_paths(main)
    listed = set(COMMANDS) | set(CLI_UNAUDITED)
    assert sorted(commands - listed) == [], "commands without an entry in COMMANDS"
    assert sorted(listed - commands) == [], "entries for commands that no longer exist"
    assert {path for path, _ in CLI_REFUSED} <= set(COMMANDS)


@asynccontextmanager
async def _portal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(settings), startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _upload(settings: Settings, world: World, name: str, *, held: bool = False) -> None:
    scan = settings.scan.model_copy(update={"all_uploads": held})
    async with _portal(settings.model_copy(update={"scan": scan})) as http:
        put = await http.put(
            f"{API}/folders/{world.acme_folder}/files/{name}",
            content=f"{name} {uuid.uuid4()}".encode(),
            headers=world["sam"].auth,
        )
    assert put.status_code in ((202,) if held else (200, 201)), put.text


async def give_work(path: tuple[str, ...], services: Services, world: World) -> None:
    """What a command that only acts on something finds to act on, just before it runs."""
    settings = services.settings
    if path == ("keys", "rotate"):
        # A data key wrapped under the KEK about to be retired: `keys rewrap` moves it.
        await _upload(settings, world, "wrapped.txt")
    elif path == ("audit", "alerts"):
        async with transaction(services.sessions) as session:
            await people.set_role(session, SYSTEM, TEST_CONTEXT, world["gina"].id, Role.AUDITOR)
    elif path == ("gc",):
        orphan = settings.objects_path / "objects" / str(uuid.uuid4()) / str(uuid.uuid4())
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(b"left behind by a crashed upload")
    elif path == ("retention", "run"):
        for _ in range(2):  # Acme keeps one version: the older one goes
            await _upload(settings, world, "kept-once.txt")
    elif path == ("scan", "run"):
        await _upload(settings, world, "held.txt", held=True)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_command_leaves_its_event(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    # No worker of an app process may do a command's work first.
    settings = settings.model_copy(
        update={"scan": settings.scan.model_copy(update={"worker": False})}
    )
    lines = [f"data_dir = {json.dumps(str(settings.data_dir))}"]
    lines += ["[database]", f"url = {json.dumps(settings.database.url)}"]
    config = tmp_path / "clientvault.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with open_services(settings) as services:
        problems: list[str] = []
        token = hold = ""
        for path, (args, action) in COMMANDS.items():
            await give_work(path, services, world)
            after = await newest_seq(services)
            filled = [
                a.replace("{token}", token).replace("{hold}", hold).replace("{tmp}", str(tmp_path))
                for a in args
            ]
            argv = ["--config", str(config), *filled]
            result = await anyio.to_thread.run_sync(CliRunner().invoke, main, argv)
            if path == ("hold", "place"):
                hold = result.output.strip().split()[-1]  # it prints the new hold's id
            if path == ("token", "create"):
                async with transaction(services.sessions) as session:
                    found = await session.execute(
                        select(AuditEvent.target_id).where(AuditEvent.action == "token.created")
                    )
                    token = str(found.scalars().all()[-1])
            actions = [e.action for e in await events_of(services, "", after)]
            if result.exit_code != 0:
                problems.append(f"{path}: exit {result.exit_code} {result.output[-200:]!r}")
            elif action not in actions:
                problems.append(f"{path}: {actions} (want {action})")
        for path, args in CLI_REFUSED:
            await forget_refusals(services)
            after = await newest_seq(services)
            argv = ["--config", str(config), *args]
            result = await anyio.to_thread.run_sync(CliRunner().invoke, main, argv)
            events = await events_of(services, "", after)
            refusals = [
                (e.action, e.outcome, json.loads(e.details)["route"], e.target_id) for e in events
            ]
            named = next(a for a in args if a in (NOBODY, UNKNOWN, "Nobody", "not-an-id"))
            wanted = ("access.denied", "denied", " ".join(path), named)
            if result.exit_code != 1 or refusals != [wanted]:
                problems.append(f"refused {args}: exit {result.exit_code} {refusals}")
        assert problems == [], "\n".join(problems)
