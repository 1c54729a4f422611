"""How to call the records-management, quarantine and link-drop routes for the completeness
test (see `audit_calls`), and what its set-up makes for them.

Records (quotas, retention, legal holds) are for administrators: staff are refused (403 or,
on the pages, 404), and both refusals leave `access.denied`. A drop through an upload link
is held for a scan (the `scan_drops` policy defaults to on), which gives the quarantine
routes their held versions. The calls run in the order listed: the held versions are
decided and the drops finished before any legal hold stands.
"""

from __future__ import annotations

import base64
import uuid

from sqlmodel import col, select

from tests.fixtures.app import World
from tests.web.audit_calls import API, TUS, TUS_BODY, E, no, ok
from tests.web.audit_driver import Browsers
from tests.web.audit_link_calls import EXPIRES, LINK_TOKEN, UNKNOWN
from vault.db import transaction
from vault.quarantine import HeldVersion
from web.services import Services

SET_UP_DROP_LINKS = 1  # the upload links `set_up_records` makes
DROPPER = {"uploader_name": "Dana Banker", "uploader_email": "dana@bank.example"}
DROP_META = ",".join(
    f"{k} {base64.b64encode(v.encode()).decode()}"
    for k, v in {"filename": "drop.txt", **DROPPER}.items()
)
DROP_FILE = b"content-drop-5e1b"
PATCH = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
BASE = "/admin/clients/{client_id}/records"
# Legal holds go on Globex, whose files no other call touches: a hold on Acme would refuse
# the deletions other tables' calls make there, whatever order the tables run in.
HELD, HOLDS_API = "/admin/clients/{globex_id}/records", f"{API}/clients/{{globex_id}}/holds"

RECORDS_CALLS: dict[tuple[str, str], E] = {
    # Visitors dropping files through an upload link; an unknown token names no link.
    ("POST", "/s/{token}/uploads"): E(
        ok(
            "stranger",
            "link.drop_started",
            path="/s/{share_drop}/uploads",
            headers={**TUS, "Upload-Length": "5", "Upload-Metadata": DROP_META},
        ),
        no(
            "stranger",
            path=f"/s/{UNKNOWN}/uploads",
            headers={**TUS, "Upload-Length": "5", "Upload-Metadata": DROP_META},
        ),
    ),
    ("HEAD", "/s/{token}/uploads/{upload_id}"): E(
        ok("stranger", "upload.checked", path="/s/{share_drop}/uploads/{drop_upload}", headers=TUS),
        no("stranger", path=f"/s/{UNKNOWN}/uploads/{{drop_upload}}", headers=TUS),
    ),
    ("PATCH", "/s/{token}/uploads/{upload_id}"): E(
        ok(
            "stranger",
            "link.dropped",
            path="/s/{share_drop}/uploads/{drop_upload}",
            content=TUS_BODY,
            headers=PATCH,
        ),
        no(
            "stranger",
            path=f"/s/{UNKNOWN}/uploads/{{drop_upload2}}",
            content=TUS_BODY,
            headers=PATCH,
        ),
    ),
    ("DELETE", "/s/{token}/uploads/{upload_id}"): E(
        ok(
            "stranger",
            "upload.terminated",
            path="/s/{share_drop}/uploads/{drop_upload2}",
            headers=TUS,
        ),
        no("stranger", path=f"/s/{UNKNOWN}/uploads/{{drop_upload2}}", headers=TUS),
    ),
    ("POST", "/s/{token}/uploads/form"): E(
        ok(
            "stranger",
            "link.dropped",
            path="/s/{share_drop}/uploads/form",
            form=DROPPER,
            files={"file": ("form.txt", DROP_FILE)},
        ),
        no(
            "stranger",
            path=f"/s/{UNKNOWN}/uploads/form",
            form=DROPPER,
            files={"file": ("form.txt", DROP_FILE)},
        ),
    ),
    # Staff deciding held versions; a client member may not see them.
    ("POST", "/quarantine/{version_id}/release"): E(
        ok("sam", "quarantine.released", path="/quarantine/{held1}/release"),
        no("alice", path="/quarantine/{held2}/release"),
    ),
    ("POST", "/quarantine/{version_id}/delete"): E(
        ok("sam", "quarantine.deleted", path="/quarantine/{held2}/delete"),
        no("alice", path="/quarantine/{held3}/delete"),
    ),
    # Administrators: usage, quota, retention and legal holds through the API.
    ("GET", f"{API}/clients/{{client_id}}/usage"): E(ok("sam", "records.viewed"), no("bob")),
    ("PUT", f"{API}/clients/{{client_id}}/quota"): E(
        ok("ada", "quota.set", json={"quota_bytes": 10**9}),
        no("sam", json={"quota_bytes": 1}),
    ),
    ("GET", f"{API}/clients/{{client_id}}/retention"): E(ok("ada", "records.viewed"), no("sam")),
    ("PUT", f"{API}/clients/{{client_id}}/retention"): E(
        ok("ada", "retention.policy_set", json={"keep_versions": 50}),
        no("sam", json={"keep_versions": 1}),
    ),
    ("GET", f"{API}/clients/{{client_id}}/retention/plan"): E(
        ok("ada", "records.viewed"), no("sam")
    ),
    ("GET", f"{API}/clients/{{client_id}}/holds"): E(ok("ada", "records.viewed"), no("sam")),
    ("POST", f"{API}/clients/{{client_id}}/holds"): E(
        ok("ada", "hold.placed", path=HOLDS_API, json={"reason": "Audit of 2026"}),
        no("gina", path=HOLDS_API, json={"reason": "Audit of 2026"}),
    ),
    ("POST", f"{API}/holds/{{hold_id}}/release"): E(
        ok("ada", "hold.released", json={"reason": "Audit closed"}),
        no("sam", path=f"{API}/holds/{{hold2}}/release", json={"reason": "Audit closed"}),
    ),
    # The same on the records page.
    ("GET", BASE): E(ok("ada", "records.viewed"), no("sam")),
    ("POST", f"{BASE}/quota"): E(
        ok("ada", "quota.set", form={"quota": str(10**9)}), no("sam", form={"quota": "1"})
    ),
    ("POST", f"{BASE}/retention"): E(
        ok("ada", "retention.policy_set", form={"scope": "", "keep_versions": "40"}),
        no("sam", form={"scope": "", "keep_versions": "1"}),
    ),
    ("POST", f"{BASE}/holds"): E(
        ok("ada", "hold.placed", path=f"{HELD}/holds", form={"scope": "", "reason": "Subpoena"}),
        no("gina", path=f"{HELD}/holds", form={"scope": "", "reason": "Subpoena"}),
    ),
    ("POST", f"{BASE}/holds/{{hold_id}}/release"): E(
        ok("ada", "hold.released", path=f"{HELD}/holds/{{hold2}}/release", form={"reason": "Done"}),
        no("gina", path=f"{HELD}/holds/{{hold3}}/release", form={"reason": "Done"}),
    ),
}


