"""Schemas of the OpenAPI document that are more than a list of string properties."""

from __future__ import annotations

from typing import Any

_TEXT = {"type": ["string", "null"]}
# actor_email, actor_name, target_label: hashed in entry format 2 (v 2) as they were then;
# for v 1 joined from the current tables (labels_from "current"). See docs/audit-log.md.
AUDIT_EVENT = {
    "type": "object",
    "properties": {
        **dict.fromkeys(("actor_id", "actor_role", "actor_email", "actor_name", "ip"), _TEXT),
        **dict.fromkeys(("client_id", "target_type", "target_id"), _TEXT),
        "target_label": {
            **_TEXT,
            "description": "The target's name as it was when the event was written (a "
            "document's name, a folder's path, a person's `Name <email>`). For a document, "
            "details.version and details.range (inclusive `start-end`, ranged reads only), "
            "hashed with the event, complete it: readers show `Tax return 2025.pdf (version 3, "
            "bytes 0–1,048,575)`. See docs/audit-log.md.",
        },
        **{k: {"type": "string"} for k in ("ts", "action", "outcome", "prev", "leaf_hash")},
        "document_id": _TEXT,
        "user_agent": _TEXT,
        "seq": {"type": "integer"},
        "v": {"type": "integer", "enum": [1, 2]},
        "details": {
            "type": "object",
            "description": "Facts of the action; for a document read or write, `version` "
            "(integer) and for a ranged read `range` (`start-end`, inclusive byte offsets).",
        },
        "labels_from": {"enum": ["event", "current"]},
    },
}
AUDIT_PAGE = {
    "type": "object",
    "properties": {
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
        "next_cursor": _TEXT,
    },
}

# RFC 9457 problem details; `field` names a refused field, `rule` a refused name's rule.
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "rule": {"type": "string"},
    },
}

SCHEMAS = {"AuditEvent": AUDIT_EVENT, "AuditPage": AUDIT_PAGE}


def with_schema(name: str, operation: dict[str, Any]) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
    operation["responses"]["200"] = {"description": "OK", "content": content}
    return operation
