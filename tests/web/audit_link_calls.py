"""How to call the share-link routes for the completeness test (see `audit_calls`), and the
links its set-up makes for them.

A visitor of `/s/{token}` holds no account: the allowed caller holds a usable link, the
refused one a revoked, expired or unknown token. A known link's refusal is `link.refused`;
a token that matches no link is refused like any request, as `access.denied`.
"""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import httpx
from sqlalchemy import update
from sqlmodel import col

from tests.fixtures.app import World
from tests.web.audit_calls import API, LINK_PASSWORD, NEW_LINK_PASSWORD, E, no, ok
from tests.web.audit_driver import Browsers
from vault.db import transaction
from vault.links import Link
from web.services import Services

RECIPIENT = "bank@example.test"
# Within the furthest expiry allowed: the firm's 30 days, and the 14 the policy call sets.
EXPIRES = (date.today() + timedelta(days=5)).isoformat()
UNKNOWN = "x" * 43  # shaped like a token, matching no link
# A link's token wherever an answer shows one (`secrets.token_urlsafe(32)`: 43 characters).
LINK_TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{43})")
SET_UP_LINKS = 8  # the links `set_up_links` makes

LINK_CALLS: dict[tuple[str, str], E] = {
    # Staff and admins: making, listing and revoking links, and a client's link policy.
    ("POST", f"{API}/documents/{{document_id}}/links"): E(
        ok(
            "sam",
            "link.created",
            json={"expires_at": EXPIRES, "password": NEW_LINK_PASSWORD, "max_downloads": 3},
        ),
        no("alice", json={"expires_at": EXPIRES}),
    ),
    ("POST", f"{API}/folders/{{folder_id}}/links"): E(
        ok("sam", "link.created", json={"kind": "upload", "expires_at": EXPIRES}),
        no("gina", json={"kind": "upload", "expires_at": EXPIRES}),
    ),
    ("GET", f"{API}/links"): E(
        ok("sam", "link.listed", path=f"{API}/links?document_id={{document_id}}"),
        no("stranger"),
    ),
    ("DELETE", f"{API}/links/{{link_id}}"): E(ok("sam", "link.revoked"), no("gina")),
    ("GET", f"{API}/clients/{{client_id}}/link-policy"): E(
        ok("sam", "link.policy_viewed"), no("bob")
    ),
    ("PUT", f"{API}/clients/{{client_id}}/link-policy"): E(
        ok("ada", "link.policy_changed", json={"max_expiry_days": 14}),
        no("sam", json={"max_expiry_days": 3650}),
    ),
    ("POST", "/documents/{document_id}/links"): E(
        ok("sam", "link.created", form={"kind": "download", "expires": EXPIRES}),
        no("alice", form={"kind": "download", "expires": EXPIRES}),
    ),
    ("POST", "/folders/{folder_id}/links"): E(
        ok("sam", "link.created", form={"kind": "download", "expires": EXPIRES}),
        no("gina", form={"kind": "download", "expires": EXPIRES}),
    ),
    ("POST", "/links/{link_id}/revoke"): E(
        ok("sam", "link.revoked", path="/links/{link2}/revoke", form={"next": "/"}),
        no("gina", path="/links/{link2}/revoke"),
    ),
    # Visitors: a usable link, and a revoked, expired or unknown one.
    ("GET", "/s/{token}"): E(
        ok("stranger", "link.viewed", path="/s/{share_doc}"),
        no("stranger", "link.refused", path="/s/{share_revoked}"),
    ),
    ("GET", "/s/{token}/content"): E(
        ok("stranger", "link.downloaded", path="/s/{share_doc}/content"),
        no("stranger", "link.refused", path="/s/{share_expired}/content"),
    ),
    ("GET", "/s/{token}/files/{document_id}"): E(
        ok("stranger", "link.downloaded", path="/s/{share_folder}/files/{document_id}"),
        no("stranger", "link.refused", path="/s/{share_revoked}/files/{document_id}"),
    ),
    ("GET", "/s/{token}/download.zip"): E(
        ok("stranger", "link.downloaded", path="/s/{share_folder}/download.zip"),
        no("stranger", path=f"/s/{UNKNOWN}/download.zip"),
    ),
    ("POST", "/s/{token}/password"): E(
        ok(
            "stranger",
            "link.unlocked",
            path="/s/{share_pw}/password",
            form={"password": LINK_PASSWORD},
        ),
        no("stranger", path=f"/s/{UNKNOWN}/password", form={"password": LINK_PASSWORD}),
    ),
    ("POST", "/s/{token}/code"): E(
        ok("stranger", "link.code_sent", path="/s/{share_code}/code"),
        no("stranger", "link.refused", path="/s/{share_expired}/code"),
    ),
    ("POST", "/s/{token}/code/verify"): E(
        ok(
            "stranger",
            "link.unlocked",
            path="/s/{share_code}/code/verify",
            form={"code": "{link_code}"},
        ),
        no("stranger", path=f"/s/{UNKNOWN}/code/verify", form={"code": "{link_code}"}),
    ),
}


