"""Domain errors to HTTP: RFC 9457 problem+json on the API; never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage import ObjectNotFoundError, StorageError, StorageFullError
from vault.errors import (
    AuditTreeError,
    CheckpointError,
    ConflictError,
    HeldError,
    IncompleteUploadError,
    IntegrityError,
    InvalidDropError,
    InvalidHoldError,
    InvalidLinkPolicyError,
    InvalidNameError,
    InvalidRequestError,
    KeyNotFoundError,
    KeyringError,
    NonceReuseError,
    NotFoundError,
    NotMigratedError,
    PermissionDeniedError,
    QuotaExceededError,
    TooLargeError,
    VaultError,
)
from vault.links import InvalidLinkError
from web.headers import CSP, HEADERS
from web.refusals import audit_refusal

logger = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class ProblemError(Exception):
    """An error answered as problem+json with the given status."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        reason: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        # Why access was refused (a 401/403/404), for the audit log: e.g. "csrf".
        self.reason = reason
        self.extra = extra


def problem(
    status: int, title: str, detail: str = "", headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)
    response.headers["Cache-Control"] = "no-store"
    return response


_STATUS: list[tuple[type[Exception], int, str]] = [
    (InvalidNameError, 422, "Invalid name"),
    (InvalidRequestError, 422, "Invalid request"),
    (InvalidLinkError, 422, "Invalid request"),
    (InvalidLinkPolicyError, 422, "Invalid request"),
    (InvalidDropError, 422, "Invalid request"),
    (InvalidHoldError, 422, "Invalid request"),
    (HeldError, 409, "Legal hold"),
    (NotFoundError, 404, "Not found"),
    (PermissionDeniedError, 403, "Forbidden"),
    (ConflictError, 409, "Conflict"),
    (IncompleteUploadError, 400, "Incomplete upload"),
    (QuotaExceededError, 413, "Quota exceeded"),
    (TooLargeError, 413, "Content too large"),
    (NonceReuseError, 409, "Upload must restart"),
    (IntegrityError, 500, "Stored data failed its integrity check"),
    (KeyNotFoundError, 500, "Encryption key unavailable"),
    (KeyringError, 500, "Encryption key unavailable"),
    (NotMigratedError, 503, "Database not migrated"),
    (ObjectNotFoundError, 500, "Stored object missing"),
    (StorageFullError, 507, "Insufficient storage"),
    (StorageError, 503, "Object store unavailable"),
    (CheckpointError, 500, "Audit log failed its integrity check"),
    (AuditTreeError, 500, "Audit log failed its integrity check"),
    (VaultError, 400, "Bad request"),
]


_SERVER_DOWN = frozenset({"57P01", "57P02", "57P03", "53300"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached now (down, restarting, failing
    over, every pooled connection busy), rather than a fault of the request or the code."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        # OperationalError is what drivers raise for a lost or refused connection (PEP 249);
        # SQLAlchemy flags a connection it dropped as invalidated; PostgreSQL's SQLSTATE
        # class 08 and 57P01-57P03 (shutting down, crashed, starting up) and 53300 (too
        # many connections) say the same of the server (PostgreSQL docs, Appendix A).
        state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", ""))
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or state.startswith("08")
            or state in _SERVER_DOWN
        )
    return isinstance(exc, ConnectionError)


def unavailable_status(exc: BaseException) -> int | None:
    """503 (507 for a full store) when a backend is out of service, else None."""
    if isinstance(exc, StorageFullError):
        return 507
    if database_unavailable(exc) or (
        isinstance(exc, StorageError) and not isinstance(exc, ObjectNotFoundError)
    ):
        return 503
    return None


async def handle_database(request: Request, exc: Exception) -> Response:
    if not database_unavailable(exc):
        return await handle_unexpected(request, exc)
    # A bare ConnectionError may come from the database driver or another backend (SMTP).
    what = "Database" if isinstance(exc, sa_exc.SQLAlchemyError) else "Service"
    logger.error("%s unavailable on %s %s: %s", what, request.method, request.url.path, exc)
    # Retry-After (RFC 9110 §10.2.3): a restart or failover usually takes seconds.
    return problem(503, f"{what} unavailable", "try again later", headers={"Retry-After": "5"})


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    await audit_refusal(request, exc.status, exc.reason)
    extra = dict(exc.extra)
    headers: dict[str, str] | None = extra.pop("headers", None)
    return problem(exc.status, exc.title, exc.detail, headers=headers, **extra)


async def handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail or "Error", headers=dict(exc.headers or {}))


async def handle_domain(request: Request, exc: Exception) -> Response:
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            if status >= 500:
                logger.error("%s on %s %s: %s", title, request.method, request.url.path, exc)
                # Internal detail (keys, ids, store messages) is for the log, not the caller.
                return problem(status, title, "try again later" if status == 503 else "")
            await audit_refusal(request, status)
            extra: dict[str, Any] = {}
            if isinstance(exc, InvalidNameError):
                extra["rule"] = exc.rule
            if isinstance(exc, InvalidLinkError | InvalidDropError):
                extra["field"] = exc.field
            if isinstance(exc, QuotaExceededError):
                extra.update(quota=exc.quota, used=exc.used, requested=exc.requested)
            return problem(status, title, str(exc), **extra)
    return await handle_unexpected(request, exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    # Starlette answers this from its outermost middleware, outside SecurityHeadersMiddleware,
    # so the headers every response carries are added here.
    return problem(
        500, "Internal server error", headers={**HEADERS, "Content-Security-Policy": CSP}
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ProblemError: handle_problem,
    HTTPException: handle_http,
    VaultError: handle_domain,
    StorageError: handle_domain,
    sa_exc.DBAPIError: handle_database,
    sa_exc.TimeoutError: handle_database,
    ConnectionError: handle_database,
    Exception: handle_unexpected,
}
