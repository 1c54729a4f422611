"""The console's Clients pages (admins): create, rename, archive and restore, mark as the
firm's shared resources, and one client's overview (people, staff, storage, open requests)."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import clients, quotas, resources
from vault import folders as folder_service
from vault.db import transaction
from vault.errors import ConflictError, InvalidNameError
from web.context import audit_context, services
from web.ids import parse_id
from web.pages import console_link_policy
from web.pages.common import notice, page, read_form, see_other
from web.pages.console_people import chrome, console_caller
from web.pages.render import render

NOTICES = frozenset(
    {"created", "renamed", "archived", "restored", "shared", "unshared", "link_policy"}
)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/clients", clients_page, methods=["GET"]),
        Route("/admin/clients", create, methods=["POST"]),
        Route("/admin/clients/{client_id}", client_page, methods=["GET"]),
        Route("/admin/clients/{client_id}/rename", rename, methods=["POST"]),
        Route("/admin/clients/{client_id}/archive", archive, methods=["POST"]),
        Route("/admin/clients/{client_id}/restore", restore, methods=["POST"]),
        Route("/admin/clients/{client_id}/shared", shared, methods=["POST"]),
        Route(
            "/admin/clients/{client_id}/link-policy",
            console_link_policy.change,
            methods=["POST"],
        ),
    ]


@page
async def clients_page(request: Request) -> Response:
    archived = request.query_params.get("show") == "archived"
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session)
        listed = await clients.all_clients(
            session,
            caller.principal,
            archived=archived,
            context=audit_context(request, caller.principal),
        )
        return render(
            request,
            "console/clients.html",
            **chrome(caller),
            notice=notice(request, NOTICES),
            clients=listed,
            archived=archived,
            error="",
            name="",
        )


@page
async def create(request: Request) -> Response:
    form = await read_form(request)
    name = form.get("name", "")[:300]
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        clients.require_admin(caller.principal)
        try:
            async with session.begin_nested():
                client = await folder_service.create_client(
                    session, caller.principal, audit_context(request, caller.principal), name
                )
        except (InvalidNameError, ConflictError) as exc:
            error = "exists" if isinstance(exc, ConflictError) else "name"
            listed = await clients.all_clients(
                session, caller.principal, context=audit_context(request, caller.principal)
            )
            return render(
                request,
                "console/clients.html",
                status=409 if error == "exists" else 422,
                **chrome(caller),
                notice="",
                clients=listed,
                archived=False,
                error=error,
                name=name,
            )
    return see_other(f"/admin/clients/{client.id}?done=created")


async def show_client(
    request: Request,
    *,
    status: int = 200,
    error: str = "",
    name: str = "",
    policy_error: str = "",
    policy_form: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The client's overview page, or the page again with why a change was refused (`form`,
    the refused post, brings its CSRF token)."""
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        found = await clients.overview(
            session,
            caller.principal,
            parse_id(request.path_params["client_id"], "client"),
            today=date.today(),
            context=audit_context(request, caller.principal),
        )
        used = await quotas.usage(
            session, found.client.id, default=services(request).settings.quotas.default_bytes
        )
        return render(
            request,
            "console/client.html",
            status=status,
            **chrome(caller),
            notice=notice(request, NOTICES),
            overview=found,
            used=used,
            error=error,
            name=name or found.client.name,
            links=await console_link_policy.section(
                session, services(request), found.client.id, policy_form
            ),
            policy_error=policy_error,
        )


@page
async def client_page(request: Request) -> Response:
    return await show_client(request)


@page
async def rename(request: Request) -> Response:
    form = await read_form(request)
    name = form.get("name", "")[:300]
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        client_id = parse_id(request.path_params["client_id"], "client")
        try:
            async with session.begin_nested():
                await clients.rename(
                    session,
                    caller.principal,
                    audit_context(request, caller.principal),
                    client_id,
                    name,
                )
        except InvalidNameError:
            error = "name"
        except ConflictError:
            error = "exists"
        else:
            error = ""
    if error:
        return await show_client(request, status=422, error=error, name=name, form=form)
    return see_other(f"/admin/clients/{client_id}?done=renamed")


async def _archive(request: Request, *, archived: bool) -> Response:
    form = await read_form(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        client_id = parse_id(request.path_params["client_id"], "client")
        await clients.set_archived(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            client_id,
            archived=archived,
        )
    return see_other(f"/admin/clients/{client_id}?done={'archived' if archived else 'restored'}")


@page
async def archive(request: Request) -> Response:
    return await _archive(request, archived=True)


@page
async def restore(request: Request) -> Response:
    return await _archive(request, archived=False)


@page
async def shared(request: Request) -> Response:
    form = await read_form(request)
    wanted = form.get("shared") == "on"
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session, form)
        client_id = parse_id(request.path_params["client_id"], "client")
        clients.require_admin(caller.principal)
        await resources.set_shared(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            client_id,
            shared=wanted,
        )
    return see_other(f"/admin/clients/{client_id}?done={'shared' if wanted else 'unshared'}")
