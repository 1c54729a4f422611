"""The console's People pages: the list with search, one person's page, and its actions.

Admins see and manage everyone; staff see the client users of their own clients and may
disable, re-enable and re-invite them. Every refusal reads as a missing page (404), every form
carries the session's CSRF token, and each action is one audited call into `vault.accounts.people`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from notify import DeliveryError
from vault.accounts import invitations, people
from vault.db import transaction
from vault.errors import (
    ConflictError,
    InvalidEmailError,
    NotFoundError,
    PermissionDeniedError,
    ProfileError,
)
from vault.models import Client, Role, User
from vault.policy import Principal
from web import account_mail, i18n
from web.auth import CSRF_FIELD, Caller
from web.context import audit_context, services
from web.ids import parse_id, parse_ids
from web.pages.account_settings import _read_invite_form as read_invite_form
from web.pages.account_view import invite_clients, invite_roles
from web.pages.common import browser_caller, notice, page, read_form, see_other
from web.pages.render import render

LIST_NOTICES = frozenset({"invited", "invite-unsent"})
PERSON_NOTICES = frozenset(
    {"role", "disabled", "enabled", "mfa-reset", "granted", "revoked", "resent", "unsent"}
)
ROLES = [r.value for r in (Role.CLIENT, Role.STAFF, Role.AUDITOR, Role.ADMIN)]


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", console_home, methods=["GET"]),
        Route("/admin/people", people_page, methods=["GET"]),
        Route("/admin/people/invite", invite, methods=["POST"]),
        Route("/admin/people/{user_id}", person_page, methods=["GET"]),
        Route("/admin/people/{user_id}/role", change_role, methods=["POST"]),
        Route("/admin/people/{user_id}/disable", disable, methods=["POST"]),
        Route("/admin/people/{user_id}/enable", enable, methods=["POST"]),
        Route("/admin/people/{user_id}/reset-2fa", reset_second_factor, methods=["POST"]),
        Route("/admin/people/{user_id}/clients", change_clients, methods=["POST"]),
        Route("/admin/people/{user_id}/resend", resend, methods=["POST"]),
    ]


async def console_caller(
    request: Request, session: AsyncSession, form: dict[str, str] | None = None
) -> Caller:
    """The signed-in admin or staff member; to anyone else the console does not exist."""
    csrf = None if form is None else form.get(CSRF_FIELD, "")
    caller = await browser_caller(request, session, csrf_token=csrf)
    if not people.may_open(caller.principal):
        raise NotFoundError("no such page")
    return caller


def chrome(caller: Caller) -> dict[str, Any]:
    """What every console page's template needs besides its own content."""
    assert caller.browser is not None
    return {
        "user": caller.user,
        "csrf_token": caller.browser.csrf_token,
        "is_admin": people.manages_everyone(caller.principal),
    }


@page
async def console_home(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        await console_caller(request, session)
    return see_other("/admin/people")


async def _list(
    request: Request,
    session: AsyncSession,
    caller: Caller,
    *,
    status: int = 200,
    error: str = "",
    entered: dict[str, Any] | None = None,
) -> Response:
    search = request.query_params.get("q", "")[:200]
    found = await people.list_people(
        session,
        caller.principal,
        search=search,
        context=audit_context(request, caller.principal),
    )
    return render(
        request,
        "console/people.html",
        status=status,
        **chrome(caller),
        notice=notice(request, LIST_NOTICES),
        search=search,
        people=found,
        roles=invite_roles(caller.principal),
        clients=await invite_clients(session, caller.principal),
        error=error,
        entered=entered or {"email": "", "display_name": "", "role": "client", "clients": []},
        limit=people.MAX_LISTED,
    )


@page
async def people_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session)
        return await _list(request, session, caller)


@page
async def invite(request: Request) -> Response:
    form, raw_clients = await read_invite_form(request)
    entered = {
        "email": form.get("email", "").strip()[:320],
        "display_name": " ".join(form.get("display_name", "").split())[:200],
        "role": form.get("role", Role.CLIENT.value),
        "clients": raw_clients,
    }
    svc = services(request)
    valid_for = timedelta(hours=svc.settings.auth.invitation_valid_hours)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session, form)
        client_ids = parse_ids(raw_clients)
        role_value = str(entered["role"])

        async def refuse(status: int, error: str) -> Response:
            return await _list(
                request, session, caller, status=status, error=error, entered=entered
            )

        if role_value not in invite_roles(caller.principal):
            return await refuse(422, "role")
        role = Role(role_value)
        if client_ids is None or (role is Role.CLIENT and not client_ids):
            return await refuse(422, "clients")
        try:
            async with session.begin_nested():
                invited = await invitations.invite(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    email=str(entered["email"]),
                    role=role,
                    client_ids=client_ids,
                    valid_for=valid_for,
                    display_name=str(entered["display_name"]),
                )
        except (NotFoundError, PermissionDeniedError):
            return await refuse(422, "clients")
        except ConflictError:
            return await refuse(409, "exists")
        except ProfileError:
            return await refuse(422, "display_name")
        except InvalidEmailError:
            return await refuse(422, "email")
        if invited.withheld:
            return see_other("/admin/people?done=invited")
    try:
        await account_mail.send_invitation(
            svc,
            invited.user,
            invited.secret,
            inviter=caller.user,
            valid_for=valid_for,
            lang=i18n.negotiate(request, caller.user.locale),
        )
    except DeliveryError:
        return see_other("/admin/people?done=invite-unsent")
    return see_other("/admin/people?done=invited")


