"""The JSON bodies the API answers with, as pydantic models for the OpenAPI document only:
the handlers build their bodies with the `*_json` functions beside them, and the schema
test (tests/web/test_api_schema.py) holds the two together."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from web.api.openapi_models import MODEL_SCHEMAS

__all__ = ["RESPONSE_MODELS", "response_content"]

Id = str
Time = str  # ISO 8601 with its offset


class Client(BaseModel):
    id: Id
    name: str
    created_at: Time


class Folder(BaseModel):
    id: Id
    name: str
    client_id: Id
    parent_id: Id | None
    created_at: Time


class DocumentSummary(BaseModel):
    id: Id
    name: str
    version: int
    updated_at: Time


class Listing(BaseModel):
    """A client's root or a folder: its sub-folders and documents."""

    folders: list[Folder]
    documents: list[DocumentSummary]


class Me(BaseModel):
    id: Id
    email: str
    display_name: str | None
    role: Literal["client", "staff", "admin", "auditor"]
    client_ids: list[Id]


class ClientList(BaseModel):
    clients: list[Client]


class Version(BaseModel):
    number: int
    size: int
    sha256: str
    content_type: str | None
    created_at: Time
    uploaded_by: Id | None


class Document(BaseModel):
    id: Id
    name: str
    folder_id: Id
    client_id: Id
    version: int
    created_at: Time
    updated_at: Time
    versions: list[Version]


class Stored(BaseModel):
    """A file stored: its document and the new version (null while held for scanning)."""

    document_id: Id
    version: int | None


class Restored(BaseModel):
    document_id: Id
    version: int
    restored_from: int


class Link(BaseModel):
    id: Id
    # Only in the 201 answer that creates the link (`CreatedLink`): it carries the token.
    url: str | None = Field(
        default=None, description="only when the link is created: the token is shown once"
    )
    kind: Literal["download", "upload"]
    state: str
    client_id: Id
    document_id: Id | None
    version: int | None
    folder_id: Id | None
    expires_at: Time | None
    has_password: bool
    recipient_email: str | None
    max_downloads: int | None
    downloads: int
    max_file_bytes: int | None
    max_files: int | None
    max_total_bytes: int | None
    files_received: int
    bytes_received: int
    created_by: Id | None
    created_at: Time | None
    revoked_at: Time | None


class CreatedLink(Link):
    """A link as its creation answers it: with its URL, which carries the token and is
    never shown again."""

    url: str = Field(description="{server.public_url}/s/{token}; shown only in this answer")


class LinkList(BaseModel):
    links: list[Link]


class Usage(BaseModel):
    used_bytes: int
    reserved_bytes: int
    quota_bytes: int | None
    percent: float | None


class RetentionPolicy(BaseModel):
    folder_id: Id | None
    keep_versions: int | None
    keep_days: int | None
    trash_days: int | None
    updated_at: Time | None


class PolicyList(BaseModel):
    policies: list[RetentionPolicy]


class Hold(BaseModel):
    id: Id
    client_id: Id
    folder_id: Id | None
    reason: str
    placed_at: Time | None
    placed_by: Id | None
    released_at: Time | None
    released_by: Id | None
    release_reason: str | None


class HoldList(BaseModel):
    holds: list[Hold]


class SubmittedDocument(BaseModel):
    id: Id
    name: str
    version: int
    submitted_at: Time
    submitted_by: Id | None


class RequestItem(BaseModel):
    id: Id
    name: str
    status: str
    # The latest submission; `documents` lists every document submitted for the item.
    document_id: Id | None
    version: int | None
    documents: list[SubmittedDocument]


class DocumentRequest(BaseModel):
    id: Id
    client_id: Id
    folder_id: Id
    title: str
    due_date: str
    overdue: bool
    recurrence: Literal["none", "monthly", "quarterly", "yearly"]
    items: list[RequestItem]


class RequestList(BaseModel):
    requests: list[DocumentRequest]


class RequestTemplate(BaseModel):
    id: Id
    name: str
    title: str
    message: str
    items: list[str]
    due_in_days: int | None
    created_at: Time
    updated_at: Time


class RequestTemplateList(BaseModel):
    templates: list[RequestTemplate]


class TrashedDocument(BaseModel):
    id: Id
    name: str
    client_id: Id
    client_name: str
    folder_id: Id
    folder_path: str
    size: int
    deleted_at: Time | None


class TrashList(BaseModel):
    documents: list[TrashedDocument]


class Member(BaseModel):
    id: Id
    email: str
    display_name: str | None


class Received(Member):
    completed_at: Time | None


class VersionReceipts(BaseModel):
    version: int
    received: list[Received]
    waiting: list[Member]


