"""Server-rendered pages: the Jinja environment and the response every page goes out in.

Templates hold every visible string, wrapped for gettext (`_()` and `{% trans %}`); each
language has its own environment with its catalogue and locale-aware filters (`when`, `day`,
`size`, `number`).
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse

from web import i18n
from web.devices import device

# Pages load their script and style from /static only: no inline script or style, so an
# injected <script> or style attribute does not run (XSS, CSS exfiltration). `data:` images
# are for nothing but small inline icons; the QR code is inline SVG markup, not an image.
# Frames may show our own sandboxed document previews (`disposition=inline`) and nothing else.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'; "
    "frame-src 'self'"
)

PAGE_REFERRER_POLICY = "same-origin"


@pass_context
def _when(context: Context, moment: datetime | None, form: str = "medium") -> str | Markup:
    lang, tz = context["lang"], context["tz"]
    shown = i18n.format_moment(moment, lang, tz, form)
    if lang not in i18n.SOLAR_HIJRI or moment is None:
        return shown
    # The Gregorian date one hover away, for the Persian pages' Solar Hijri dates.
    other = i18n.format_moment(moment, lang, tz, form, gregorian=True)
    return Markup('<span title="{}">{}</span>').format(other, shown)


@pass_context
def _day(context: Context, day: date | None, form: str = "medium") -> str | Markup:
    lang = context["lang"]
    shown = i18n.format_day(day, lang, form)
    if lang not in i18n.SOLAR_HIJRI or day is None:
        return shown
    other = i18n.format_day(day, lang, form, gregorian=True)
    return Markup('<span title="{}">{}</span>').format(other, shown)


@pass_context
def _size(context: Context, size: int | None) -> str:
    return i18n.format_size(size, context["lang"])


@pass_context
def _number(context: Context, value: int) -> str:
    return i18n.format_number(value, context["lang"])


@pass_context
def _ago(context: Context, moment: datetime | None) -> str:
    return i18n.format_ago(moment, context["lang"])


@pass_context
def _city(context: Context, zone: str) -> str:
    return i18n.zone_city(zone, context["lang"])


@functools.cache
def environment(lang: str) -> Environment:
    """One environment per language, each with its catalogue installed."""
    env = Environment(
        loader=PackageLoader("web", "templates/pages"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    if lang in i18n.RTL:
        env.globals.update(_sentences(lang))
    env.filters.update(
        when=_when, day=_day, size=_size, number=_number, ago=_ago, city=_city, device=device
    )
    return env


# Unicode's FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: <bdi> for text that may end up in
# an attribute as well as in an element (labels, confirmations, the uploader's messages).
_FSI, _PDI = "\u2068", "\u2069"


def _fill(value: Any, lang: str) -> Any:
    """A value as it goes into a translated sentence on a right-to-left page: text isolated,
    so "1099-NEC forms" inside a Persian sentence does not become "NEC forms-1099"; counts and
    version numbers in the language's digits."""
    if isinstance(value, (bool, Markup)):
        return value
    if isinstance(value, int):
        return i18n.format_number(value, lang)
    if isinstance(value, str):
        return f"{_FSI}{value}{_PDI}"
    return value


def _sentences(lang: str) -> dict[str, Any]:
    """`gettext` and `ngettext` as Jinja's newstyle i18n installs them (the string, then
    `%` with the variables, autoescaped), with every variable passed through `_fill`."""
    catalogue = i18n.translations(lang)

    @pass_context
    def gettext(context: Context, string: str, **variables: Any) -> str:
        text: str = catalogue.gettext(string)
        if context.eval_ctx.autoescape:
            # The catalogue is ours and trusted as the templates are, as Jinja's own does.
            text = Markup(text)  # noqa: S704
        return text % {name: _fill(value, lang) for name, value in variables.items()}

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text: str = catalogue.ngettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704
        return text % {name: _fill(value, lang) for name, value in variables.items()}

    return {"gettext": gettext, "ngettext": ngettext}


def page_language(request: Request, context: dict[str, Any]) -> str:
    user = context.get("user")
    return i18n.negotiate(request, getattr(user, "locale", None))


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
    lang = page_language(request, context)
    user = context.get("user")
    html = (
        environment(lang)
        .get_template(template)
        .render(
            path=request.url.path,
            status_code=status,
            lang=lang,
            dir=i18n.direction(lang),
            tz=getattr(user, "timezone", None) or "UTC",
            languages=i18n.LANGUAGES,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status, headers=headers, background=background)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    # Under `no-referrer` a browser posts a form with `Origin: null` (Fetch §3.1, "append a
    # request Origin header"), which `check_origin` must refuse as it cannot tell it from a
    # sandboxed attacker's frame. `same-origin` keeps the real origin on our own forms and
    # still sends nothing to other sites (the invitation and reset links carry secrets).
    response.headers["Referrer-Policy"] = PAGE_REFERRER_POLICY
    return response
