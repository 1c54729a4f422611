"""The driver of the completeness test: the ids and secrets the calls name, browsers signed
in as each person, one call prepared and sent, and the events it left."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
from sqlalchemy import delete
from sqlmodel import col, select

from tests.fixtures.app import Person, World
from tests.web.audit_calls import API, CONTENTS, LINK_SECRETS, NEW_PASSWORD, PARAM, As
from tests.web.test_pages import csrf_of, enrol, parse
from vault.db import transaction
from vault.models import AuditEvent
from vault.refusals import RefusalWindow
from web.services import Services


class Ids(dict[str, str]):
    """The ids and secrets the calls name: `{folder_id}`, `{password_alice}`, `{totp_sam}`."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.people: dict[str, Person] = dict(world.people)
        self.totp: dict[str, str] = {}
        self.used_codes: set[tuple[str, str]] = set()
        self.link_tokens: set[str] = set()  # of every share link made or shown

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
    secrets |= ids.link_tokens | {ids["link_code"], *LINK_SECRETS}
    async with transaction(services.sessions) as session:
        rows = (await session.execute(select(AuditEvent))).scalars().all()
    return [
        f"{e.seq} {e.action}"
        for e in rows
        for secret in secrets
        if secret and secret in json.dumps(e.model_dump(), default=str)
    ]
