"""Server-rendered browser pages: signing in, home, files, uploads, requests, publishing,
announcements, the account page, the firm's console, records management and the
auditor's pages.

They work without JavaScript: plain forms, each state-changing one carrying the session's
CSRF token, answered by a redirect or by the page again with the error next to the field.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from web.pages import (
    account,
    audit,
    audit_alerts,
    browse,
    console,
    doc_requests,
    drop_form,
    home,
    language,
    link_pages,
    publish,
    quarantine,
    records,
    request_items,
    share,
    signin,
    thumbnails,
    upload_form,
)
from web.pages import announcements as news

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [
        Route("/", home.home, methods=["GET"]),
        Route("/login", signin.login_form, methods=["GET"]),
        Route("/login", signin.login_submit, methods=["POST"]),
        Route("/login/totp", signin.totp_form, methods=["GET"]),
        Route("/login/totp", signin.totp_submit, methods=["POST"]),
        Route("/login/enrol", signin.enrol_form, methods=["GET"]),
        Route("/login/enrol", signin.enrol_submit, methods=["POST"]),
        Route("/logout", signin.logout, methods=["POST"]),
        Route("/invite/{token}", signin.invitation_form, methods=["GET"]),
        Route("/invite/{token}", signin.invitation_submit, methods=["POST"]),
        Route("/reset", signin.reset_request_form, methods=["GET"]),
        Route("/reset", signin.reset_request_submit, methods=["POST"]),
        Route("/reset/{token}", signin.reset_form, methods=["GET"]),
        Route("/reset/{token}", signin.reset_submit, methods=["POST"]),
        Route("/account", account.account, methods=["GET"]),
        Route("/account/password", account.change_password, methods=["POST"]),
        Route("/account/sessions/end-others", account.end_other_sessions, methods=["POST"]),
        Route("/account/sessions/{handle}/end", account.end_session, methods=["POST"]),
        Route("/account/tokens", account.create_token, methods=["POST"]),
        Route("/account/tokens/{token_id}/revoke", account.revoke_token, methods=["POST"]),
        *account.settings_routes(),
        Route("/language", language.choose_language, methods=["POST"]),
        *browse.routes(),
        *thumbnails.routes(),
        *upload_form.routes(),
        *quarantine.routes(),
        *drop_form.routes(),
        *doc_requests.routes(),
        *request_items.routes(),
        *publish.routes(),
        *news.routes(),
        *audit_alerts.routes(),
        *share.routes(),
        *link_pages.routes(),
        *console.routes(),
        *records.routes(),
        *audit.routes(),
    ]
