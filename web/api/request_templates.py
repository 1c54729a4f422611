"""Request templates: `/request-templates`, the firm's reusable checklists (staff, admin)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vault import request_templates as template_service
from vault.request_tables import MAX_DUE_IN_DAYS, MAX_ITEMS, MAX_MESSAGE, RequestTemplate
from web.api.common import api_call, iso, parse_id
from web.api.inputs import Body, NotNull, parse_body

Days = Annotated[int, Field(ge=0, le=MAX_DUE_IN_DAYS)]


def template_json(template: RequestTemplate) -> dict[str, Any]:
    return {
        "id": str(template.id),
        "name": template.name,
        "title": template.title,
        "message": template.message,
        "items": template.item_names,
        "due_in_days": template.due_in_days,
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }


class NewTemplate(Body):
    name: str
    title: str
    items: Annotated[list[str], Field(min_length=1, max_length=MAX_ITEMS)]
    message: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None
    due_in_days: Days | None = None  # none: the due date is chosen each time


class TemplateChange(Body):
    """Fields left out stay; `due_in_days: null` clears the default due date."""

    name: Annotated[str | None, NotNull] = None
    title: Annotated[str | None, NotNull] = None
    items: Annotated[list[str] | None, NotNull, Field(min_length=1, max_length=MAX_ITEMS)] = None
    message: Annotated[str | None, NotNull, Field(max_length=MAX_MESSAGE)] = None
    due_in_days: Days | None = None


async def list_request_templates(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        templates = await template_service.list_templates(call.session, call.principal, call.audit)
        return JSONResponse({"templates": [template_json(t) for t in templates]})


async def create_request_template(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        body = await parse_body(request, NewTemplate)
        template = await template_service.create_template(
            call.session,
            call.principal,
            call.audit,
            name=body.name,
            title=body.title,
            items=list(body.items),
            message=body.message or "",
            due_in_days=body.due_in_days,
        )
        return JSONResponse(template_json(template), status_code=201)


async def update_request_template(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        template_id = parse_id(request.path_params["template_id"], "template")
        change = await parse_body(request, TemplateChange)
        template = await template_service.update_template(
            call.session,
            call.principal,
            call.audit,
            template_id,
            name=change.name,
            title=change.title,
            items=change.items,
            message=change.message,
            due_in_days=change.due_in_days if "due_in_days" in change.model_fields_set else ...,
        )
        return JSONResponse(template_json(template))


async def delete_request_template(request: Request) -> Response:
    async with api_call(request) as call:
        template_id = parse_id(request.path_params["template_id"], "template")
        await template_service.delete_template(
            call.session, call.principal, call.audit, template_id
        )
        return Response(status_code=204)
