"""Domain errors to HTTP: RFC 9457 problem+json on the API; never a traceback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage import ObjectNotFoundError, StorageError, StorageFullError
from vault.errors import (
    AuditQueryError,
    AuditTreeError,
    CheckpointError,
    ConflictError,
    HeldError,
    IncompleteUploadError,
    IntegrityError,
    InvalidAnnouncementError,
    InvalidDropError,
    InvalidEmailError,
    InvalidHoldError,
    InvalidInput,
    InvalidLinkError,
    InvalidLinkPolicyError,
    InvalidNameError,
    InvalidPathError,
    InvalidRequestError,
    KeyNotFoundError,
    KeyringError,
    MfaError,
    NonceReuseError,
    NoteError,
    NotFoundError,
    NotMigratedError,
    PermissionDeniedError,
    ProofError,
    QuotaExceededError,
    ScannerUnavailableError,
    TooLargeError,
    VaultError,
    WeakPasswordError,
)
from web.headers import CSP, HEADERS
from web.refusals import audit_refusal
from web.routing import allowed_methods

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


def _(message: str) -> str:
    """Marks a page message for extraction; the error page translates it when it renders."""
    return message


@dataclass(frozen=True, slots=True)
class PageText:
    """What the error page says of an error, as gettext message ids."""

    heading: str
    text: str


NOT_FOUND = PageText(_("Not found"), _("There is nothing here, or it is not yours to see."))
NOT_ALLOWED = PageText(
    _("Not allowed"),
    _("Your account may not do this. If you think it should, ask your contact at the firm."),
)
NOT_ACCEPTED = PageText(
    _("Not accepted"),
    _("Something you entered was not accepted. Go back, check it and try again."),
)
WEAK_PASSWORD = PageText(
    _("Password too weak"),
    _("That password is too short or too easy to guess. Go back and choose another."),
)
NOT_AN_EMAIL = PageText(_("Not an email address"), _("Go back and check the email address."))
CODE_REFUSED = PageText(
    _("Code not accepted"), _("The code was not accepted. Go back and try again.")
)
ALREADY_DONE = PageText(
    _("Already done"),
    _(
        "This cannot be done in the state things are in now, perhaps because it was just done "
        "in another window. Reload the page to see where things stand."
    ),
)
HELD = PageText(
    _("Under legal hold"),
    _(
        "A legal hold is in place on this client or folder: nothing under it can be deleted "
        "until the hold is released."
    ),
)
QUOTA = PageText(
    _("Storage quota used up"),
    _(
        "The storage quota is used up: uploads are refused until files are removed or the "
        "quota is raised."
    ),
)
TOO_LARGE = PageText(_("File too large"), _("The file is larger than the portal accepts."))
INCOMPLETE = PageText(
    _("Upload incomplete"), _("The upload stopped before the whole file arrived. Try again.")
)
RESTART = PageText(_("Upload must restart"), _("Start the upload again from the beginning."))
UNREADABLE = PageText(_("The form could not be read"), _("Go back, reload the page and try again."))
BROKEN = PageText(
    _("Something went wrong"),
    _(
        "Something went wrong on our side. Try again in a few minutes; if it keeps happening, "
        "tell your contact at the firm."
    ),
)
UNAVAILABLE = PageText(
    _("Briefly unavailable"),
    _("Part of the portal is not answering just now. Try again in a minute."),
)
STORAGE_DOWN = PageText(
    _("File storage unavailable"),
    _("The file store is not answering just now. Try again in a minute."),
)
STORAGE_FULL = PageText(
    _("No room for new files"),
    _(
        "The portal has run out of storage space and cannot take new files now. Files already "
        "stored can still be downloaded. Please tell your contact at the firm."
    ),
)


@dataclass(frozen=True, slots=True)
class Answer:
    """How one kind of error is answered: its status, its problem+json title, its page."""

    kind: type[Exception]
    status: int
    title: str
    page: PageText


# The one mapping for the API and the pages; the first entry the error is an instance of
# wins, so subclasses come before their bases.
ANSWERS: tuple[Answer, ...] = (
    Answer(InvalidNameError, 422, "Invalid name", NOT_ACCEPTED),
    # A malformed upload request (tus metadata), like the protocol's other 400s.
    Answer(InvalidPathError, 400, "Bad request", NOT_ACCEPTED),
    Answer(WeakPasswordError, 422, "Invalid request", WEAK_PASSWORD),
    Answer(InvalidEmailError, 422, "Invalid request", NOT_AN_EMAIL),
    Answer(InvalidRequestError, 422, "Invalid request", NOT_ACCEPTED),
    Answer(InvalidLinkError, 422, "Invalid request", NOT_ACCEPTED),
    Answer(InvalidLinkPolicyError, 422, "Invalid request", NOT_ACCEPTED),
    Answer(InvalidDropError, 422, "Invalid request", NOT_ACCEPTED),
    # Announcements answered 400 before they had a common base; API clients may rely on it.
    Answer(InvalidAnnouncementError, 400, "Bad request", NOT_ACCEPTED),
    Answer(AuditQueryError, 422, "Invalid filter", NOT_ACCEPTED),
    Answer(InvalidInput, 422, "Invalid request", NOT_ACCEPTED),
    Answer(MfaError, 422, "Invalid request", CODE_REFUSED),
    Answer(InvalidHoldError, 422, "Invalid request", NOT_ACCEPTED),
    Answer(HeldError, 409, "Legal hold", HELD),
    Answer(NotFoundError, 404, "Not found", NOT_FOUND),
    Answer(PermissionDeniedError, 403, "Forbidden", NOT_ALLOWED),
    Answer(ConflictError, 409, "Conflict", ALREADY_DONE),
    Answer(IncompleteUploadError, 400, "Incomplete upload", INCOMPLETE),
    Answer(QuotaExceededError, 413, "Quota exceeded", QUOTA),
    Answer(TooLargeError, 413, "Content too large", TOO_LARGE),
    Answer(NonceReuseError, 409, "Upload must restart", RESTART),
    Answer(IntegrityError, 500, "Stored data failed its integrity check", BROKEN),
    Answer(KeyNotFoundError, 500, "Encryption key unavailable", BROKEN),
    Answer(KeyringError, 500, "Encryption key unavailable", BROKEN),
    Answer(NotMigratedError, 503, "Database not migrated", UNAVAILABLE),
    Answer(ScannerUnavailableError, 503, "Scanner unavailable", UNAVAILABLE),
    Answer(ObjectNotFoundError, 500, "Stored object missing", BROKEN),
    Answer(StorageFullError, 507, "Insufficient storage", STORAGE_FULL),
    Answer(StorageError, 503, "Object store unavailable", STORAGE_DOWN),
    Answer(CheckpointError, 500, "Audit log failed its integrity check", BROKEN),
    Answer(AuditTreeError, 500, "Audit log failed its integrity check", BROKEN),
    Answer(ProofError, 500, "Audit log failed its integrity check", BROKEN),
    Answer(NoteError, 500, "Audit log failed its integrity check", BROKEN),
    # Errors of the command line (backup, fsck) that no request raises fall through here.
    Answer(VaultError, 400, "Bad request", UNREADABLE),
)


def answer_for(error: BaseException) -> Answer | None:
    """The entry of `ANSWERS` for a domain or storage error, None for any other."""
    return next((a for a in ANSWERS if isinstance(error, a.kind)), None)


def status_for(error: BaseException) -> int:
    """The status one error is answered with, on the API and on a page alike."""
    if isinstance(error, ProblemError):
        return error.status
    if isinstance(error, HTTPException):
        return error.status_code
    answer = answer_for(error)
    if answer is not None:
        return answer.status
    return 503 if database_unavailable(error) else 500


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
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(sorted(allowed_methods(request.app.routes, request.scope)))
    return problem(exc.status_code, exc.detail or "Error", headers=headers)


async def handle_domain(request: Request, exc: Exception) -> Response:
    answer = answer_for(exc)
    if answer is None:
        return await handle_unexpected(request, exc)
    status, title = answer.status, answer.title
    if status >= 500:
        logger.error("%s on %s %s: %s", title, request.method, request.url.path, exc)
        # Internal detail (keys, ids, store messages) is for the log, not the caller.
        return problem(status, title, "try again later" if status == 503 else "")
    await audit_refusal(request, status)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput):
        # What was wrong and which rule it broke, for a client to point at the field.
        extra.update({k: v for k, v in (("field", exc.field), ("rule", exc.rule)) if v})
    if isinstance(exc, QuotaExceededError):
        extra.update(quota=exc.quota, used=exc.used, requested=exc.requested)
    return problem(status, title, str(exc), **extra)


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