@page
async def person_page(request: Request) -> Response:
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session)
        found = await people.person(
            session,
            caller.principal,
            parse_id(request.path_params["user_id"], "user"),
            context=audit_context(request, caller.principal),
        )
        assignable: list[Client] = []
        # Staff reach only client users, and may add them to their own clients alone.
        if found.user.role in (Role.CLIENT, Role.STAFF):
            have = {c.id for c in found.clients}
            assignable = [
                c for c in await invite_clients(session, caller.principal) if c.id not in have
            ]
        return render(
            request,
            "console/person.html",
            **chrome(caller),
            notice=notice(request, PERSON_NOTICES),
            person=found,
            roles=ROLES,
            assignable=assignable,
            is_self=found.user.id == caller.user.id,
        )


async def _act(request: Request, done: str, action: Any) -> Response:
    """Run one action on the person in the path, then show their page with its notice."""
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        user_id = parse_id(request.path_params["user_id"], "user")
        await action(
            session, caller.principal, audit_context(request, caller.principal), user_id, form
        )
    return see_other(f"/admin/people/{user_id}?done={done}")


@page
async def change_role(request: Request) -> Response:
    async def act(
        session: AsyncSession, principal: Principal, ctx: Any, uid: uuid.UUID, form: dict[str, str]
    ) -> None:
        if form.get("role") not in ROLES:
            raise NotFoundError("no such role")
        await people.set_role(session, principal, ctx, uid, Role(form["role"]))

    return await _act(request, "role", act)


@page
async def disable(request: Request) -> Response:
    async def act(
        session: AsyncSession, principal: Principal, ctx: Any, uid: uuid.UUID, form: dict[str, str]
    ) -> None:
        await people.set_active(session, principal, ctx, uid, active=False)

    return await _act(request, "disabled", act)


@page
async def enable(request: Request) -> Response:
    async def act(
        session: AsyncSession, principal: Principal, ctx: Any, uid: uuid.UUID, form: dict[str, str]
    ) -> None:
        await people.set_active(session, principal, ctx, uid, active=True)

    return await _act(request, "enabled", act)


@page
async def change_clients(request: Request) -> Response:
    form = await read_form(request)
    granted = form.get("change") != "remove"

    async def act(
        session: AsyncSession, principal: Principal, ctx: Any, uid: uuid.UUID, _: dict[str, str]
    ) -> None:
        client_id = parse_id(form.get("client_id", ""), "client")
        await people.set_client_access(session, principal, ctx, uid, client_id, granted=granted)

    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        user_id = parse_id(request.path_params["user_id"], "user")
        await act(
            session, caller.principal, audit_context(request, caller.principal), user_id, form
        )
    return see_other(f"/admin/people/{user_id}?done={'granted' if granted else 'revoked'}")


@page
async def reset_second_factor(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session, form)
        user_id = parse_id(request.path_params["user_id"], "user")
        user = await people.reset_second_factor(
            session, caller.principal, audit_context(request, caller.principal), user_id
        )
        by = caller.user.display_name or caller.user.email
    await _tell(svc, user, by)
    return see_other(f"/admin/people/{user_id}?done=mfa-reset")


async def _tell(svc: Any, user: User, by: str) -> None:
    # After the commit: the reset stands even if the email cannot go out now; the log says so.
    await account_mail.send_quietly(
        svc,
        "mfa-reset",
        user,
        by=by,
        when=account_mail.when(datetime.now(UTC)),
        link=account_mail.link(svc, "/login"),
    )


@page
async def resend(request: Request) -> Response:
    form = await read_form(request)
    svc = services(request)
    valid_for = timedelta(hours=svc.settings.auth.invitation_valid_hours)
    async with transaction(svc.sessions) as session:
        caller = await console_caller(request, session, form)
        user_id = parse_id(request.path_params["user_id"], "user")
        user, secret, _ = await people.resend_invitation(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            user_id,
            valid_for=valid_for,
        )
    try:
        await account_mail.send_invitation(
            svc,
            user,
            secret,
            inviter=caller.user,
            valid_for=valid_for,
            lang=i18n.negotiate(request, caller.user.locale),
        )
    except DeliveryError:
        return see_other(f"/admin/people/{user_id}?done=unsent")
    return see_other(f"/admin/people/{user_id}?done=resent")
