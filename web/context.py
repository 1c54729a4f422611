"""Per-request helpers: the services, the caller and the audit context."""

from __future__ import annotations

from starlette.requests import Request

from vault.audit import AuditContext
from vault.policy import Principal
from web.observe import request_id_of
from web.services import Services


def services(request: Request) -> Services:
    svc: Services = request.state.services
    return svc


def client_ip(request: Request) -> str | None:
    # uvicorn rewrites request.client from X-Forwarded-For only for --forwarded-allow-ips,
    # so a header sent by anyone else cannot forge the address we log.
    return request.client.host if request.client else None


def audit_context(request: Request, principal: Principal | None = None) -> AuditContext:
    return AuditContext(
        actor_id=str(principal.user_id) if principal else None,
        actor_role=principal.role.value if principal else None,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_of(request.scope),
    )
