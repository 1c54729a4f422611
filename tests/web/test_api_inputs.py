"""The API's declared input: the models' limits are answered as 422 naming the field, and
the OpenAPI document shows the very schemas the routes validate with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.app import World
from vault.accounts.profiles import MAX_DISPLAY_NAME
from vault.request_tables import MAX_ITEMS
from web.api.account_inputs import Invitation
from web.api.requests import NewRequest
from web.app import create_app
from web.settings import Settings

API = "/api/v1"


async def test_a_too_long_invitation_display_name_is_refused_not_cut(
    http: httpx.AsyncClient, world: World
) -> None:
    refused = await http.post(
        f"{API}/invitations",
        json={
            "email": "carol@example.test",
            "client_ids": [str(world.acme)],
            "display_name": "C" * (MAX_DISPLAY_NAME + 1),
        },
        headers=world["sam"].auth,
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["field"] == "display_name"


async def test_a_malformed_audit_limit_names_its_parameter(
    http: httpx.AsyncClient, world: World
) -> None:
    for value in ("-1", "1.0", "²", "9" * 40):
        refused = await http.get(
            f"{API}/audit", params={"limit": value}, headers=world["otto"].auth
        )
        assert refused.status_code == 422, (value, refused.text)
        problem = refused.json()
        assert problem["title"] == "Invalid filter" and problem["field"] == "limit", value


async def test_an_unknown_export_format_is_refused(http: httpx.AsyncClient, world: World) -> None:
    refused = await http.get(
        f"{API}/audit/export", params={"format": "xml"}, headers=world["otto"].auth
    )
    assert refused.status_code == 422 and refused.json()["field"] == "format"


async def _document(tmp_path: Path) -> dict[str, Any]:
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body: dict[str, Any] = (await client.get(f"{API}/openapi.json")).json()
    return body


async def test_the_document_shows_the_models_the_routes_validate_with(tmp_path: Path) -> None:
    spec = await _document(tmp_path)
    schemas = spec["components"]["schemas"]
    operation = spec["paths"]["/clients/{client_id}/requests"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/NewRequest"
    items = schemas["NewRequest"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, MAX_ITEMS)
    assert set(schemas["NewRequest"]["required"]) == {
        name for name, field in NewRequest.model_fields.items() if field.is_required()
    }
    display_name = schemas["Invitation"]["properties"]["display_name"]["anyOf"][0]
    assert display_name["maxLength"] == MAX_DISPLAY_NAME
    assert "email" in schemas["Invitation"]["required"] and Invitation.model_fields["email"]
    export = {p["name"]: p for p in spec["paths"]["/audit/export"]["get"]["parameters"]}
    assert export["format"]["schema"]["enum"] == ["csv", "jsonl"]
    assert "limit" not in export  # the export takes every event the filters match
