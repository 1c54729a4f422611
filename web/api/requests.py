"""Document requests: `/clients/{client_id}/requests` and `/requests`; editing, the due
date and reminders by hand (`PATCH /requests/{id}`, `POST /requests/{id}/reminders`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from vault import document_requests as request_service
from vault import request_changes
from vault.document_requests import RequestView
from vault.request_documents import Submitted
from vault.request_tables import MAX_ITEMS, MAX_MESSAGE, ItemStatus, Recurrence, RequestItem
from web.api.common import api_call, iso, parse_id
from web.api.inputs import Body, NotNull, parse_body


def item_json(item: RequestItem, documents: Sequence[Submitted] = ()) -> dict[str, Any]:
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
        # Every document submitted for the item; `document_id` and `version` are the latest.
        "documents": [
            {
                "id": str(d.document_id),
                "name": d.name,
                "version": d.version,
                "submitted_at": iso(d.submitted_at),
                "submitted_by": str(d.submitted_by) if d.submitted_by else None,
            }
            for d in documents
        ],
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
        "items": [item_json(i, view.documents.get(i.id, ())) for i in view.items],
    }


class NewRequest(Body):
    title: str
    folder_id: str
    message: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None
    due_date: date
    recurrence: Recurrence | None = None  # none
    items: Annotated[list[str], Field(min_length=1, max_length=MAX_ITEMS)]


class Submission(Body):
    document_id: str
    version: Annotated[int, Field(ge=1)] | None = None


class Answer(Body):
    status: Literal["accepted", "rejected"]
    reason: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None


class RequestChange(Body):
    """What to change; fields left out stay. Items are added by name, renamed and removed by
    id; an item the client has answered cannot be removed (409)."""

    title: Annotated[str | None, NotNull] = None
    message: Annotated[str | None, NotNull, Field(max_length=MAX_MESSAGE)] = None
    due_date: date | None = None
    add_items: Annotated[list[str], Field(max_length=MAX_ITEMS)] | None = None
    rename_items: Annotated[dict[str, str], Field(max_length=MAX_ITEMS)] | None = None
    remove_items: Annotated[list[str], Field(max_length=MAX_ITEMS)] | None = None


def _list(views: list[RequestView], key: str = "requests") -> JSONResponse:
    today = datetime.now(UTC).date()
    return JSONResponse({key: [request_json(v, today) for v in views]})


async def create_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        client_id = parse_id(request.path_params["client_id"], "client")
        body = await parse_body(request, NewRequest)
        view = await request_service.create_request(
            call.session,
            call.principal,
            call.audit,
            client_id=client_id,
            folder_id=parse_id(body.folder_id, "folder"),
            title=body.title,
            message=body.message or "",
            due_date=body.due_date,
            recurrence=body.recurrence or Recurrence.NONE,
            items=list(body.items),
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
        submission = await parse_body(request, Submission)
        view = await request_service.submit_item(
            call.session,
            call.principal,
            call.audit,
            request_id=request_id,
            item_id=item_id,
            document_id=parse_id(submission.document_id, "document"),
            version=submission.version,
        )
        return JSONResponse(request_json(view))


async def answer_item(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        item_id = parse_id(request.path_params["item_id"], "item")
        answer = await parse_body(request, Answer)
        view = await request_service.answer_item(
            call.session,
            call.principal,
            call.audit,
            request_id=request_id,
            item_id=item_id,
            status=ItemStatus(answer.status),
            reason=answer.reason,
        )
        return JSONResponse(request_json(view))


async def close_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        view = await request_service.close_request(
            call.session, call.principal, call.audit, request_id
        )
        return JSONResponse(request_json(view))


async def edit_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        change = await parse_body(request, RequestChange)
        view = await request_changes.edit_request(
            call.session,
            call.principal,
            call.audit,
            request_id,
            title=change.title,
            message=change.message,
            add=change.add_items or (),
            rename={parse_id(k, "item"): v for k, v in (change.rename_items or {}).items()},
            remove=[parse_id(i, "item") for i in change.remove_items or ()],
        )
        if change.due_date is not None:
            # The same transaction: the edit and the new date are saved together or not at all.
            view = await request_changes.change_due_date(
                call.session, call.principal, call.audit, request_id, due_date=change.due_date
            )
        return JSONResponse(request_json(view))


async def remind_request(request: Request) -> JSONResponse:
    async with api_call(request) as call:
        request_id = parse_id(request.path_params["request_id"], "request")
        view = await request_changes.remind_now(
            call.session, call.principal, call.audit, request_id
        )
        return JSONResponse(request_json(view), status_code=202)
