"""Per-request observation: a request id, one access-log line and the HTTP metrics, and
the count of requests in flight that lets an idle process give memory back
(`web.idle_memory`).

A pure ASGI middleware, so streamed bodies pass through untouched and their bytes are
counted as they go. The request id is returned as `X-Request-Id` and carried into the
audit events of the request (`web.context.audit_context`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.idle_memory import IdleRelease
from web.metrics import Metrics

ACCESS_LOGGER = "clientvault.access"
REQUEST_ID_KEY = "clientvault.request_id"
# What a trusted balancer may send: short, and safe to log and echo in a header.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "<unmatched>"
access_log = logging.getLogger(ACCESS_LOGGER)


def request_id_of(scope: Scope) -> str | None:
    """The id given to this request, if it passed through `ObserveMiddleware`."""
    value = scope.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    """The path template the request matches, e.g. `/api/v1/documents/{document_id}`.

    Never the raw path: ids in paths would make a label value per document, and a
    stranger's probes one per guess.
    """
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.PARTIAL and partial is None:
            partial = getattr(route, "path", None)  # the path fits, the method does not (405)
        if match != Match.FULL:
            continue
        path: str = getattr(route, "path", "")
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                return path + route_template(list(inner), {**scope, **child})
            return path or "/"
        return path
    return partial or UNMATCHED


class ObserveMiddleware:
    """Gives each HTTP request an id, logs it once when it ends, and measures it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        trust_request_id: bool = False,
        idle: IdleRelease | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.trust_request_id = trust_request_id
        self.idle = idle

    def _request_id(self, scope: Scope) -> str:
        if self.trust_request_id:
            for name, value in scope.get("headers", []):
                if name == b"x-request-id":
                    candidate: str = bytes(value).decode("latin-1")
                    if _REQUEST_ID.fullmatch(candidate):
                        return candidate
        return uuid.uuid4().hex

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        scope[REQUEST_ID_KEY] = request_id
        # The router rewrites the scope as it descends into mounts: match a copy of it.
        pristine = dict(scope)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering
        bytes_in = 0
        bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        if self.idle is not None:
            self.idle.started()
        try:
            await self.app(scope, counting_receive, observing_send)
        finally:
            if self.idle is not None:
                self.idle.ended(bytes_in + bytes_out)
            elapsed = time.perf_counter() - started
            app = scope.get("app")
            routes: list[BaseRoute] = list(getattr(getattr(app, "router", None), "routes", []))
            route = route_template(routes, pristine)
            method: str = scope["method"]
            if self.metrics is not None:
                self.metrics.requests.labels(route, method, str(status)).observe(elapsed)
                self.metrics.bytes_in.labels(route).inc(bytes_in)
                self.metrics.bytes_out.labels(route).inc(bytes_out)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                },
            )


# uvicorn adds `color_message`: the message again, with terminal escapes.
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",
}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _RESERVED and not name.startswith("_"):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


JSONFormatter.converter = time.gmtime  # timestamps in UTC, as the audit log's


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test runners swap it per test)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(*, format: str, level: str) -> None:
    """Send every log record to stderr as text or JSON lines, at `level` and above."""
    handler = _StderrHandler()
    if format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_clientvault", False):
            root.removeHandler(old)
    handler._clientvault = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
