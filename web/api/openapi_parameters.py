"""Parameter schemas more exact than a string, by operationId, from the limits the handlers
check (`openapi_operations.complete` puts them on the operations)."""

from __future__ import annotations

from typing import Any

from vault.publishing import MAX_MESSAGE
from web.api.audit_alerts import MAX_LIMIT as MAX_ALERTS
from web.api.notifications import MAX_LIST as MAX_NOTIFICATIONS

__all__ = ["PARAMETERS"]

INT32_MAX = 2**31 - 1


def _limit(maximum: int) -> dict[str, Any]:
    return {"schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": 100}}


# The audit proofs take positive decimals of up to 18 digits, required (400 without).
_POSITIVE = {"required": True, "schema": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1}}
_DECIMAL = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}

# operationId: parameter name: what replaces the parameter's fields.
PARAMETERS: dict[str, dict[str, dict[str, Any]]] = {
    "get_content": {
        "version": {"schema": {"type": "integer", "minimum": 1, "maximum": INT32_MAX}},
        "disposition": {"schema": {"enum": ["attachment", "inline"], "default": "attachment"}},
    },
    "restore_version": {"number": {"schema": {"type": "integer", "minimum": 1}}},
    "put_file": {"message": {"schema": {"type": "string", "maxLength": MAX_MESSAGE}}},
    "list_alerts": {"limit": _limit(MAX_ALERTS)},
    "failed_notifications": {"limit": _limit(MAX_NOTIFICATIONS)},
    "inclusion": {"seq": _POSITIVE, "tree_size": _POSITIVE},
    "consistency": {"first": _POSITIVE, "second": _POSITIVE},
    "uploads_create": {"Upload-Length": _DECIMAL},
    "uploads_patch": {"Upload-Offset": _DECIMAL},
}
