"""The link panel of the document and folder pages: who sees it, the form's refusals, the
new link shown once, and revoking from the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.fixtures.app import World
from tests.fixtures.documents import put
from tests.fixtures.pages import csrf_of
from tests.fixtures.signin import sign_in


async def test_staff_create_a_link_on_the_page_see_it_once_and_revoke_it(
    http: httpx.AsyncClient, world: World
) -> None:
    document_id = await put(http, world, "sam", world.acme_folder, "terms.pdf", b"%PDF terms")
    await sign_in(http, world["sam"], second_factor=True)
    page = await http.get(f"/documents/{document_id}")
    assert 'id="share-links"' in page.text
    assert "A link expires within 30 days at most." in page.text
    csrf = csrf_of(page.text)
    action = f"/documents/{document_id}/links"

    too_far = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    refused = await http.post(action, data={"csrf_token": csrf, "expires": too_far})
    assert refused.status_code == 422
    assert 'id="link-expires"' in refused.text and 'aria-invalid="true"' in refused.text
    forged = await http.post(action, data={"csrf_token": "wrong", "expires": too_far})
    assert forged.status_code == 403

    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    made = await http.post(action, data={"csrf_token": csrf, "expires": day, "max_downloads": "2"})
    assert made.status_code == 200, made.text
    url = re.search(r'<code id="new-link"[^>]*>([^<]+)</code>', made.text)
    assert url is not None and "/s/" in url.group(1)
    token = url.group(1).rsplit("/", 1)[1]

    listed = await http.get(f"/documents/{document_id}")
    assert "Active" in listed.text and "0 / 2" in listed.text
    assert token not in listed.text  # shown once, at creation only
    link_id = re.search(r'action="/links/([0-9a-f-]+)/revoke"', listed.text)
    assert link_id is not None
    revoked = await http.post(
        f"/links/{link_id.group(1)}/revoke",
        data={"csrf_token": csrf, "next": f"/documents/{document_id}"},
    )
    assert revoked.status_code == 303
    assert revoked.headers["location"] == f"/documents/{document_id}#share-links"
    assert "Revoked" in (await http.get(f"/documents/{document_id}")).text
    assert (await http.get(f"/s/{token}")).status_code == 404


async def test_a_client_user_gets_no_link_panel_unless_the_policy_lets_clients_share(
    http: httpx.AsyncClient, world: World
) -> None:
    await sign_in(http, world["alice"], second_factor=True)
    page = await http.get(f"/folders/{world.acme_folder}")
    assert page.status_code == 200 and 'id="share-links"' not in page.text
    changed = await http.put(
        f"/api/v1/clients/{world.acme}/link-policy",
        json={"creators": "staff_and_clients"},
        headers=world["ada"].auth,
    )
    assert changed.status_code == 200
    page = await http.get(f"/folders/{world.acme_folder}")
    assert 'id="share-links"' in page.text
    assert "users create share links." in page.text
    # Upload-request links are for staff: a client user is offered no such link.
    assert 'value="upload"' not in page.text


async def test_the_form_pins_a_version_and_sets_byte_limits_in_mib(
    http: httpx.AsyncClient, world: World
) -> None:
    document_id = await put(http, world, "sam", world.acme_folder, "plan.txt", b"plan one")
    await sign_in(http, world["sam"], second_factor=True)
    await put(http, world, "sam", world.acme_folder, "plan.txt", b"plan two")
    page = await http.get(f"/documents/{document_id}")
    assert 'name="version"' in page.text and '<option value="1"' in page.text
    csrf = csrf_of(page.text)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    made = await http.post(
        f"/documents/{document_id}/links",
        data={"csrf_token": csrf, "expires": day, "version": "1"},
    )
    assert made.status_code == 200, made.text
    url = re.search(r'<code id="new-link"[^>]*>([^<]+)</code>', made.text)
    assert url is not None
    token = url.group(1).rsplit("/", 1)[1]
    # v3 arrives after the link was made: the pinned link keeps serving v1.
    await put(http, world, "sam", world.acme_folder, "plan.txt", b"plan three")
    served = await http.get(f"/s/{token}/content")
    assert served.status_code == 200 and served.content == b"plan one"
    listed = await http.get(
        "/api/v1/links", params={"document_id": document_id}, headers=world["sam"].auth
    )
    assert [link["version"] for link in listed.json()["links"]] == [1]
    # A version the document does not have is refused on the form, not silently ignored.
    missing = await http.post(
        f"/documents/{document_id}/links",
        data={"csrf_token": csrf, "expires": day, "version": "9"},
    )
    assert missing.status_code in (404, 422)

    # On the folder page, a request's largest file and total are typed in MiB.
    folder = await http.get(f"/folders/{world.acme_folder}")
    assert 'name="max_file_mib"' in folder.text and 'name="max_total_mib"' in folder.text
    made = await http.post(
        f"/folders/{world.acme_folder}/links",
        data={
            "csrf_token": csrf,
            "kind": "upload",
            "expires": day,
            "max_file_mib": "5",
            "max_total_mib": "20",
        },
    )
    assert made.status_code == 200, made.text
    assert "Largest file" in made.text and "5.2\xa0MB" in made.text  # 5 MiB, in the app's units
    listed = await http.get(
        "/api/v1/links", params={"folder_id": str(world.acme_folder)}, headers=world["sam"].auth
    )
    [link] = [link for link in listed.json()["links"] if link["kind"] == "upload"]
    assert link["max_file_bytes"] == 5 * 1024 * 1024
    assert link["max_total_bytes"] == 20 * 1024 * 1024
    refused = await http.post(
        f"/folders/{world.acme_folder}/links",
        data={"csrf_token": csrf, "kind": "upload", "expires": day, "max_file_mib": "lots"},
    )
    assert refused.status_code == 422
    assert 'id="link-max-file"' in refused.text
    assert re.search(r'id="link-max-file"[^>]*\s+aria-invalid="true"', refused.text)
