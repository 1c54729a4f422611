"""Every route of the app and every command of the CLI leaves an audit event (issue 12, item 2).

The routes are found from the app's own router and the commands from the CLI's own command
tree; each (method, route) and each command must have an entry in `ROUTES` or `COMMANDS`,
so a route or command added later without one makes this test fail. An entry says how to
call it as an allowed caller and as a refused one, and which action each call must leave
among the events carrying the request's id. Routes that read and change nothing of anyone's
are listed in `UNAUDITED` with the reason.

Adding a route: one line, e.g.
    ("GET", "/api/v1/things/{thing_id}"): E(ok("sam", "thing.viewed"), no("bob")),
where path parameters are filled from the ids the test set up (`ids` below).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pyotp
import pytest
from click import Group
from click.testing import CliRunner
from sqlalchemy import delete
from sqlmodel import col, select
from starlette.routing import BaseRoute, Mount, Route

from notify.links import UnsubscribeLinks
from tests.fixtures.app import TEST_CONTEXT, Person, World
from tests.web.test_pages import csrf_of, enrol, invite, parse
from vault import accounts, alerts, audit, email_links
from vault.db import transaction
from vault.identity import EmailLinkPurpose
from vault.models import Announcement, AuditEvent, Role, User
from vault.notifications import DeliveryState, Notification
from vault.passwords import hash_password
from vault.refusals import RefusalWindow
from web.app import create_app
from web.cli import main
from web.services import Services, open_services
from web.settings import AlertsSettings, Settings

API = "/api/v1"
DENIED = "access.denied"
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
NEW_PASSWORD = "velvet compass orchard rain"


@dataclass(frozen=True)
class As:
    """One call: who makes it and the action it must leave.

    `who` is a person of the world (API calls use their token, page calls their signed-in
    browser), `stranger` (no credentials), or `fresh:<name>` (a browser signed in just for
    this call, for calls that end the session). Values in `json`, `form` and `path` may
    name ids as `{name}`.
    """

    who: str
    action: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    # Why this call leaves no event (it reads and changes nothing of anyone's); else "".
    quiet: str = ""


@dataclass(frozen=True)
class E:
    ok: As
    no: As


def ok(who: str, action: str, **kw: Any) -> As:
    return As(who, action, **kw)


def no(who: str, action: str = DENIED, **kw: Any) -> As:
    return As(who, action, **kw)


def quiet(who: str, why: str) -> As:
    """A call that reads and changes nothing of anyone's, so it leaves no event: `why`."""
    return As(who, "", quiet=why)


TUS = {"Tus-Resumable": "1.0.0"}
# File contents the calls send; none may reach the log.
FIRST, SECOND, TUS_BODY = b"content-one-7f3a", b"content-two-9b1c", b"tus!"
PAGE_FILE, SLIP, REPORT = b"content-page-4d2e", b"content-slip-8a6f", b"content-report-2c9d"
CONTENTS = (FIRST, SECOND, PAGE_FILE, SLIP, REPORT)
BAD_LOGIN = {"email": "alice@example.test", "password": "not her password at all"}

# Deliberately unaudited: they read and change nothing of anyone's.
UNAUDITED = {
    ("GET", "/healthz"): "liveness: answers without looking at any data",
    ("GET", "/readyz"): "readiness: touches the database and store, reads no one's data",
    ("GET", "/metrics"): "process counters, no one's data",
    ("GET", f"{API}/openapi.json"): "the public API contract, the same for everyone",
    ("GET", "/login"): "the empty sign-in form",
    ("GET", "/reset"): "the empty reset-request form",
    ("OPTIONS", f"{API}/uploads"): "tus capabilities (tus 1.0.0 §OPTIONS), the same for everyone",
}

