"""Request schemas of the OpenAPI document, generated from the input models the routes
validate with (web/api/inputs.py), so the document and the checks cannot disagree."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["MODEL_SCHEMAS", "json_body", "query_parameters"]

# Filled as the document is built; merged into `components.schemas`.
MODEL_SCHEMAS: dict[str, Any] = {}
_REF = "#/components/schemas/{model}"


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The `requestBody.content` of a route that takes `model` as its JSON body."""
    schema = model.model_json_schema(ref_template=_REF)
    MODEL_SCHEMAS.update(schema.pop("$defs", {}))
    MODEL_SCHEMAS[model.__name__] = schema
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The `parameters` of a route that takes `model` as its query string."""
    schema = model.model_json_schema(ref_template=_REF)
    MODEL_SCHEMAS.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]
