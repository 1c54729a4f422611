"""How to call each page route for the completeness test (see `audit_calls`)."""

from __future__ import annotations

from tests.web.audit_calls import BAD_LOGIN, NEW_PASSWORD, PAGE_FILE, REPORT, SLIP, E, no, ok, quiet

# One client's document events over a range of days, as CSV.
ACCESS_REPORT = (
    "/audit/report/download?format=csv&client={client_id}&since=2020-01-01&until=2099-01-01"
)

PAGE_CALLS: dict[tuple[str, str], E] = {
    # The pages: reads.
    ("GET", "/"): E(ok("alice", "client.listed"), no("stranger")),
    ("GET", "/account"): E(ok("alice", "account.viewed"), no("stranger")),
    ("GET", "/clients/{client_id}"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", "/clients/{client_id}/search"): E(
        ok("alice", "folder.searched", path="/clients/{client_id}/search?q=tax"), no("bob")
    ),
    ("GET", "/folders/{folder_id}"): E(ok("alice", "folder.listed"), no("bob")),
    ("GET", "/folders/{folder_id}/download.zip"): E(ok("alice", "folder.downloaded"), no("bob")),
    ("GET", "/documents/{document_id}"): E(ok("alice", "document.viewed"), no("bob")),
    ("GET", "/trash"): E(ok("sam", "trash.listed"), no("stranger")),
    ("GET", "/requests"): E(ok("alice", "request.listed"), no("stranger")),
    ("GET", "/requests/new"): E(ok("sam", "client.listed"), no("alice")),
    ("GET", "/requests/{request_id}"): E(ok("alice", "request.viewed"), no("bob")),
    ("GET", "/publish"): E(ok("sam", "client.listed"), no("alice")),
    ("GET", "/announcements"): E(ok("alice", "announcement.listed"), no("stranger")),
    # The auditor's pages: each is an audited read of the log; a client gets 404.
    ("GET", "/audit"): E(ok("otto", "audit.viewed"), no("alice")),
    ("GET", "/audit/documents/{document_id}"): E(ok("otto", "audit.viewed"), no("bob")),
    ("GET", "/audit/people/{user_id}"): E(ok("ada", "audit.viewed"), no("sam")),
    ("GET", "/audit/report"): E(ok("otto", "audit.viewed"), no("alice")),
    ("GET", "/audit/report/download"): E(
        ok("otto", "audit.report_downloaded", path=ACCESS_REPORT),
        no("alice", path=ACCESS_REPORT),
    ),
    ("GET", "/audit/alerts"): E(ok("otto", "alert.listed"), no("alice")),
    ("GET", "/audit/alerts/{alert_id}"): E(ok("ada", "alert.viewed"), no("sam")),
    ("GET", "/login/totp"): E(
        quiet("pending:sam", "the code prompt: a form, nothing read"), no("stranger")
    ),
    ("GET", "/login/enrol"): E(ok("pending:hal", "mfa.enrolment_started"), no("stranger")),
    ("GET", "/invite/{token}"): E(
        ok("stranger", "auth.link_viewed", path="/invite/{invite2}"),
        no("stranger", "auth.link_refused", path="/invite/" + "x" * 43),
    ),
    ("GET", "/reset/{token}"): E(
        ok("stranger", "auth.link_viewed", path="/reset/{reset2}"),
        no("stranger", "auth.link_refused", path="/reset/" + "x" * 43),
    ),
    ("GET", "/unsubscribe/{token}"): E(
        ok("stranger", "notification.unsubscribe_viewed", path="/unsubscribe/{unsubscribe}"),
        no("stranger", path="/unsubscribe/" + "x" * 43),
    ),
    # The pages: changes.
    ("POST", "/clients/{client_id}/folders"): E(
        ok("sam", "folder.created", form={"name": "Pg"}), no("gina", form={"name": "Pg"})
    ),
    ("POST", "/folders/{folder_id}/folders"): E(
        ok("sam", "folder.created", form={"name": "Sub"}), no("gina", form={"name": "Sub"})
    ),
    ("POST", "/folders/{folder_id}/upload"): E(
        ok("alice", "document.created", files={"file": ("page.txt", PAGE_FILE)}),
        no("bob", files={"file": ("page.txt", PAGE_FILE)}),
    ),
    ("POST", "/documents/{document_id}/versions/{number}/restore"): E(
        ok("sam", "document.version_added"), no("gina")
    ),
    ("POST", "/requests/new"): E(
        ok(
            "sam",
            "request.opened",
            form={
                "client": "{client_id}",
                "folder": "{folder_id}",
                "title": "Pg request",
                "message": "",
                "due_date": "2099-01-01",
                "recurrence": "none",
                "items": "Payslips",
            },
        ),
        no(
            "gina",
            form={
                "client": "{client_id}",
                "folder": "{folder_id}",
                "title": "x",
                "message": "",
                "due_date": "2099-01-01",
                "recurrence": "none",
                "items": "x",
            },
        ),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/upload"): E(
        ok(
            "alice",
            "request.submitted",
            path="/requests/{request2}/items/{item2}/upload",
            files={"file": ("slip.txt", SLIP)},
        ),
        no("bob", files={"file": ("slip.txt", SLIP)}),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/reject"): E(
        ok(
            "sam",
            "request.answered",
            path="/requests/{request2}/items/{item3}/reject",
            form={"reason": "blurred"},
        ),
        no("gina", form={"reason": "x"}),
    ),
    ("POST", "/requests/{request_id}/items/{item_id}/accept"): E(
        ok("sam", "request.answered", path="/requests/{request2}/items/{item2}/accept"), no("gina")
    ),
    ("POST", "/requests/{request_id}/close"): E(
        ok("sam", "request.closed", path="/requests/{request2}/close"), no("gina")
    ),
    ("POST", "/publish"): E(
        ok(
            "sam",
            "document.created",
            form={"clients": "{client_id}", "folder": "Reports", "message": ""},
            files={"files": ("report.txt", REPORT)},
        ),
        no("alice", files={"files": ("report.txt", REPORT)}),
    ),
    ("POST", "/announcements"): E(
        ok("ada", "announcement.posted", form={"title": "Closed Friday", "body": "Holiday"}),
        no("alice", form={"title": "x", "body": "x"}),
    ),
    ("POST", "/announcements/{announcement_id}/withdraw"): E(
        ok("ada", "announcement.withdrawn"), no("alice")
    ),
    ("POST", "/account/profile"): E(
        ok(
            "alice",
            "user.profile_updated",
            form={"display_name": "Alice", "timezone": "UTC", "locale": "en"},
        ),
        no("stranger", form={"display_name": "x"}),
    ),
    ("POST", "/account/notifications"): E(
        ok(
            "alice",
            "notification.preference_changed",
            form={"client_id": "{client_id}", "cadence": "hourly"},
        ),
        no("bob", form={"client_id": "{client_id}", "cadence": "daily"}),
    ),
    ("POST", "/account/invite"): E(
        ok(
            "sam",
            "user.invited",
            form={"email": "fay@example.test", "role": "client", "client_id": "{client_id}"},
        ),
        no("alice", form={"email": "gus@example.test", "role": "client"}),
    ),
    ("POST", "/account/tokens"): E(
        ok(
            "bob",
            "token.created",
            form={"name": "pg", "scope": "read", "days": "30", "password": "{password_bob}"},
        ),
        no(
            "bob",
            "auth.reauthenticate",
            form={"name": "pg", "scope": "read", "days": "30", "password": "wrong wrong"},
        ),
    ),
    ("POST", "/account/tokens/{token_id}/revoke"): E(
        ok("alice", "token.revoked", path="/account/tokens/{token2}/revoke"), no("bob")
    ),
    ("POST", "/account/recovery-codes"): E(
        ok("sam", "mfa.recovery_codes_regenerated", form={"password": "{password_sam}"}),
        no("sam", "auth.reauthenticate", form={"password": "wrong wrong"}),
    ),
    ("POST", "/account/sessions/{handle}/end"): E(
        ok("alice", "session.revoked", path="/account/sessions/{handle2}/end"), no("bob")
    ),
    ("POST", "/account/sessions/end-others"): E(ok("alice", "session.revoked_all"), no("stranger")),
    ("POST", "/documents/{document_id}/trash"): E(ok("sam", "document.deleted"), no("bob")),
    ("POST", "/trash/{document_id}/restore"): E(ok("sam", "document.restored"), no("gina")),
    ("POST", "/account/password"): E(
        ok(
            "fresh:dave",
            "auth.password_changed",
            form={
                "current_password": "{password_dave}",
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        ),
        no(
            "alice",
            "auth.password_changed",
            form={
                "current_password": "wrong wrong",
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        ),
    ),
    ("POST", "/language"): E(
        ok("alice", "user.profile_updated", form={"lang": "fa", "next": "/"}),
        no("stranger", form={"lang": "fa"}, headers={"Origin": "http://evil.example"}),
    ),
    ("POST", "/unsubscribe/{token}"): E(
        ok("stranger", "notification.preference_changed", path="/unsubscribe/{unsubscribe}"),
        no("stranger", path="/unsubscribe/" + "x" * 43),
    ),
    # The pages: signing in and out.
    ("POST", "/login"): E(
        ok(
            "stranger",
            "auth.login",
            form={"email": "bob@example.test", "password": "{password_bob}"},
        ),
        no("stranger", "auth.login", form=BAD_LOGIN),
    ),
    ("POST", "/login/totp"): E(
        ok("pending:sam", "auth.mfa", form={"code": "{totp_sam}"}),
        no("pending:sam", "auth.mfa", form={"code": "000000"}),
    ),
    ("POST", "/login/enrol"): E(
        ok("pending:hal", "mfa.enrolled", form={"code": "{totp_hal}"}),
        no("pending:ivan", "mfa.enrolled", form={"code": "000000"}),
    ),
    ("POST", "/logout"): E(ok("fresh:bob", "auth.logout"), no("stranger")),
    ("POST", "/invite/{token}"): E(
        ok(
            "stranger",
            "user.invitation_accepted",
            path="/invite/{invite2}",
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
        no(
            "stranger",
            "auth.link_refused",
            path="/invite/" + "x" * 43,
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
    ),
    ("POST", "/reset/{token}"): E(
        ok(
            "stranger",
            "auth.password_reset",
            path="/reset/{reset2}",
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
        no(
            "stranger",
            "auth.link_refused",
            path="/reset/" + "x" * 43,
            form={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        ),
    ),
    ("POST", "/reset"): E(
        ok("stranger", "auth.reset_requested", form={"email": "alice@example.test"}),
        no("stranger", "auth.reset_requested", form={"email": "nobody@example.test"}),
    ),
}
