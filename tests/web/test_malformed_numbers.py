"""Malformed input answers 4xx problem+json, never a 500 (issue 13, item 9): digits of other
scripts, numbers past the database's integers, deep or huge JSON, lone surrogates."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.app import World
from tests.fixtures.pages import account_csrf
from tests.fixtures.signin import sign_in
from vault.accounts import ratelimit
from web.numbers import INT32_MAX, INT64_MAX, parse_int

API = "/api/v1"
PROBLEM = "application/problem+json"
HUGE = str(2**70)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("007", 7),
        ("0" * 50 + "1", 1),
        (str(INT64_MAX), INT64_MAX),
        (str(INT64_MAX + 1), None),
        ("9" * 5000, None),
        ("²", None),  # "²".isdigit() is True, int("²") raises
        ("١", None),  # int("١") == 1: an Arabic-Indic one must not read as 1
        ("１", None),  # fullwidth
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_int_takes_ascii_digits_only(raw: str | None, expected: int | None) -> None:
    assert parse_int(raw) == expected


def test_parse_int_bounds() -> None:
    assert parse_int(str(INT32_MAX), maximum=INT32_MAX) == INT32_MAX
    assert parse_int(str(INT32_MAX + 1), maximum=INT32_MAX) is None
    assert parse_int("0", minimum=1) is None


def test_rate_limit_key_of_a_lone_surrogate() -> None:
    assert ratelimit.key_for("login-account", "\ud800@example.test").startswith("login-account:")


def problem_of(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM


async def test_version_parameter_accepts_ascii_digits_only(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    put = await http.put(
        f"{API}/folders/{world.acme_folder}/files/a.txt", content=b"hello", headers=auth
    )
    assert put.status_code == 201, put.text
    content = f"{API}/documents/{put.json()['document_id']}/content"
    assert (await http.get(f"{content}?version=1", headers=auth)).status_code == 200
    for raw in ("%C2%B2", "%D9%A1", HUGE, "0", "-1"):
        problem_of(await http.get(f"{content}?version={raw}", headers=auth), 404)
    restore = f"{API}/documents/{put.json()['document_id']}/versions/{HUGE}/restore"
    problem_of(await http.post(restore, headers=auth), 404)


async def test_audit_list_authenticates_before_parsing(
    http: httpx.AsyncClient, world: World
) -> None:
    for query in ("limit=%C2%B2", f"cursor={HUGE}", "cursor=%D9%A1", "since=never"):
        problem_of(await http.get(f"{API}/audit?{query}"), 401)
        problem_of(await http.get(f"{API}/audit?{query}", headers=world["otto"].auth), 422)
    problem_of(await http.get(f"{API}/audit/export?format=xml"), 401)
    answer = await http.get(f"{API}/audit?cursor={INT64_MAX}", headers=world["otto"].auth)
    assert answer.status_code == 200


async def test_failed_notifications_limit(http: httpx.AsyncClient, world: World) -> None:
    for raw in ("%C2%B2", "%D9%A1", HUGE):
        answer = await http.get(
            f"{API}/notifications/failed?limit={raw}", headers=world["ada"].auth
        )
        problem_of(answer, 422)


async def test_json_too_deep_or_too_long_is_a_bad_request(
    http: httpx.AsyncClient, world: World
) -> None:
    ada = {**world["ada"].auth, "Content-Type": "application/json"}
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"name": ' + b"9" * 5000 + b"}"):
        problem_of(await http.post(f"{API}/clients", content=body, headers=ada), 400)


async def test_lone_surrogate_in_an_email_is_a_bad_request(http: httpx.AsyncClient) -> None:
    body = b'{"email": "\\ud800@example.test", "password": "x"}'
    headers = {"Content-Type": "application/json"}
    problem_of(await http.post(f"{API}/session", content=body, headers=headers), 400)
    reset = b'{"email": "\\udfff@example.test"}'
    problem_of(await http.post(f"{API}/password-reset", content=reset, headers=headers), 400)


async def test_second_factor_with_a_token_is_a_conflict(
    http: httpx.AsyncClient, world: World
) -> None:
    answer = await http.post(
        f"{API}/session/totp", json={"code": "123456"}, headers=world["alice"].auth
    )
    problem_of(answer, 409)


async def test_tus_lengths_past_64_bits(http: httpx.AsyncClient, world: World) -> None:
    headers = {**world["alice"].auth, "Tus-Resumable": "1.0.0", "Upload-Length": HUGE}
    answer = await http.post(f"{API}/uploads", headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    # Header values are Latin-1: byte 0xB2 reads as "²", which str.isdigit() accepts.
    raw = [(k.encode(), v.encode()) for k, v in headers.items() if k != "Upload-Length"]
    answer = await http.post(f"{API}/uploads", headers=[*raw, (b"Upload-Length", b"\xb2")])
    assert 400 <= answer.status_code < 500, answer.text


async def test_page_restore_of_a_version_past_any_integer(
    http: httpx.AsyncClient, world: World
) -> None:
    put = await http.put(
        f"{API}/folders/{world.acme_folder}/files/a.txt", content=b"hi", headers=world["alice"].auth
    )
    document = put.json()["document_id"]
    await sign_in(http, world["alice"], second_factor=True)
    csrf = await account_csrf(http)
    for number in ("9" * 5000, HUGE, "%C2%B2", "0"):
        answer = await http.post(
            f"/documents/{document}/versions/{number}/restore", data={"csrf_token": csrf}
        )
        assert answer.status_code == 404, (number[:20], answer.status_code)
