"""The console's Reports page (admins, and staff for their clients): one client's figures
as server-rendered SVG charts with the same figures in tables, each table also as CSV."""

from __future__ import annotations

import csv
import io

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vault import reports
from vault.db import transaction
from vault.errors import NotFoundError
from web import i18n
from web.charts import Series, bar_chart
from web.context import audit_context, services
from web.ids import id_or_none, parse_id
from web.pages.common import page
from web.pages.console_people import chrome, console_caller
from web.pages.render import page_language, render

TABLES = ("weeks", "turnaround", "overdue", "active")
WEEK_CHOICES = (4, 12, 26, 52)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/reports", reports_page, methods=["GET"]),
        Route("/admin/reports/{client_id}/{table}.csv", export_csv, methods=["GET"]),
    ]


def _weeks(request: Request) -> int:
    raw = request.query_params.get("weeks", "12")
    return int(raw) if raw.isdigit() and int(raw) in WEEK_CHOICES else 12


@page
async def reports_page(request: Request) -> Response:
    weeks = _weeks(request)
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session)
        choices = await reports.clients_for(session, caller.principal)
        wanted = id_or_none(request.query_params.get("client_id"))
        if wanted is None and choices:
            wanted = choices[0].id
        found = (
            await reports.report(
                session,
                caller.principal,
                wanted,
                weeks=weeks,
                context=audit_context(request, caller.principal),
            )
            if wanted is not None
            else None
        )
        values = chrome(caller)
    lang = page_language(request, values)
    charts = {}
    tr = i18n.translations(lang)
    rtl = i18n.direction(lang) == "rtl"
    if found is not None:
        labels = [i18n.format_day(w.start, lang, "short") for w in found.weeks]
        charts["activity"] = bar_chart(
            chart_id="chart-activity",
            title=tr.gettext("Uploads and downloads per week"),
            description=tr.gettext("Bars per week: uploads first, downloads second."),
            labels=labels,
            series=[
                Series(tr.gettext("Files uploaded"), [w.uploads for w in found.weeks], "bar"),
                Series(
                    tr.gettext("Files downloaded"),
                    [w.downloads for w in found.weeks],
                    "bar bar--second",
                ),
            ],
            value_label=lambda v: i18n.format_number(v, lang),
            rtl=rtl,
        )
        charts["storage"] = bar_chart(
            chart_id="chart-storage",
            title=tr.gettext("Storage at the end of each week"),
            description=tr.gettext("Bytes stored, every version and the trash included."),
            labels=labels,
            series=[Series(tr.gettext("Stored"), [w.stored for w in found.weeks])],
            value_label=lambda v: i18n.format_size(v, lang),
            rtl=rtl,
        )
    return render(
        request,
        "console/reports.html",
        **values,
        choices=choices,
        report=found,
        weeks=weeks,
        week_choices=WEEK_CHOICES,
        charts=charts,
    )


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _cell(value: object) -> str:
    text = str(value)
    # A cell starting with one of these runs as a formula in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@page
async def export_csv(request: Request) -> Response:
    table = request.path_params["table"]
    async with transaction(services(request).sessions) as session:
        caller = await console_caller(request, session)
        if table not in TABLES:
            raise NotFoundError("no such table")
        found = await reports.exported(
            session,
            caller.principal,
            audit_context(request, caller.principal),
            parse_id(request.path_params["client_id"], "client"),
            table=table,
            weeks=_weeks(request),
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 §2: CRLF line breaks
    if table == "weeks":
        writer.writerow(["week_start", "uploads", "downloads", "stored_bytes"])
        for w in found.weeks:
            writer.writerow([w.start.isoformat(), w.uploads, w.downloads, w.stored])
    elif table == "turnaround":
        writer.writerow(["requests_answered", "median_days", "p90_days"])
        writer.writerow([found.answered, _days(found.median_days), _days(found.p90_days)])
    elif table == "overdue":
        writer.writerow(["title", "due_date", "days_overdue"])
        for o in found.overdue:
            writer.writerow([_cell(o.title), o.due.isoformat(), o.days])
    else:
        writer.writerow(["email", "name", "events"])
        for a in found.active:
            writer.writerow([_cell(a.email), _cell(a.name), a.events])
    name = f"{table}-{found.client.id}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
