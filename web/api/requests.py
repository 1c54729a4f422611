"""Document requests: `/clients/{client_id}/requests` and `/requests`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import requests as request_service
from vault.requests import ItemStatus, Recurrence, RequestItem, RequestView
from web.api.common import api_call, iso, json_body, parse_id, string_field
from web.errors import ProblemError


def _invalid(name: str, detail: str) -> ProblemError:
    return ProblemError(422, "Invalid request", detail, field=name)


def item_json(item: RequestItem) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "name": item.name,
        "status": str(item.status),
        "document_id": str(item.document_id) if item.document_id else None,
        "version": item.version,
        "submitted_by": str(item.submitted_by) if item.submitted_by else None,
        "submitted_at": iso(item.submitted_at),
        "answered_by": str(item.answered_by) if item.answered_by else None,
        "answered_at": iso(item.answered_at),
        "reason": item.reason,
    }


def request_json(view: RequestView, today: date | None = None) -> dict[str, Any]:
    r = view.request
    today = today or datetime.now(UTC).date()
    return {
        "id": str(r.id),
        "client_id": str(r.client_id),
        "folder_id": str(r.folder_id),
        "title": r.title,
        "message": r.message,
        "due_date": r.due_date.isoformat(),
        "overdue": r.closed_at is None and r.due_date < today,
        "recurrence": str(r.recurrence),
        "previous_id": str(r.previous_id) if r.previous_id else None,
        "created_by": str(r.created_by) if r.created_by else None,
        "created_at": iso(r.created_at),
        "closed_at": iso(r.closed_at),
        "items": [item_json(i) for i in view.items],
    }


def _date(data: dict[str, Any], name: str) -> date:
    value = string_field(data, name)
    assert value is not None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"{name} must be a date, YYYY-MM-DD") from None


def _names(data: dict[str, Any]) -> list[str]:
    value = data.get("items")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid("items", "items must be a list of document names")
    return [str(v) for v in value]


_E = TypeVar("_E", Recurrence, ItemStatus)


def _choice(data: dict[str, Any], name: str, kind: type[_E], default: _E | None = None) -> _E:
    value = string_field(data, name, required=default is None)
    if value is None:
        assert default is not None
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in kind)
        raise _invalid(name, f"{name} must be one of {allowed}") from None


def _list(views: list[RequestView], key: str = "requests") -> JSONResponse:
    today = datetime.now(UTC).date()
    return JSONResponse({key: [request_json(v, today) for v in views]})


async def create_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        data = await json_body(request)
        title = string_field(data, "title")
        assert title is not None
        folder = string_field(data, "folder_id")
        view = await request_service.create_request(
            call.session,
            call.principal,
            call.audit,
            client_id=client_id,
            folder_id=parse_id(folder or "", "folder"),
            title=title,
            message=string_field(data, "message", required=False) or "",
            due_date=_date(data, "due_date"),
            recurrence=_choice(data, "recurrence", Recurrence, Recurrence.NONE),
            items=_names(data),
        )
        return JSONResponse(request_json(view), status_code=201)


async def client_requests(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        views = await request_service.list_for_client(
            call.session, call.principal, client_id, context=call.audit
        )
        return _list(views)


async def open_requests(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        return _list(
            await request_service.list_open(call.session, call.principal, context=call.audit)
        )


async def get_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        view = await request_service.get_request(
            call.session, call.principal, request_id, context=call.audit
        )
        return JSONResponse(request_json(view))


async def submit_item(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        item_id = parse_id(request.path_params["item_id"], "item")
        data = await json_body(request)
        version = data.get("version")
        if version is not None and (type(version) is not int or version < 1):
            raise _invalid("version", "version must be a positive integer")
        view = await request_service.submit_item(
            call.session,
            call.principal,
            call.audit,
            request_id=request_id,
            item_id=item_id,
            document_id=parse_id(string_field(data, "document_id") or "", "document"),
            version=version,
        )
        return JSONResponse(request_json(view))


async def answer_item(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        item_id = parse_id(request.path_params["item_id"], "item")
        data = await json_body(request)
        status = _choice(data, "status", ItemStatus)
        if status not in (ItemStatus.ACCEPTED, ItemStatus.REJECTED):
            raise _invalid("status", "status must be accepted or rejected")
        view = await request_service.answer_item(
            call.session,
            call.principal,
            call.audit,
            request_id=request_id,
            item_id=item_id,
            status=status,
            reason=string_field(data, "reason", required=False),
        )
        return JSONResponse(request_json(view))


async def close_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        view = await request_service.close_request(
            call.session, call.principal, call.audit, request_id
        )
        return JSONResponse(request_json(view))
