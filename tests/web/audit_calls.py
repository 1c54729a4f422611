"""How to call each route of the app for the completeness test (tests/web/
test_audit_completeness.py): the API's routes here, the pages' in `audit_page_calls`.

One entry per (method, route template): how an allowed and a refused caller call it, and
the action each call must leave among its events. Path parameters are filled from the ids
the test sets up (`{client_id}`, `{document_id}`, …), secrets as `{password_alice}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

API = "/api/v1"
DENIED = "access.denied"
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
NEW_PASSWORD = "velvet compass orchard rain"
# The passwords of share links (audit_link_calls); none may reach the log.
LINK_PASSWORD, NEW_LINK_PASSWORD = "amber lantern quiet harbour", "copper meadow distant bell"
LINK_SECRETS = (LINK_PASSWORD, NEW_LINK_PASSWORD)


@dataclass(frozen=True)
class As:
    """One call: who makes it and the action it must leave.

    `who` is a person of the world (API calls use their token, page calls their signed-in
    browser), `stranger` (no credentials), `fresh:<name>` (a browser signed in just for
    this call, for calls that end the session), `browser:<name>` (their signed-in browser,
    also for API calls that need one), or `pending:<name>` (a browser past the password
    step only). Values in `json`, `form` and `path` may name ids as `{name}`.
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
    ("OPTIONS", "/s/{token}/uploads"): "tus capabilities of a drop link, the same for everyone",
    ("GET", "/favicon.ico"): "a redirect to the static icon, the same for everyone",
}

API_CALLS: dict[tuple[str, str], E] = {
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
        ok("ada", "user.role_changed", json={"role": "staff"}), no("sam", json={"role": "admin"})
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
}
