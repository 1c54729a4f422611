"""The OpenAPI description of request templates (`web/api/request_templates.py`): the firm's
reusable checklists, for staff and administrators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.api.openapi_models import json_body
from web.api.request_templates import NewTemplate, TemplateChange

Op = Callable[..., dict[str, Any]]


def template_paths(_op: Op) -> dict[str, Any]:
    return {
        "/request-templates": {
            "get": _op("The firm's request templates, by name (staff, admin)"),
            "post": _op(
                "Save a request template for any client (staff, admin); names are unique "
                "whatever their case (409)",
                "201",
                body=json_body(NewTemplate),
            ),
        },
        "/request-templates/{template_id}": {
            "patch": _op(
                "Change a template (staff, admin); requests already started stay as they were",
                body=json_body(TemplateChange),
            ),
            "delete": _op("Delete a template (staff, admin)", "204"),
        },
    }
