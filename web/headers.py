"""Security headers on every response (pure ASGI, so streamed bodies are not buffered)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API and downloads never need scripts or frames; browser pages tighten per page later.
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
# Everything but the static assets may describe someone's account or files, so no cache
# (browser, proxy or CDN) may keep a copy for the next user of the machine (RFC 9111 §5.2.2.5;
# review item 14). A route that knows better sets its own Cache-Control first.
NO_STORE = "no-store"
_CACHEABLE_PREFIXES = ("/static/",)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", CSP)
                if not scope.get("path", "").startswith(_CACHEABLE_PREFIXES):
                    headers.setdefault("Cache-Control", NO_STORE)
                if self.hsts:
                    headers.setdefault(
                        "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


# The largest request line plus headers `clientvault serve` reads, in bytes: twice nginx's
# largest default (4 buffers of 8 KiB), room for long cookies and URLs.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
# Apache's LimitRequestFields default. The byte size of the header block is bounded by the
# server (`clientvault serve` runs web/http_protocol.py); a
# request within it can still carry thousands of tiny lines, each one a parsing and
# lookup cost on every middleware (review item 15).
MAX_HEADER_LINES = 100


class HeaderLimitMiddleware:
    """Answer 431 (RFC 6585 §5) to a request with more than `MAX_HEADER_LINES` headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > MAX_HEADER_LINES:
            response = PlainTextResponse(
                "Request Header Fields Too Large", status_code=431, headers={"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
