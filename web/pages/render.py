"""Server-rendered pages: the Jinja environment and the response every page goes out in.

Templates hold every visible string, wrapped for gettext (`_()` and `{% trans %}`); until
catalogues exist the null translations pass English through.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse

# Pages load their script and style from /static only: no inline script or style, so an
# injected <script> or style attribute does not run (XSS, CSS exfiltration). `data:` images
# are for nothing but small inline icons; the QR code is inline SVG markup, not an image.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)

PAGE_REFERRER_POLICY = "same-origin"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they are stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_env = Environment(
    loader=PackageLoader("web", "templates/pages"),
    autoescape=True,
    undefined=StrictUndefined,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
_env.filters["when"] = _when


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page with the page CSP. Pages are never stored by caches or the browser: they carry
    the session's CSRF token and personal data, and some show secrets once."""
    html = _env.get_template(template).render(path=request.url.path, status_code=status, **context)
    response = HTMLResponse(html, status_code=status, headers=headers, background=background)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    # Under `no-referrer` a browser posts a form with `Origin: null` (Fetch §3.1, "append a
    # request Origin header"), which `check_origin` must refuse as it cannot tell it from a
    # sandboxed attacker's frame. `same-origin` keeps the real origin on our own forms and
    # still sends nothing to other sites (the invitation and reset links carry secrets).
    response.headers["Referrer-Policy"] = PAGE_REFERRER_POLICY
    return response