ROUTES: dict[tuple[str, str], E] = {
    # The API: reads.
    ("GET", f"{API}/me"): E(ok("alice", "account.viewed"), no("stranger")),
    ("GET", f"{API}/clients"): E(ok("alice", "client.listed"), no("stranger")),
    ("GET", f"{API}/clients/{{client_id}}/folders"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", f"{API}/folders/{{folder_id}}"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", f"{API}/documents/{{document_id}}"): E(ok("alice", "document.viewed"), no("bob")),
    ("GET", f"{API}/documents/{{document_id}}/content"): E(
        ok("alice", "document.downloaded"), no("bob")
    ),
    ("GET", f"{API}/documents/{{document_id}}/receipts"): E(
        ok("sam", "document.receipts_viewed"), no("gina")
    ),
    ("GET", f"{API}/trash"): E(ok("sam", "trash.listed"), no("stranger")),
    ("GET", f"{API}/clients/{{client_id}}/requests"): E(ok("alice", "request.listed"), no("bob")),
    ("GET", f"{API}/requests"): E(ok("alice", "request.listed"), no("stranger")),
    ("GET", f"{API}/requests/{{request_id}}"): E(ok("alice", "request.viewed"), no("bob")),
    ("GET", f"{API}/audit"): E(ok("otto", "audit.viewed"), no("sam")),
    ("GET", f"{API}/audit/export"): E(ok("otto", "audit.exported"), no("sam")),
    ("GET", f"{API}/audit/verify"): E(ok("otto", "audit.verified"), no("sam")),
    ("GET", f"{API}/audit/alerts"): E(ok("otto", "alert.listed"), no("sam")),
    ("GET", f"{API}/audit/alerts/{{alert_id}}"): E(ok("ada", "alert.viewed"), no("sam")),
    ("GET", f"{API}/audit/checkpoint"): E(ok("otto", "audit.checkpoint_viewed"), no("sam")),
    ("GET", f"{API}/audit/checkpoint/key"): E(ok("otto", "audit.key_viewed"), no("sam")),
    ("GET", f"{API}/audit/proof/inclusion"): E(
        ok("otto", "audit.proof_viewed", path=f"{API}/audit/proof/inclusion?seq=1&tree_size=2"),
        no("sam"),
    ),
    ("GET", f"{API}/audit/proof/consistency"): E(
        ok("otto", "audit.proof_viewed", path=f"{API}/audit/proof/consistency?first=1&second=2"),
        no("sam"),
    ),
    ("GET", f"{API}/session"): E(ok("fresh:bob", "account.viewed"), no("stranger")),
    ("GET", f"{API}/me/sessions"): E(ok("fresh:alice", "account.viewed"), no("stranger")),
    ("GET", f"{API}/me/totp"): E(ok("fresh:alice", "account.viewed"), no("stranger")),
    ("GET", f"{API}/me/tokens"): E(ok("fresh:alice", "account.viewed"), no("stranger")),
    ("GET", f"{API}/me/notifications"): E(ok("alice", "account.viewed"), no("stranger")),
    ("GET", f"{API}/notifications/failed"): E(ok("ada", "notification.failed_listed"), no("sam")),
    # The API: changes.
    ("POST", f"{API}/clients"): E(
        ok("sam", "client.created", json={"name": "Initech"}), no("alice", json={"name": "Mine"})
    ),
    ("POST", f"{API}/folders"): E(
        ok("sam", "folder.created", json={"client_id": "{client_id}", "name": "Audit"}),
        no("gina", json={"client_id": "{client_id}", "name": "Audit"}),
    ),
    ("PUT", f"{API}/folders/{{folder_id}}/files/{{name:path}}"): E(
        ok("alice", "document.version_added", content=SECOND), no("bob", content=b"x")
    ),
    ("POST", f"{API}/documents/{{document_id}}/versions/{{number}}/restore"): E(
        ok("sam", "document.version_added"), no("gina")
    ),
    ("POST", f"{API}/uploads"): E(
        ok(
            "alice",
            "upload.created",
            headers={
                **TUS,
                "Upload-Length": "5",
                "Upload-Metadata": "folder_id {folder_b64},filename bmV3LnR4dA==",
            },
        ),
        no(
            "bob",
            headers={
                **TUS,
                "Upload-Length": "5",
                "Upload-Metadata": "folder_id {folder_b64},filename bmV3LnR4dA==",
            },
        ),
    ),
    ("HEAD", f"{API}/uploads/{{upload_id}}"): E(
        ok("alice", "upload.checked", headers=TUS), no("bob", headers=TUS)
    ),
    ("PATCH", f"{API}/uploads/{{upload_id}}"): E(
        ok(
            "alice",
            "document.created",
            content=TUS_BODY,
            headers={
                **TUS,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        ),
        no(
            "bob",
            content=b"ab",
            headers={
                **TUS,
                "Upload-Offset": "2",
                "Content-Type": "application/offset+octet-stream",
            },
        ),
    ),
    ("DELETE", f"{API}/uploads/{{upload_id}}"): E(
        ok("alice", "upload.terminated", path=f"{API}/uploads/{{upload2}}", headers=TUS),
        no("bob", headers=TUS),
    ),
    ("POST", f"{API}/clients/{{client_id}}/requests"): E(
        ok(
            "sam",
            "request.opened",
            json={
                "title": "Receipts",
                "due_date": "2099-01-01",
                "folder_id": "{folder_id}",
                "items": ["Bank statements"],
            },
        ),
        no(
            "gina",
            json={
                "title": "x",
                "due_date": "2099-01-01",
                "folder_id": "{folder_id}",
                "items": ["x"],
            },
        ),
    ),
    ("POST", f"{API}/requests/{{request_id}}/items/{{item_id}}/submit"): E(
        ok("alice", "request.submitted", json={"document_id": "{document_id}"}),
        no("bob", json={"document_id": "{document_id}"}),
    ),
    ("POST", f"{API}/requests/{{request_id}}/items/{{item_id}}/answer"): E(
        ok("sam", "request.answered", json={"status": "accepted"}),
        no("gina", json={"status": "accepted"}),
    ),
    ("POST", f"{API}/requests/{{request_id}}/close"): E(ok("sam", "request.closed"), no("gina")),
    ("POST", f"{API}/invitations"): E(
        ok(
            "sam",
            "user.invited",
            json={"email": "dora@example.test", "client_ids": ["{client_id}"]},
        ),
        no("alice", json={"email": "eve@example.test", "client_ids": ["{client_id}"]}),
    ),
    ("PUT", f"{API}/me/notifications/{{client_id}}"): E(
        ok("alice", "notification.preference_changed", json={"cadence": "daily"}),
        no("bob", json={"cadence": "daily"}),
    ),
    ("PUT", f"{API}/me/profile"): E(
        ok("alice", "user.profile_updated", json={"display_name": "Alice A."}),
        no("stranger", json={"display_name": "x"}),
    ),
    ("POST", f"{API}/notifications/{{notification_id}}/retry"): E(
        ok("ada", "notification.retried"), no("sam")
    ),
    ("PATCH", f"{API}/users/{{user_id}}"): E(
        ok("ada", "user.updated", json={"role": "staff"}), no("sam", json={"role": "admin"})
    ),
    ("DELETE", f"{API}/users/{{user_id}}/totp"): E(ok("ada", "mfa.reset"), no("sam")),
    ("POST", f"{API}/me/tokens"): E(
        ok("fresh:alice", "token.created", json={"name": "ci", "password": "{password_alice}"}),
        no(
            "fresh:alice",
            "auth.reauthenticate",
            json={"name": "ci", "password": "wrong wrong wrong"},
        ),
    ),
    ("DELETE", f"{API}/me/tokens/{{token_id}}"): E(ok("fresh:alice", "token.revoked"), no("bob")),
    ("POST", f"{API}/me/totp"): E(ok("browser:tess", "mfa.enrolment_started"), no("stranger")),
    ("POST", f"{API}/me/totp/confirm"): E(
        ok(
            "browser:tess",
            "mfa.enrolled",
            json={"code": "{totp_tess}", "password": "{password_tess}"},
        ),
        no(
            "browser:tess",
            "mfa.enrolled",
            json={"code": "000000", "password": "wrong wrong"},
        ),
    ),
    ("POST", f"{API}/me/recovery-codes"): E(
        ok("browser:tess", "mfa.recovery_codes_regenerated", json={"password": "{password_tess}"}),
        no("browser:tess", "auth.reauthenticate", json={"password": "wrong wrong wrong"}),
    ),
    ("DELETE", f"{API}/me/sessions/{{handle}}"): E(ok("fresh:alice", "session.revoked"), no("bob")),
    ("DELETE", f"{API}/me/sessions"): E(ok("fresh:carol", "session.revoked_all"), no("stranger")),
    ("DELETE", f"{API}/documents/{{document_id}}"): E(ok("sam", "document.deleted"), no("bob")),
    ("POST", f"{API}/documents/{{document_id}}/restore"): E(
        ok("sam", "document.restored"), no("gina")
    ),
    ("POST", f"{API}/me/password"): E(
        ok(
            "fresh:carol",
            "auth.password_changed",
            json={"current_password": "{password_carol}", "new_password": NEW_PASSWORD},
        ),
        no(
            "fresh:alice",
            "auth.password_changed",
            json={"current_password": "wrong wrong", "new_password": NEW_PASSWORD},
        ),
    ),
    # The API: signing in and out.
    ("POST", f"{API}/session"): E(
        ok(
            "stranger",
            "auth.login",
            json={"email": "bob@example.test", "password": "{password_bob}"},
        ),
        no("stranger", "auth.login", json=BAD_LOGIN),
    ),
    ("POST", f"{API}/session/totp"): E(
        ok("pending:gina", "auth.mfa", json={"code": "{totp_gina}"}),
        no("stranger", json={"code": "000000"}),
    ),
    ("DELETE", f"{API}/session"): E(ok("fresh:bob", "auth.logout"), no("stranger")),
    ("POST", f"{API}/password-reset"): E(
        ok("stranger", "auth.reset_requested", json={"email": "alice@example.test"}),
        no("stranger", "auth.reset_requested", json={"email": "nobody@example.test"}),
    ),
    ("POST", f"{API}/password-reset/confirm"): E(
        ok("stranger", "auth.password_reset", json={"token": "{reset}", "password": NEW_PASSWORD}),
        no("stranger", "auth.link_refused", json={"token": "x" * 43, "password": NEW_PASSWORD}),
    ),
    ("POST", f"{API}/invitations/accept"): E(
        ok(
            "stranger",
            "user.invitation_accepted",
            json={"token": "{invite}", "password": NEW_PASSWORD},
        ),
        no("stranger", "auth.link_refused", json={"token": "x" * 43, "password": NEW_PASSWORD}),
    ),
    # The pages: reads.
    ("GET", "/"): E(ok("alice", "client.listed"), no("stranger")),
    ("GET", "/account"): E(ok("alice", "account.viewed"), no("stranger")),
    ("GET", "/clients/{client_id}"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", "/clients/{client_id}/search"): E(
        ok("alice", "folder.searched", path="/clients/{client_id}/search?q=tax"), no("bob")
    ),
    ("GET", "/folders/{folder_id}"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", "/folders/{folder_id}/download.zip"): E(ok("alice", "folder.downloaded"), no("bob")),
    ("GET", "/documents/{document_id}"): E(ok("alice", "document.viewed"), no("bob")),
    ("GET", "/trash"): E(ok("sam", "trash.listed"), no("stranger")),
    ("GET", "/requests"): E(ok("alice", "request.listed"), no("stranger")),
    ("GET", "/requests/new"): E(ok("sam", "client.listed"), no("alice")),
    ("GET", "/requests/{request_id}"): E(ok("alice", "request.viewed"), no("bob")),
    ("GET", "/publish"): E(ok("sam", "client.listed"), no("alice")),
    ("GET", "/announcements"): E(ok("alice", "announcement.listed"), no("stranger")),
    ("GET", "/audit/alerts"): E(ok("otto", "alert.listed"), no("alice")),
    ("GET", "/audit/alerts/{alert_id}"): E(ok("ada", "alert.viewed"), no("sam")),
    ("GET", "/login/totp"): E(
        quiet("pending:sam", "the code prompt: a form, nothing read"), no("stranger")
    ),
    ("GET", "/login/enrol"): E(ok("pending:hal", "mfa.enrolment_started"), no("stranger")),
    ("GET", "/invite/{token}"): E(
        ok("stranger", "auth.link_viewed", path="/invite/{invite2}"),
        no("stranger", "auth.link_refused", path="/invite/" + "x" * 43),
    ),
    ("GET", "/reset/{token}"): E(
        ok("stranger", "auth.link_viewed", path="/reset/{reset2}"),
        no("stranger", "auth.link_refused", path="/reset/" + "x" * 43),
    ),
    ("GET", "/unsubscribe/{token}"): E(
        ok("stranger", "notification.unsubscribe_viewed", path="/unsubscribe/{unsubscribe}"),
        no("stranger", path="/unsubscribe/" + "x" * 43),
    ),
    # The pages: changes.
    ("POST", "/clients/{client_id}/folders"): E(
        ok("sam", "folder.created", form={"name": "Pg"}), no("gina", form={"name": "Pg"})
    ),
    ("POST", "/folders/{folder_id}/folders"): E(
        ok("sam", "folder.created", form={"name": "Sub"}), no("gina", form={"name": "Sub"})
    ),
    ("POST", "/folders/{folder_id}/upload"): E(
        ok("alice", "document.created", files={"file": ("page.txt", PAGE_FILE)}),
        no("bob", files={"file": ("page.txt", PAGE_FILE)}),
    ),
    ("POST", "/documents/{document_id}/versions/{number}/restore"): E(
        ok("sam", "document.version_added"), no("gina")
    ),
    ("POST", "/requests/new"): E(
        ok(
            "sam",
            "request.opened",
            form={
                "client": "{client_id}",
                "folder": "{folder_id}",
                "title": "Pg request",
                "message": "",
                "due_date": "2099-01-01",
                "recurrence": "none",
                "items": "Payslips",
            },
        ),
        no(
            "gina",
            form={
                "client": "{client_id}",
                "folder": "{folder_id}",
                "title": "x",
                "message": "",
                "due_date": "2099-01-01",
                "recurrence": "none",
                "items": "x",
            },
        ),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/upload"): E(
        ok(
            "alice",
            "request.submitted",
            path="/requests/{request2}/items/{item2}/upload",
            files={"file": ("slip.txt", SLIP)},
        ),
        no("bob", files={"file": ("slip.txt", SLIP)}),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/reject"): E(
        ok(
            "sam",
            "request.answered",
            path="/requests/{request2}/items/{item3}/reject",
            form={"reason": "blurred"},
        ),
        no("gina", form={"reason": "x"}),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/accept"): E(
        ok("sam", "request.answered", path="/requests/{request2}/items/{item2}/accept"), no("gina")
    ),
    ("POST", "/requests/{request_id}/close"): E(
        ok("sam", "request.closed", path="/requests/{request2}/close"), no("gina")
    ),
    ("POST", "/publish"): E(
        ok(
            "sam",
            "document.created",
            form={"clients": "{client_id}", "folder": "Reports", "message": ""},
            files={"files": ("report.txt", REPORT)},
        ),
        no("alice", files={"files": ("report.txt", REPORT)}),
    ),
    ("POST", "/announcements"): E(
        ok("ada", "announcement.posted", form={"title": "Closed Friday", "body": "Holiday"}),
        no("alice", form={"title": "x", "body": "x"}),
    ),
    ("POST", "/announcements/{announcement_id}/withdraw"): E(
        ok("ada", "announcement.withdrawn"), no("alice")
    ),
    ("POST", "/account/profile"): E(
        ok(
            "alice",
            "user.profile_updated",
            form={"display_name": "Alice", "timezone": "UTC", "locale": "en"},
        ),
        no("stranger", form={"display_name": "x"}),
    ),
    ("POST", "/account/notifications"): E(
        ok(
            "alice",
            "notification.preference_changed",
            form={"client_id": "{client_id}", "cadence": "hourly"},
        ),
        no("bob", form={"client_id": "{client_id}", "cadence": "daily"}),
    ),
    ("POST", "/account/invite"): E(
        ok(
            "sam",
            "user.invited",
            form={"email": "fay@example.test", "role": "client", "client_id": "{client_id}"},
        ),
        no("alice", form={"email": "gus@example.test", "role": "client"}),
    ),
    ("POST", "/account/tokens"): E(
        ok(
            "bob",
            "token.created",
            form={"name": "pg", "scope": "read", "days": "30", "password": "{password_bob}"},
        ),
        no(
            "bob",
            "auth.reauthenticate",
            form={"name": "pg", "scope": "read", "days": "30", "password": "wrong wrong"},
        ),
    ),
    ("POST", "/account/tokens/{token_id}/revoke"): E(
        ok("alice", "token.revoked", path="/account/tokens/{token2}/revoke"), no("bob")
    ),
    ("POST", "/account/recovery-codes"): E(
        ok("sam", "mfa.recovery_codes_regenerated", form={"password": "{password_sam}"}),
        no("sam", "auth.reauthenticate", form={"password": "wrong wrong"}),
    ),
    ("POST", "/account/sessions/{handle}/end"): E(
        ok("alice", "session.revoked", path="/account/sessions/{handle2}/end"), no("bob")
    ),
    ("POST", "/account/sessions/end-others"): E(ok("alice", "session.revoked_all"), no("stranger")),
    ("POST", "/documents/{document_id}/trash"): E(ok("sam", "document.deleted"), no("bob")),
    ("POST", "/trash/{document_id}/restore"): E(ok("sam", "document.restored"), no("gina")),
    ("POST", "/account/password"): E(
        ok(
            "fresh:dave",
            "auth.password_changed",
            form={
                "current_password": "{password_dave}",
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        ),
        no(
            "alice",
            "auth.password_changed",
            form={
                "current_password": "wrong wrong",
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        ),
    ),
    ("POST", "/language"): E(
        ok("alice", "user.profile_updated", form={"lang": "fa", "next": "/"}),
        no("stranger", form={"lang": "fa"}, headers={"Origin": "http://evil.example"}),
    ),
    ("POST", "/unsubscribe/{token}"): E(
        ok("stranger", "notification.preference_changed", path="/unsubscribe/{unsubscribe}"),
        no("stranger", path="/unsubscribe/" + "x" * 43),
    ),
    # The pages: signing in and out.
    ("POST", "/login"): E(
        ok(
            "stranger",
            "auth.login",
            form={"email": "bob@example.test", "password": "{password_bob}"},
        ),
        no("stranger", "auth.login", form=BAD_LOGIN),
    ),
    ("POST", "/login/totp"): E(
        ok("pending:sam", "auth.mfa", form={"code": "{totp_sam}"}),
        no("pending:sam", "auth.mfa", form={"code": "000000"}),
    ),
    ("POST", "/login/enrol"): E(
        ok("pending:hal", "mfa.enrolled", form={"code": "{totp_hal}"}),
        no("pending:ivan", "mfa.enrolled", form={"code": "000000"}),
    ),
    ("POST", "/logout"): E(ok("fresh:bob", "auth.logout"), no("stranger")),
    ("POST", "/invite/{token}"): E(
        ok(
            "stranger",
            "user.invitation_accepted",
            path="/invite/{invite2}",
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
        no(
            "stranger",
            "auth.link_refused",
            path="/invite/" + "x" * 43,
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
    ),
    ("POST", "/reset/{token}"): E(
        ok(
            "stranger",
            "auth.password_reset",
            path="/reset/{reset2}",
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
        no(
            "stranger",
            "auth.link_refused",
            path="/reset/" + "x" * 43,
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
    ),
    ("POST", "/reset"): E(
        ok("stranger", "auth.reset_requested", form={"email": "alice@example.test"}),
        no("stranger", "auth.reset_requested", form={"email": "nobody@example.test"}),
    ),
}


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


# --- running the table ---------------------------------------------------------------------


class Ids(dict[str, str]):
    """The ids and secrets the calls name: `{folder_id}`, `{password_alice}`, `{totp_sam}`."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.people: dict[str, Person] = dict(world.people)
        self.totp: dict[str, str] = {}
        self.used_codes: set[tuple[str, str]] = set()

    def __missing__(self, key: str) -> str:
        kind, _, name = key.partition("_")
        if kind == "password":
            return self.people[name].password
        if kind == "totp":
            totp = pyotp.TOTP(self.totp[name])
            # A code is accepted once: later ones come from the following steps.
            for step in range(4):
                code = totp.at(time.time() + 30 * step)
                if (name, code) not in self.used_codes:
                    self.used_codes.add((name, code))
                    return code
        raise KeyError(key)

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format_map(self)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


@dataclass
class Browsers:
    http: httpx.AsyncClient
    ids: Ids
    signed_in: dict[str, tuple[httpx.AsyncClient, str]] = field(default_factory=dict)

    def new(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.http._transport, base_url="http://testserver")

    async def password_only(self, name: str) -> httpx.AsyncClient:
        person = self.ids.people[name]
        browser = self.new()
        answer = await browser.post(
            "/login", data={"email": person.email, "password": person.password}
        )
        assert answer.status_code == 303, (name, answer.text)
        return browser

    async def sign_in(self, name: str) -> tuple[httpx.AsyncClient, str]:
        """A browser of `name`, fully signed in (enrolling TOTP on the way where needed)."""
        browser = await self.password_only(name)
        step = (await browser.get("/account")).headers.get("location")
        if step == "/login/enrol":
            totp, _ = await enrol(browser)
            self.ids.totp[name] = totp.secret
            self.ids.used_codes.add((name, totp.now()))
        elif step == "/login/totp":
            form = await browser.get("/login/totp")
            done = await browser.post(
                "/login/totp",
                data={"csrf_token": csrf_of(form.text), "code": self.ids[f"totp_{name}"]},
            )
            assert done.status_code == 303, done.text
        return browser, csrf_of((await browser.get("/account")).text)

    async def of(self, name: str) -> tuple[httpx.AsyncClient, str]:
        if name not in self.signed_in:
            self.signed_in[name] = await self.sign_in(name)
        return self.signed_in[name]


@dataclass
class Prepared:
    client: httpx.AsyncClient
    method: str
    path: str
    kwargs: dict[str, Any]

    async def send(self) -> httpx.Response:
        return await self.client.request(self.method, self.path, **self.kwargs)


async def prepare(browsers: Browsers, method: str, template: str, call: As) -> Prepared:
    """The request of `call`, its caller signed in already (so that is not counted)."""
    ids = browsers.ids
    path = ids.fill(call.path or PARAM.sub(lambda m: "{" + m.group(1) + "}", template))
    headers = ids.fill(dict(call.headers))
    needs_code = "{totp_" in json.dumps(call.form or {})
    form = ids.fill(call.form) if call.form is not None and not needs_code else None
    who, _, mode = call.who.partition(":")[::-1] if ":" in call.who else (call.who, "", "")
    client = browsers.new()
    is_api = template.startswith(API)
    if mode == "fresh":
        client, csrf = await browsers.sign_in(who)
    elif mode == "pending":
        client, csrf = await browsers.password_only(who), ""
        if is_api:
            csrf = (await client.get(f"{API}/session")).json()["csrf_token"]
    elif mode == "browser":
        client, csrf = await browsers.of(who)
    elif who != "stranger" and is_api:
        headers["Authorization"] = f"Bearer {ids.people[who].token}"
        csrf = ""
    elif who != "stranger":
        client, csrf = await browsers.of(who)
    else:
        csrf = ""
    if needs_code:
        # The code comes from the key the enrolment or sign-in step shows this browser.
        shown = await client.get(template)
        csrf = csrf_of(shown.text)
        if "totp-secret" in shown.text:
            ids.totp[who] = parse(shown.text).ids["totp-secret"].strip()
        form = ids.fill(call.form)
    elif mode == "pending" and method == "POST" and not is_api:
        csrf = csrf_of((await client.get(template)).text)
    if is_api and mode:
        headers["X-CSRF-Token"] = csrf
    data: dict[str, str] | None = None
    if not is_api and method == "POST":
        # The token first: multipart forms are checked before their files are read.
        data = {**({"csrf_token": csrf} if csrf else {}), **(form or {})}
    return Prepared(
        client,
        method,
        path,
        {
            "headers": headers,
            "json": ids.fill(call.json) if call.json is not None else None,
            "data": data,
            "files": call.files,
            "content": call.content,
        },
    )


async def events_of(services: Services, request_id: str, after: int) -> list[AuditEvent]:
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(col(AuditEvent.seq) > after).order_by(col(AuditEvent.seq))
        )
        # Not filtered on details.request_id: the request.* events use that key for the
        # document request's id. Calls run one at a time, so what follows is theirs.
        return list(rows.scalars().all())


async def newest_seq(services: Services) -> int:
    async with transaction(services.sessions) as session:
        rows = await session.execute(select(AuditEvent.seq).order_by(col(AuditEvent.seq).desc()))
        return rows.scalars().first() or 0


async def forget_refusals(services: Services) -> None:
    # Each refusal here must be written one by one, not folded into a flood summary.
    async with transaction(services.sessions) as session:
        await session.execute(delete(RefusalWindow))


async def leaked_secrets(services: Services, ids: Ids) -> list[str]:
    """The passwords, tokens, TOTP keys, link secrets and file contents any event holds."""
    secrets = {NEW_PASSWORD, *ids.totp.values(), *(c.decode() for c in CONTENTS)}
    secrets |= {p.password for p in ids.people.values()} | {p.token for p in ids.people.values()}
    secrets |= {ids[k] for k in ("reset", "reset2", "invite", "invite2", "unsubscribe")}
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(AuditEvent))).scalars().all()
    return [
        f"{e.seq} {e.action}"
        for e in rows
        for secret in secrets
        if secret and secret in json.dumps(e.model_dump(), default=str)
    ]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The set-up raises an alert itself; the in-app evaluator would race it for the events.
    return settings.model_copy(update={"alerts": AlertsSettings(worker=False)})


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
        await audit.record(session, TEST_CONTEXT, "keys.rotated")
    async with transaction(services.sessions) as session:
        [alert] = await alerts.evaluate(session, alerts.Rules())
    ids["alert_id"] = str(alert.id)


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
    ("gc",): (["gc"], "storage.collected"),
    ("fsck",): (["fsck"], "storage.checked"),
}


# Audited when they change something; on this empty store there is nothing to rewrap,
# collect or alert about, and a run that changed nothing writes nothing.
CLI_IDLE = {("keys", "rewrap"), ("gc",), ("audit", "alerts")}


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_command_leaves_its_event(settings: Settings, tmp_path: Path) -> None:
    lines = [f"data_dir = {json.dumps(str(settings.data_dir))}"]
    lines += ["[database]", f"url = {json.dumps(settings.database.url)}"]
    config = tmp_path / "clientvault.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with open_services(settings) as services:
        problems: list[str] = []
        token = ""
        for path, (args, action) in COMMANDS.items():
            after = await newest_seq(services)
            argv = ["--config", str(config), *[a.replace("{token}", token) for a in args]]
            result = await anyio.to_thread.run_sync(CliRunner().invoke, main, argv)
            if path == ("token", "create"):
                async with transaction(services.sessions) as session:
                    found = await session.execute(
                        select(AuditEvent.target_id).where(AuditEvent.action == "token.created")
                    )
                    token = str(found.scalars().all()[-1])
            actions = [e.action for e in await events_of(services, "", after)]
            if result.exit_code != 0:
                problems.append(f"{path}: exit {result.exit_code} {result.output[-200:]!r}")
            elif path not in CLI_IDLE and action not in actions:
                problems.append(f"{path}: {actions} (want {action})")
        assert problems == [], "\n".join(problems)
