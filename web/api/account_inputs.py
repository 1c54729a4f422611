"""The bodies the account and user-management routes take (web/api/account.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from vault.accounts.profiles import MAX_DISPLAY_NAME
from vault.models import Role
from web.api.inputs import BlankIsNone, Body, NotNull

__all__ = [
    "Invitation",
    "NewPassword",
    "NewToken",
    "Password",
    "TotpConfirmation",
    "UserChange",
]


class NewPassword(Body):
    current_password: str
    new_password: str


class TotpConfirmation(Body):
    code: str
    # Needed from a signed-in session, not at the enrolment stage of signing in.
    password: str | None = None


class Password(Body):
    password: str


class NewToken(Body):
    name: str | None = None
    scope: Annotated[Literal["read", "read-write"] | None, BlankIsNone] = None
    # At most `auth.token_max_days`, checked by the route; absent means that many, and
    # null is refused like any other non-number.
    expires_in_days: Annotated[
        Annotated[int, Field(ge=1)] | None,
        NotNull,
        WithJsonSchema({"type": "integer", "minimum": 1}),
    ] = None
    password: str
    code: str | None = None


class Invitation(Body):
    email: str
    role: Annotated[Role | None, BlankIsNone] = None  # a client user
    client_ids: list[str] = Field(default_factory=list)
    display_name: Annotated[str, Field(max_length=MAX_DISPLAY_NAME)] | None = None


class UserChange(Body):
    role: Annotated[Role | None, NotNull] = None
    active: Annotated[bool | None, NotNull] = None
