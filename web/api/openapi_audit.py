"""The OpenAPI description of the audit routes: the log, its exports, checks, alerts,
checkpoints and proofs (`web/api/openapi.py` puts it in the document)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.api.audit_routes import AuditQuery, ExportQuery
from web.api.openapi_models import query_parameters
from web.api.openapi_schemas import with_schema


def audit_paths(_op: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return {
        "/audit": {
            "get": with_schema(
                "AuditPage",
                {
                    **_op("Audit events, newest first (auditor, admin)"),
                    "parameters": query_parameters(AuditQuery),
                },
            )
        },
        "/audit/export": {
            "get": {
                **_op(
                    "Streamed export, itself audited, with its checkpoint and proof (JSON "
                    "Lines; csv: a zip of audit.csv, audit.checkpoint, audit.proof.jsonl)"
                ),
                "parameters": query_parameters(ExportQuery),
            }
        },
        "/audit/verify": {"get": _op("Check the hash chain end to end")},
        "/audit/alerts": {
            "get": _op(
                "Alerts raised by the [alerts] rules, newest first: {alerts: [{id, rule, "
                "subject, actor_id, ip, seq, ts, event_seqs, details, raised_at, emailed}]} "
                "(auditor, admin)",
                limit="query",
            )
        },
        "/audit/alerts/{alert_id}": {
            "get": _op(
                "One alert and the events behind it: the alert's fields and events (auditor, "
                "admin)",
            )
        },
        "/audit/checkpoint": {
            "get": _op("The latest signed checkpoint: a C2SP tlog-checkpoint signed note, text")
        },
        "/audit/checkpoint/key": {
            "get": _op("The checkpoint verifier key: <name>+<key id>+<base64 key>, text")
        },
        "/audit/proof/inclusion": {
            "get": _op(
                "RFC 9162 inclusion proof: {leaf_index, tree_size, leaf_hash, audit_path}; "
                "400 out of range",
                seq="query",
                tree_size="query",
            )
        },
        "/audit/proof/consistency": {
            "get": _op(
                "RFC 9162 consistency proof: {first, second, consistency_path}; 400 out of range",
                first="query",
                second="query",
            )
        },
    }
