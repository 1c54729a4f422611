"""Liveness and readiness probes for the load balancer."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from web.context import services

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    draining = getattr(request.app.state, "draining", None)
    if draining is not None and draining.is_set():
        # Stopping (web/serve.py): the balancer should send new requests elsewhere.
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the log
        logger.warning("readiness: database: %s", exc)
        checks["database"] = "unavailable"
    try:
        await svc.store.check()
        checks["storage"] = "ok"
    except Exception as exc:
        logger.warning("readiness: storage: %s", exc)
        checks["storage"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