async def set_up_links(services: Services, browsers: Browsers, world: World) -> None:
    """The links the calls name: `{share_doc}` (a document), `{share_folder}` (a folder),
    `{share_pw}` (with a password), `{share_code}` (with a recipient, whose emailed code is
    `{link_code}`), `{share_revoked}`, `{share_expired}`, and `{link_id}`, `{link2}` to revoke."""
    ids, http = browsers.ids, browsers.http
    sam_api = {"Authorization": f"Bearer {world['sam'].token}"}

    async def share(target: str, **fields: object) -> tuple[str, str]:
        made = await http.post(
            f"{API}/{target}/links", json={"expires_at": EXPIRES, **fields}, headers=sam_api
        )
        assert made.status_code == 201, made.text
        [token] = LINK_TOKEN.findall(made.json()["url"])
        ids.link_tokens.add(token)
        return made.json()["id"], token

    document, folder = f"documents/{ids['document_id']}", f"folders/{world.acme_folder}"
    _, ids["share_doc"] = await share(document)
    _, ids["share_folder"] = await share(folder)
    _, ids["share_pw"] = await share(document, password=LINK_PASSWORD)
    _, ids["share_code"] = await share(document, recipient_email=RECIPIENT)
    revoked, ids["share_revoked"] = await share(folder)
    gone = await http.delete(f"{API}/links/{revoked}", headers=sam_api)
    assert gone.status_code == 204, gone.text
    expired, ids["share_expired"] = await share(document, recipient_email=RECIPIENT)
    async with transaction(services.sessions) as session:
        await session.execute(
            update(Link)
            .where(col(Link.id) == uuid.UUID(expired))
            .values(expires_at=datetime.now(UTC) - timedelta(days=1))
        )
    ids["link_id"], _ = await share(document)
    ids["link2"], _ = await share(folder)
    sent = await http.post(f"/s/{ids['share_code']}/code")
    assert sent.status_code == 200, sent.text
    ids["link_code"] = emailed_code(services)


def emailed_code(services: Services) -> str:
    """The one-time code of the newest message to the link's recipient."""
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(services.settings.outbox_path.glob("*.eml"))
    ]
    mine = [m for m in messages if isinstance(m, EmailMessage) and m["To"] == RECIPIENT]
    assert mine, "no code was emailed"
    body = mine[-1].get_body(preferencelist=("plain",))
    assert body is not None
    codes = re.findall(r"\b\d{8}\b", str(body.get_content()))
    assert codes, "no code in the message"
    return str(codes[0])


def note_link_tokens(browsers: Browsers, answer: httpx.Response) -> None:
    """Keep the tokens an answer shows (a link just made), for the check that none is logged."""
    if answer.headers.get("content-type", "").startswith(("application/json", "text/html")):
        browsers.ids.link_tokens.update(LINK_TOKEN.findall(answer.text))
