"""The OpenAPI description of the records routes (`web/api/records.py`): quotas, retention
policies and legal holds, all for administrators but the usage, which whoever sees the
client may read (see docs/retention.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.api.openapi_models import json_body
from web.api.records import NewHold, Quota, Release, Retention

Op = Callable[..., dict[str, Any]]


def records_paths(_op: Op) -> dict[str, Any]:
    return {
        "/clients/{client_id}/usage": {
            "get": _op(
                "Bytes stored by the client (every version and the trash), bytes reserved by "
                "uploads in flight, its quota (null: unlimited) and the share used",
            )
        },
        "/clients/{client_id}/quota": {
            "put": _op(
                "Set the client's quota in bytes (admin); null returns it to the firm-wide "
                "default, 0 is unlimited. Uploads past it are refused with 413 before their "
                "bytes are stored",
                body=json_body(Quota),
            )
        },
        "/clients/{client_id}/retention": {
            "get": _op(
                "The client's retention policies, its own and its folders' (admin)",
            ),
            "put": _op(
                "Set the retention policy of the client or of one folder (admin): keep the "
                "last `keep_versions`, versions younger than `keep_days`, empty the trash "
                "after `trash_days`; null inherits, 0 is no limit, all null removes it",
                body=json_body(Retention),
            ),
        },
        "/clients/{client_id}/retention/plan": {
            "get": _op("What retention would delete now: a dry run (admin)")
        },
        "/clients/{client_id}/holds": {
            "get": _op("The client's legal holds, standing and released (admin)"),
            "post": _op(
                "Place a legal hold on the client or one folder (admin): no deletion under "
                "it until released",
                "201",
                body=json_body(NewHold),
            ),
        },
        "/holds/{hold_id}/release": {
            "post": _op(
                "Release a legal hold (admin); it stays on record",
                body=json_body(Release),
            )
        },
    }
