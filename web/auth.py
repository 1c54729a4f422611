"""Who is calling: personal access tokens (Bearer) for scripts; browser sessions come later."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from vault import accounts
from vault.models import TokenScope, User
from vault.policy import Principal
from web.errors import ProblemError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="clientvault"'}


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, headers=_CHALLENGE)


async def authenticate(request: Request, session: AsyncSession) -> tuple[Principal, User]:
    """The caller of this request, or 401. Runs inside the request's transaction."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise _unauthorized("sign in or send Authorization: Bearer <token>")
    found = await accounts.authenticate_token(session, credentials.strip())
    if found is None:
        # One message for unknown, revoked and expired tokens: no oracle for guessing.
        raise _unauthorized("the token is not valid")
    user, token = found
    principal = await accounts.principal_for(
        session, user, read_only=token.scope == TokenScope.READ
    )
    return principal, user
