"""Declared input of the API: JSON bodies and query strings as pydantic models.

A model says what a route takes (types, required fields, lengths and choices taken from the
domain's own limits); the domain still owns every rule about meaning (a name's rules, a
date in the past, the caller's rights). A body that is not a JSON object stays a 400; a
field the model refuses is a 422 naming the field, as the hand-written checks answered.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from vault.names import MAX_DECOMPOSITION, MAX_NAME_BYTES
from web.api.common import json_body
from web.errors import ProblemError
from web.numbers import INT64_MAX, parse_int

__all__ = [
    "BlankIsNone",
    "Body",
    "Name",
    "NotNull",
    "OptionalText",
    "Query",
    "QueryCount",
    "parse_body",
    "parse_query",
]


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


def _decimal(value: object) -> object:
    if value == "":
        return None
    if isinstance(value, str):
        # ASCII digits only, and no numeral of any length converted (CVE-2020-10735).
        parsed = parse_int(value, maximum=INT64_MAX)
        if parsed is None:
            raise ValueError("must be a whole number, 0 or more, in decimal digits")
        return parsed
    return value


# A count or sequence number in a query string; empty means absent.
QueryCount = Annotated[Annotated[int, Field(ge=0, le=INT64_MAX)] | None, BeforeValidator(_decimal)]

# "" (and null) mean the field was left out, as the hand-written checks took them.
BlankIsNone = BeforeValidator(_blank_is_none)
OptionalText = Annotated[str | None, BlankIsNone]


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


# An optional field that, when sent, must have a value.
NotNull = BeforeValidator(_not_null)

# A name of a client, folder or file, before the domain normalises it and applies its rules
# (vault.names): at most MAX_NAME_BYTES in UTF-8 once composed, so a raw name may be longer.
Name = Annotated[
    str,
    Field(
        max_length=MAX_DECOMPOSITION * MAX_NAME_BYTES,
        description=f"at most {MAX_NAME_BYTES} bytes of UTF-8 once normalised (NFC)",
    ),
]


class Body(BaseModel):
    """A JSON request body: JSON's own types only (no "5" for 5), unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Query(BaseModel):
    """Query parameters: text on the wire, so numbers and dates are parsed from strings."""

    model_config = ConfigDict(extra="ignore", frozen=True)


M = TypeVar("M", bound=BaseModel)


def _problem(error: ErrorDetails, title: str = "Invalid request") -> ProblemError:
    field = str(error["loc"][0]) if error["loc"] else None
    if error["type"] == "missing":
        detail = f"{field} is required"
    elif field is None:
        detail = error["msg"]
    else:
        detail = f"{field}: {error['msg']}"
    return ProblemError(422, title, detail, field=field)


async def parse_body(request: Request, model: type[M]) -> M:
    """The request's JSON object as `model`; 400 for a body that is not one, else 422."""
    data = await json_body(request)
    try:
        # Validated as JSON text, so that strict mode takes JSON's strings for dates and
        # enumerations, as a client writes them.
        return model.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise _problem(exc.errors()[0]) from None


def parse_query(request: Request, model: type[M], *, title: str = "Invalid request") -> M:
    """The query string as `model` (the last value of a repeated parameter); 422 if refused."""
    data: dict[str, Any] = dict(request.query_params)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _problem(exc.errors()[0], title) from None