async def set_up_records(services: Services, browsers: Browsers, world: World) -> None:
    """An upload link `{share_drop}` with two tus drops begun (`{drop_upload}`,
    `{drop_upload2}`), three held versions `{held1}`..`{held3}`, and three standing legal
    holds `{hold_id}`..`{hold3}`."""
    ids, http = browsers.ids, browsers.http
    ids["globex_id"] = str(world.globex)
    sam_api = {"Authorization": f"Bearer {world['sam'].token}"}
    ada_api = {"Authorization": f"Bearer {world['ada'].token}"}
    made = await http.post(
        f"{API}/folders/{world.acme_folder}/links",
        json={"kind": "upload", "expires_at": EXPIRES},
        headers=sam_api,
    )
    assert made.status_code == 201, made.text
    [token] = LINK_TOKEN.findall(made.json()["url"])
    ids.link_tokens.add(token)
    ids["share_drop"] = token
    for key in ("drop_upload", "drop_upload2"):
        begun = await http.post(
            f"/s/{token}/uploads",
            headers={**TUS, "Upload-Length": str(len(TUS_BODY)), "Upload-Metadata": DROP_META},
        )
        assert begun.status_code == 201, begun.text
        ids[key] = begun.headers["location"].rsplit("/", 1)[-1]
    for name in ("one.txt", "two.txt", "three.txt"):
        sent = await http.post(
            f"/s/{token}/uploads/form", data=DROPPER, files={"file": (name, DROP_FILE)}
        )
        assert sent.status_code == 200, sent.text
    async with transaction(services.sessions) as session:
        rows = await session.execute(
            select(HeldVersion.version_id).order_by(col(HeldVersion.created_at))
        )
        held: list[uuid.UUID] = list(rows.scalars().all())
    assert len(held) == 3, held
    ids.update(held1=str(held[0]), held2=str(held[1]), held3=str(held[2]))
    for key in ("hold_id", "hold2", "hold3"):
        placed = await http.post(
            f"{API}/clients/{world.globex}/holds", json={"reason": "Set-up"}, headers=ada_api
        )
        assert placed.status_code == 201, placed.text
        ids[key] = placed.json()["id"]
