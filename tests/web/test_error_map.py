"""One mapping of errors to statuses: every vault error has a status from `status_for`, the
same on the API and on a page, and a page message in every language."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import vault
from storage import StorageUnavailableError
from tests.fixtures.app import World
from vault.errors import BackupError, FsckError, InvalidInput, VaultError, WeakPasswordError
from web import i18n
from web.errors import ANSWERS, EXCEPTION_HANDLERS, answer_for, status_for
from web.pages.common import page

LOCALE_DIR = Path(i18n.__file__).parent / "locale"

# The base itself, and errors of the command line only (backup, fsck): no request meets
# them, so the generic answer is enough.
FALLBACK_ON_PURPOSE = frozenset({VaultError, BackupError, FsckError})


def vault_errors() -> list[type[VaultError]]:
    for module in pkgutil.walk_packages(vault.__path__, "vault."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: list[type[VaultError]] = []
    pending: list[type[VaultError]] = [VaultError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    # A private error (`_LeaseLost`) is control flow inside one module; it never leaves it.
    return sorted((k for k in found if not k.__name__.startswith("_")), key=lambda k: k.__name__)


@functools.cache  # read once per language, not once per error class
def catalogue(lang: str) -> dict[str, str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return {str(m.id): str(m.string) for m in read_po(source) if m.id and m.string}


def test_the_walk_finds_the_errors_of_every_vault_module() -> None:
    names = {kind.__name__ for kind in vault_errors()}
    assert {"WeakPasswordError", "LinkNotFoundError", "InvalidPolicyError", "FormatError"} <= names
    assert len(names) > 30


@pytest.mark.parametrize("kind", vault_errors(), ids=lambda kind: kind.__name__)
def test_every_vault_error_has_its_own_status_and_a_page(kind: type[VaultError]) -> None:
    error = kind.__new__(kind)  # the mapping looks at the class only
    answer = answer_for(error)
    assert answer is not None
    assert status_for(error) == answer.status
    if kind not in FALLBACK_ON_PURPOSE:
        assert answer.kind is not VaultError, f"{kind.__name__} needs an entry in web.errors"
    for text in (answer.page.heading, answer.page.text):
        for lang in sorted(set(i18n.LANGUAGES) - {i18n.DEFAULT}):
            assert catalogue(lang).get(text), f"{text!r} is not translated to {lang}"


def test_subclasses_come_before_their_bases_so_each_entry_can_be_reached() -> None:
    for position, answer in enumerate(ANSWERS):
        earlier = [a.kind for a in ANSWERS[:position]]
        assert not any(issubclass(answer.kind, kind) for kind in earlier), answer.kind


def test_bad_input_is_a_vault_error_not_a_value_error() -> None:
    weak = WeakPasswordError("too short", rule="too-short")
    assert isinstance(weak, InvalidInput) and not isinstance(weak, ValueError)
    assert (weak.field, weak.rule) == ("password", "too-short")
    assert status_for(weak) == 422


async def test_a_store_outage_on_a_page_is_the_api_s_503_with_a_translated_page() -> None:
    outage = StorageUnavailableError("the object directory failed")

    @page
    async def failing(request: Request) -> Response:
        raise outage

    async def api(request: Request) -> Response:
        raise outage

    app = Starlette(
        routes=[Route("/fail", failing), Route("/api/fail", api)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as http:
        answered = await http.get("/fail", headers={"Accept-Language": "ja"})
        problem = await http.get("/api/fail")
    assert problem.status_code == answered.status_code == status_for(outage) == 503
    assert problem.json()["title"] == "Object store unavailable"
    assert answered.headers["content-type"].startswith("text/html")
    assert "ファイルストレージを利用できません" in answered.text  # "File storage unavailable"
    assert "the object directory" not in answered.text


async def test_an_invitation_names_the_input_it_refuses(
    http: httpx.AsyncClient, world: World
) -> None:
    ada = world["ada"]
    no_client = await http.post(
        "/api/v1/invitations",
        json={"email": "new@example.test", "role": "client", "client_ids": []},
        headers=ada.auth,
    )
    assert no_client.status_code == 422
    assert no_client.json()["field"] == "client_ids"  # it used to name "email"
    not_an_address = await http.post(
        "/api/v1/invitations",
        json={"email": "not an address", "role": "client", "client_ids": [str(world.acme)]},
        headers=ada.auth,
    )
    assert not_an_address.status_code == 422
    assert not_an_address.json() == {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 422,
        "detail": "not an email address",
        "field": "email",
        "rule": "email",  # every refused input names its field and rule
    }
