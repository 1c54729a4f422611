"""The server answers as /api/v1/openapi.json says it does: schemathesis generates requests
from the document, valid and invalid, and checks each answer against it.

Hypothesis runs in a worker thread; the requests go to the app on the test's own event loop,
where the app and its database were started."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.app import World
from tests.fixtures.documents import API, put
from tests.fixtures.notify import failed_email
from tests.fixtures.request_uploads import open_request
from tests.fixtures.tus import create as tus_create
from vault.audit import alerts
from vault.audit.alerts import Rules
from vault.db import transaction
from web.services import Services

# tus bodies are bytes like any octet stream.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

# Generating and checking hundreds of requests takes half a minute: the full suite runs it,
# the fast lane between edits does not.
pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Refusals of invalid data besides schemathesis's default ones: tus answers a missing or
# foreign Tus-Resumable with 412 (tus 1.0.0 §Tus-Resumable), and a body past a limit is 413.
REJECTIONS = ["400", "401", "403", "404", "405", "409", "412", "413", "415", "422", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
)
# Examples per operation and mode: enough to reach each status of an operation's shape,
# few enough for the whole run to stay well under a minute and a half on a busy machine.
EXAMPLES = 6

# operationId: why it is not generated against.
_PUBLIC = "served outside /api/v1, for a real token: test_link_answers_are_what_the_document_says"
EXCLUDED: dict[str, str] = dict.fromkeys(
    (
        "link_page",
        "link_content",
        "link_uploads_options",
        "link_uploads_create",
        "link_uploads_head",
        "link_uploads_patch",
        "link_uploads_delete",
    ),
    _PUBLIC,
)


def _examples(strategy: Any, send: Callable[[Any], None]) -> Callable[[], None]:
    """A test sending `EXAMPLES` cases of `strategy`, the same ones on every run."""

    @given(st.data())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(data: st.DataObject) -> None:
        send(data.draw(strategy))

    return check


def _run(
    schema: Any,
    loop: asyncio.AbstractEventLoop,
    http: httpx.AsyncClient,
    ids: dict[str, str],
    auth: dict[str, str],
) -> tuple[list[str], dict[str, set[int]]]:
    """The failed checks, and the statuses each operation answered with."""
    failures: list[str] = []
    answers: dict[str, set[int]] = {}

    def send(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url=f"http://testserver{API}")
        request = {k: v for k, v in kwargs.items() if k in {"method", "url", "headers", "params"}}
        for key in ("json", "content", "data"):
            if key in kwargs:
                request["json" if key == "json" else "content"] = kwargs[key]
        future = asyncio.run_coroutine_threadsafe(http.request(**request), loop)
        response = future.result(timeout=60)
        answers.setdefault(case.operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # every failing operation is reported, not the first
            for failure in group.exceptions:
                failures.append(
                    f"{case.operation.label} [{case.meta.generation.mode.value}] "
                    f"{response.status_code}: {failure.title}: {failure.message}"
                )

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") in EXCLUDED:
            continue
        path_ids = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, path_parameters=path_ids, headers=auth)

            check = _examples(strategy, send)
            try:
                check()
            except Unsatisfiable:
                # Nothing of the operation can be made invalid: no parameters, no body.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return failures, answers


async def _created(http: httpx.AsyncClient, path: str, auth: dict[str, str], **body: Any) -> Any:
    response = await http.post(f"{API}{path}", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def _real_ids(http: httpx.AsyncClient, world: World, services: Services) -> dict[str, str]:
    """An id of each kind a path names, of a thing that exists, so that generated requests
    reach past the lookup to the answers of a found resource. Made through the API where
    a call makes one; a document request as the other request tests open it, and a failed
    email as delivery leaves it in the outbox."""
    auth = world["ada"].auth
    document_id = await put(http, world, "ada", world.acme_folder, "report.pdf", b"%PDF-1.7\n")
    request_id, [item_id] = await open_request(services, world)
    template = await _created(
        http, "/request-templates", auth, name="Payroll", title="Payroll", items=["P60"]
    )
    hold = await _created(http, f"/clients/{world.acme}/holds", auth, reason="Litigation")
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    link = await _created(http, f"/documents/{document_id}/links", auth, expires_at=expires)
    upload = await tus_create(http, auth, world.acme_folder, 10)
    # A reset second factor is a privileged change: the rules raise an alert for it.
    reset = await http.delete(f"{API}/users/{world['sam'].id}/totp", headers=auth)
    assert reset.status_code == 204, reset.text
    async with transaction(services.sessions) as session:
        [alert] = await alerts.evaluate(session, Rules())
        failed = failed_email(world["alice"], world.acme)
        session.add(failed)
    return {
        "client_id": str(world.acme),
        "folder_id": str(world.acme_folder),
        "document_id": document_id,
        # Not the caller: an admin switching itself off would leave only 401s to check.
        "user_id": str(world["sam"].id),
        "number": "1",
        "request_id": str(request_id),
        "item_id": str(item_id),
        "template_id": template["id"],
        "hold_id": hold["id"],
        "link_id": link["id"],
        "upload_id": upload.headers["location"].rsplit("/", 1)[1],
        "alert_id": str(alert.id),
        "notification_id": str(failed.id),
    }


async def test_the_server_answers_as_its_document_says(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    document = (await http.get(f"{API}/openapi.json")).json()
    ids = await _real_ids(http, world, services)
    named = {p for path in document["paths"] for p in re.findall(r"\{(\w+)\}", path)}
    # Not supplied: sessions and tokens are the caller's own and session-only (Bearer gets
    # 403 before any lookup); a file name is generated like any other value; a visitor's
    # /s/{token} is checked with real links in the next test.
    assert named - set(ids) == {"handle", "token_id", "name", "token"}, named - set(ids)
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    failures, answers = await asyncio.to_thread(
        _run, schema, asyncio.get_running_loop(), http, ids, world["ada"].auth
    )
    assert not failures, "\n\n".join(failures)
    # Each real id reached past its lookup: some operation naming it succeeded or found the
    # thing in a conflicting state (a 400 or 422 may come before the lookup, a 404 is none).
    unreached = [
        name
        for name in ids
        if not any(
            status < 300 or status == 409
            for label, statuses in answers.items()
            if f"{{{name}}}" in label
            for status in statuses
        )
    ]
    assert not unreached, unreached


async def test_link_answers_are_what_the_document_says(
    http: httpx.AsyncClient, world: World
) -> None:
    """Real links (generated bodies seldom carry a valid expiry): the 201 with its url and
    limits, the listing without it, and a visitor's tus creation at /s/{token}/uploads."""
    document = (await http.get(f"{API}/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    document_id = await put(http, world, "ada", world.acme_folder, "deed.pdf", b"%PDF-1.7\n")
    expires = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    auth = world["ada"].auth
    shared = await http.post(
        f"{API}/documents/{document_id}/links",
        json={"expires_at": expires, "max_downloads": 3},
        headers=auth,
    )
    dropbox = await http.post(
        f"{API}/folders/{world.acme_folder}/links",
        json={"kind": "upload", "expires_at": expires, "max_files": 2, "max_total_bytes": 9000},
        headers=auth,
    )
    for response, path in (
        (shared, "/documents/{document_id}/links"),
        (dropbox, "/folders/{folder_id}/links"),
    ):
        assert response.status_code == 201, response.text
        assert response.json()["url"].rsplit("/", 2)[-2] == "s"
        schema[path]["POST"].validate_response(response)
    assert dropbox.json()["max_total_bytes"] == 9000 and dropbox.json()["files_received"] == 0
    listed = await http.get(
        f"{API}/links", params={"folder_id": str(world.acme_folder)}, headers=auth
    )
    schema["/links"]["GET"].validate_response(listed)
    assert "url" not in listed.json()["links"][0]

    token = dropbox.json()["url"].rsplit("/s/", 1)[1]
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {
            "filename": "a.txt",
            "uploader_name": "Dana",
            "uploader_email": "dana@bank.example",
        }.items()
    )
    created = await http.post(
        f"/s/{token}/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": metadata},
    )
    assert created.status_code == 201, created.text
    answer = document["paths"]["/s/{token}/uploads"]["post"]["responses"]["201"]
    assert {h.lower() for h in answer["headers"]} <= set(created.headers)
    refused = await http.post(
        f"/s/{token}/uploads",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "9999", "Upload-Metadata": metadata},
    )
    assert refused.status_code == 413
    assert "413" in document["paths"]["/s/{token}/uploads"]["post"]["responses"]
