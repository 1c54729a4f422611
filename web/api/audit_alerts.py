"""Alerts for auditors and admins: `/audit/alerts` and `/audit/alerts/{alert_id}`."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from vault.audit import alerts
from vault.audit import labels as audit_labels
from vault.audit.alerts import Alert
from vault.policy import Permission, require
from web.api.audit_routes import event_json
from web.api.common import api_call, iso, parse_id
from web.errors import ProblemError
from web.numbers import parse_int

MAX_LIMIT = 500


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "rule": alert.rule,
        "subject": alert.subject,
        "actor_id": alert.actor_id,
        "ip": alert.ip,
        "seq": alert.seq,
        "ts": alert.ts,
        "event_seqs": json.loads(alert.seqs),
        "details": json.loads(alert.details),
        "raised_at": iso(alert.raised_at),
        "emailed": alert.emailed_at is not None,
    }


async def list_alerts(request: Request) -> JSONResponse:
    """GET /audit/alerts?limit: the newest alerts first."""
    async with api_call(request) as call:
        # Checked before the query is parsed: a stranger learns nothing from its errors.
        require(call.principal, Permission.READ_AUDIT, None)
        raw = request.query_params.get("limit", "100")
        limit = parse_int(raw, minimum=1, maximum=MAX_LIMIT)
        if limit is None:
            raise ProblemError(422, "Invalid request", f"limit must be 1-{MAX_LIMIT}")
        found = await alerts.list_alerts(call.session, call.principal, call.audit, limit=limit)
        return JSONResponse({"alerts": [alert_json(a) for a in found]})


async def get_alert(request: Request) -> JSONResponse:
    """GET /audit/alerts/{alert_id}: the alert and the events behind it."""
    async with api_call(request) as call:
        alert_id = parse_id(request.path_params["alert_id"], "alert")
        alert, events = await alerts.get_alert(call.session, call.principal, call.audit, alert_id)
        joined = await audit_labels.current(call.session, events)
        return JSONResponse(
            {**alert_json(alert), "events": [event_json(e, joined) for e in events]}
        )
