"""The JSON API, version 1 (its contract is the generated document at /api/v1/openapi.json)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import BaseRoute, Route

from web.api import (
    account,
    audit_alerts,
    audit_proofs,
    audit_routes,
    clients,
    documents,
    filing,
    links,
    notifications,
    openapi,
    records,
    requests,
    signin,
    trash,
    uploads,
)
from web.api import request_templates as templates
from web.routing import one_route_per_path


def routes() -> list[BaseRoute]:
    """The API's routes, one per path (so a 405 lists every method of the path)."""
    return one_route_per_path(_routes())


def operations() -> Iterator[tuple[str, str, Any]]:
    """(method, path, handler) of every operation, as the OpenAPI document names them."""
    for route in _routes():
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD" or "GET" not in (route.methods or ()):
                yield method.lower(), route.path.replace(":path}", "}"), route.endpoint


def _routes() -> list[BaseRoute]:
    return [
        Route("/openapi.json", openapi.openapi_json, methods=["GET"]),
        Route("/me", clients.me, methods=["GET"]),
        Route("/clients", clients.list_clients, methods=["GET"]),
        Route("/clients", clients.create_client, methods=["POST"]),
        Route("/clients/{client_id}/folders", clients.client_root, methods=["GET"]),
        Route("/folders", clients.create_folder, methods=["POST"]),
        Route("/folders/{folder_id}", clients.get_folder, methods=["GET"]),
        Route("/folders/{folder_id}", filing.update_folder, methods=["PATCH"]),
        Route("/folders/{folder_id}/paths", filing.make_folder_path, methods=["POST"]),
        Route("/folders/{folder_id}/files/{name:path}", documents.put_file, methods=["PUT"]),
        Route("/documents/{document_id}", documents.get_document, methods=["GET"]),
        Route("/documents/{document_id}", documents.delete_document, methods=["DELETE"]),
        Route("/documents/{document_id}", filing.update_document, methods=["PATCH"]),
        Route("/documents/{document_id}/content", documents.get_content, methods=["GET"]),
        Route(
            "/documents/{document_id}/versions/{number}/restore",
            documents.restore_version,
            methods=["POST"],
        ),
        Route("/documents/{document_id}/receipts", documents.get_receipts, methods=["GET"]),
        Route("/documents/{document_id}/restore", trash.restore, methods=["POST"]),
        Route("/trash", trash.list_trash, methods=["GET"]),
        # Share and upload-request links.
        Route("/documents/{document_id}/links", links.create_document_link, methods=["POST"]),
        Route("/folders/{folder_id}/links", links.create_folder_link, methods=["POST"]),
        Route("/links", links.list_links, methods=["GET"]),
        Route("/links/{link_id}", links.revoke_link, methods=["DELETE"]),
        Route("/clients/{client_id}/link-policy", links.get_link_policy, methods=["GET"]),
        Route("/clients/{client_id}/link-policy", links.put_link_policy, methods=["PUT"]),
        # Records management: quotas, retention, legal holds.
        Route("/clients/{client_id}/usage", records.get_usage, methods=["GET"]),
        Route("/clients/{client_id}/quota", records.set_quota, methods=["PUT"]),
        Route("/clients/{client_id}/retention", records.get_retention, methods=["GET"]),
        Route("/clients/{client_id}/retention", records.set_retention, methods=["PUT"]),
        Route("/clients/{client_id}/retention/plan", records.retention_plan, methods=["GET"]),
        Route("/clients/{client_id}/holds", records.list_holds, methods=["GET"]),
        Route("/clients/{client_id}/holds", records.place_hold, methods=["POST"]),
        Route("/holds/{hold_id}/release", records.release_hold, methods=["POST"]),
        # Resumable uploads (tus 1.0.0).
        Route("/uploads", uploads.options, methods=["OPTIONS"]),
        Route("/uploads", uploads.create, methods=["POST"]),
        Route("/uploads/{upload_id}", uploads.head, methods=["HEAD"]),
        Route("/uploads/{upload_id}", uploads.patch, methods=["PATCH"]),
        Route("/uploads/{upload_id}", uploads.delete, methods=["DELETE"]),
        # Document requests.
        Route("/clients/{client_id}/requests", requests.client_requests, methods=["GET"]),
        Route("/clients/{client_id}/requests", requests.create_request, methods=["POST"]),
        Route("/requests", requests.open_requests, methods=["GET"]),
        Route("/requests/{request_id}", requests.get_request, methods=["GET"]),
        Route("/requests/{request_id}", requests.edit_request, methods=["PATCH"]),
        Route("/requests/{request_id}/reminders", requests.remind_request, methods=["POST"]),
        Route(
            "/requests/{request_id}/items/{item_id}/submit",
            requests.submit_item,
            methods=["POST"],
        ),
        Route(
            "/requests/{request_id}/items/{item_id}/answer",
            requests.answer_item,
            methods=["POST"],
        ),
        Route("/requests/{request_id}/close", requests.close_request, methods=["POST"]),
        Route("/request-templates", templates.list_request_templates, methods=["GET"]),
        Route("/request-templates", templates.create_request_template, methods=["POST"]),
        Route(
            "/request-templates/{template_id}",
            templates.update_request_template,
            methods=["PATCH"],
        ),
        Route(
            "/request-templates/{template_id}",
            templates.delete_request_template,
            methods=["DELETE"],
        ),
        Route("/audit", audit_routes.list_events, methods=["GET"]),
        Route("/audit/export", audit_routes.export_events, methods=["GET"]),
        Route("/audit/verify", audit_routes.verify_chain, methods=["GET"]),
        Route("/audit/alerts", audit_alerts.list_alerts, methods=["GET"]),
        Route("/audit/alerts/{alert_id}", audit_alerts.get_alert, methods=["GET"]),
        Route("/audit/checkpoint", audit_proofs.checkpoint, methods=["GET"]),
        Route("/audit/checkpoint/key", audit_proofs.checkpoint_key, methods=["GET"]),
        Route("/audit/proof/inclusion", audit_proofs.inclusion, methods=["GET"]),
        Route("/audit/proof/consistency", audit_proofs.consistency, methods=["GET"]),
        # Signing in and out, reset, invitations.
        Route("/session", signin.create_session, methods=["POST"]),
        Route("/session", signin.get_session, methods=["GET"]),
        Route("/session", signin.delete_session, methods=["DELETE"]),
        Route("/session/totp", signin.second_factor, methods=["POST"]),
        Route("/password-reset", signin.request_reset, methods=["POST"]),
        Route("/password-reset/confirm", signin.complete_reset, methods=["POST"]),
        Route("/invitations/accept", signin.accept_invitation, methods=["POST"]),
        Route("/invitations", account.invite, methods=["POST"]),
        # The caller's own account.
        Route("/me/sessions", account.list_sessions, methods=["GET"]),
        Route("/me/sessions", account.delete_other_sessions, methods=["DELETE"]),
        Route("/me/sessions/{handle}", account.delete_one_session, methods=["DELETE"]),
        Route("/me/password", account.change_password, methods=["POST"]),
        Route("/me/totp", account.totp_status, methods=["GET"]),
        Route("/me/totp", account.begin_totp, methods=["POST"]),
        Route("/me/totp/confirm", account.confirm_totp, methods=["POST"]),
        Route("/me/recovery-codes", account.regenerate_recovery_codes, methods=["POST"]),
        Route("/me/tokens", account.list_tokens, methods=["GET"]),
        Route("/me/tokens", account.create_token, methods=["POST"]),
        Route("/me/tokens/{token_id}", account.revoke_token, methods=["DELETE"]),
        # User management (admin).
        Route("/users/{user_id}", account.update_user, methods=["PATCH"]),
        Route("/users/{user_id}/totp", account.reset_user_totp, methods=["DELETE"]),
        # Notification settings and profile of the caller; undelivered email (admin).
        Route("/me/notifications", notifications.my_notifications, methods=["GET"]),
        Route("/me/notifications/{client_id}", notifications.set_my_notifications, methods=["PUT"]),
        Route("/me/profile", notifications.update_profile, methods=["PUT"]),
        Route("/notifications/failed", notifications.failed_notifications, methods=["GET"]),
        Route(
            "/notifications/{notification_id}/retry",
            notifications.retry_notification,
            methods=["POST"],
        ),
    ]
