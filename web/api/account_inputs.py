"""The bodies the account and user-management routes take (web/api/account.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from vault.models import Role, TokenScope
from vault.profiles import MAX_DISPLAY_NAME
from web.api.inputs import Body

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
    scope: Literal["read", "read-write"] = TokenScope.READ_WRITE.value
    # At most `auth.token_max_days`, checked by the route; absent or null means that many.
    expires_in_days: Annotated[int, Field(ge=1)] | None = None
    password: str
    code: str | None = None


class Invitation(Body):
    email: str
    role: Role = Role.CLIENT
    client_ids: list[str] = Field(default_factory=list)
    display_name: Annotated[str, Field(max_length=MAX_DISPLAY_NAME)] | None = None


class UserChange(Body):
    role: Role | None = None
    active: bool | None = None
