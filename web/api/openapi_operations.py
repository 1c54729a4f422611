"""What each operation of the document answers, derived from the route table and the
handlers rather than written out per path: its operationId, its security and the
problem+json statuses it can answer (web/errors.py maps the errors to them)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from web.api.openapi_parameters import PARAMETERS
from web.api.openapi_statuses import EXTRA_STATUSES, PROBLEM_TITLES

__all__ = ["Handler", "complete", "operation_id"]

Handler = Callable[..., Any]

_PROBLEM = {"$ref": "#/components/responses/Problem"}
# A handler named only by its verb (the tus handlers, the trash's restore) takes its
# module's name too, so that the id still says what it acts on.
_VERBS = frozenset({"options", "create", "head", "patch", "delete", "restore"})
# Routes that refuse a Bearer token: account management (`session_call` answers 403) and
# the browser's own session (404 or 409 when a token is sent instead).
_SESSION_ONLY = frozenset({"get_session", "delete_session", "second_factor"})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
BEARER_OR_SESSION: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
SESSION: list[dict[str, list[str]]] = [{"session": []}]


def _original(handler: Handler) -> Handler:
    return getattr(handler, "__wrapped__", handler)


def operation_id(handler: Handler) -> str:
    name: str = _original(handler).__name__
    module = _original(handler).__module__.rsplit(".", 1)[-1]
    return f"{module}_{name}" if name in _VERBS else name


def _session_only(handler: Handler) -> bool:
    original = _original(handler)
    return original.__name__ in _SESSION_ONLY or "session_call(" in inspect.getsource(original)


def _statuses(operation: dict[str, Any], public: bool) -> set[int]:
    """The error statuses every operation of its shape can answer."""
    found = {503}  # the database or the object store out of service (web/errors.py)
    if not public:
        # 403: a cross-site or CSRF-less state change, or a role that may not do this.
        found |= {401, 403}
    params = operation.get("parameters", [])
    if any(p["in"] == "path" for p in params):
        found.add(404)  # a malformed id is not found like a missing one (web/ids.py)
    if any(p["in"] == "query" for p in params):
        found.add(422)
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        # Not JSON or not an object (400), over 64 KiB (413), a field refused (422).
        found |= {400, 413, 422}
    return found


def _add_path_parameters(path: str, operation: dict[str, Any]) -> None:
    """The path's template variables, first among the parameters: ids are opaque strings."""
    operation["parameters"] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PLACEHOLDER.findall(path)
    ] + operation.get("parameters", [])
    if not operation["parameters"]:
        del operation["parameters"]


def complete(paths: dict[str, Any], handlers: Iterable[tuple[str, str, Handler]]) -> None:
    """Give every operation in `paths` its id, security and problem statuses.

    `handlers` holds (method, path, handler) for every operation the app serves.
    """
    for method, path, handler in handlers:
        operation = paths[path][method]
        op_id = operation_id(handler)
        operation["operationId"] = op_id
        _add_path_parameters(path, operation)
        exact = PARAMETERS.get(op_id, {})
        for parameter in operation.get("parameters", []):
            parameter.update(exact.get(parameter["name"], {}))
        public = operation.get("security") == []
        if not public:
            operation["security"] = SESSION if _session_only(handler) else BEARER_OR_SESSION
        responses = operation["responses"]
        for status in sorted(_statuses(operation, public) | EXTRA_STATUSES.get(op_id, set())):
            if str(status) not in responses:
                responses[str(status)] = {
                    **_PROBLEM,
                    "description": PROBLEM_TITLES.get(status, "Problem"),
                }