class Receipts(BaseModel):
    document_id: Id
    versions: list[VersionReceipts]


class Alert(BaseModel):
    id: Id
    rule: str
    subject: str
    seq: int
    event_seqs: list[int]
    details: dict[str, Any]
    raised_at: Time | None
    emailed: bool


class AlertList(BaseModel):
    alerts: list[Alert]


class BrowserSession(BaseModel):
    stage: str
    csrf_token: str
    email: str
    role: str
    expires_at: Time


# operationId: the model of its first success answer.
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "me": Me,
    "list_clients": ClientList,
    "create_client": Client,
    "client_root": Listing,
    "create_folder": Folder,
    "make_folder_path": Folder,
    "get_folder": Listing,
    "update_folder": Listing,
    "put_file": Stored,
    "get_document": Document,
    "update_document": Document,
    "restore_version": Restored,
    "create_document_link": CreatedLink,
    "create_folder_link": CreatedLink,
    "list_links": LinkList,
    "get_usage": Usage,
    "set_quota": Usage,
    "get_retention": PolicyList,
    "list_holds": HoldList,
    "place_hold": Hold,
    "release_hold": Hold,
    "client_requests": RequestList,
    "open_requests": RequestList,
    "get_request": DocumentRequest,
    "create_request": DocumentRequest,
    "submit_item": DocumentRequest,
    "answer_item": DocumentRequest,
    "close_request": DocumentRequest,
    "edit_request": DocumentRequest,
    "remind_request": DocumentRequest,
    "list_request_templates": RequestTemplateList,
    "create_request_template": RequestTemplate,
    "update_request_template": RequestTemplate,
    "list_trash": TrashList,
    "get_receipts": Receipts,
    "list_alerts": AlertList,
    "get_session": BrowserSession,
}
_REF = "#/components/schemas/{model}"


def response_content(model: type[BaseModel]) -> dict[str, Any]:
    """The `content` of a JSON answer shaped as `model`; its schema joins the components."""
    schema = model.model_json_schema(ref_template=_REF)
    MODEL_SCHEMAS.update(schema.pop("$defs", {}))
    MODEL_SCHEMAS[model.__name__] = schema
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _header(description: str, *, required: bool = True, integer: bool = False) -> dict[str, Any]:
    schema = {"type": "string", "pattern": "^[0-9]+$"} if integer else {"type": "string"}
    return {"description": description, "required": required, "schema": schema}


_LOCATION = {"Location": _header("The new resource's URL")}
_TUS = {"Tus-Resumable": {"required": True, "schema": {"const": "1.0.0"}}}
_OFFSET = {"Upload-Offset": _header("Bytes stored so far", integer=True)}
# operationId: status: the headers of that answer.
HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "put_file": {"200": _LOCATION, "201": _LOCATION},
    "restore_version": {"201": _LOCATION},
    "create_document_link": {"201": _LOCATION},
    "create_folder_link": {"201": _LOCATION},
    "get_content": {
        "200": {
            "ETag": _header("The version's strong validator"),
            "Accept-Ranges": {"required": True, "schema": {"const": "bytes"}},
        }
    },
    "uploads_options": {
        "204": {
            **_TUS,
            "Tus-Version": _header("1.0.0"),
            "Tus-Extension": _header("The tus extensions served"),
            "Tus-Max-Size": _header("The largest upload accepted", integer=True),
        }
    },
    "uploads_create": {
        "201": {**_TUS, **_LOCATION, **_OFFSET, "Upload-Expires": _header("RFC 9110 date")}
    },
    "uploads_head": {"200": {**_TUS, **_OFFSET, "Upload-Length": _header("", integer=True)}},
    "uploads_patch": {"204": {**_TUS, **_OFFSET}},
    "uploads_delete": {"204": _TUS},
}
# Successful answers that are not a JSON object: bytes, text, JSON Lines or nothing.
_NOT_JSON = frozenset(
    {"get_content", "export_events", "checkpoint", "checkpoint_key", "uploads_head"}
)
_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def describe_answers(paths: dict[str, Any]) -> None:
    """Give each operation's successful answers their body schema and headers."""
    for item in paths.values():
        if "servers" in item:
            continue  # served outside /api/v1 (a link's visitor side), described in full
        for operation in item.values():
            op_id = operation["operationId"]
            model = RESPONSE_MODELS.get(op_id)
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                if status in HEADERS.get(op_id, {}):
                    response["headers"] = HEADERS[op_id][status]
                if status == "204" or op_id in _NOT_JSON or "content" in response:
                    continue
                response["content"] = _OBJECT if model is None else response_content(model)
