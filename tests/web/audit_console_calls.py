"""How to call the console's routes (`/admin`) for the completeness test (see `audit_calls`),
and the people, client and failed emails its set-up makes for them.

The actions that change an account or a client (disable, role, second-factor reset, archive,
rename) act on ones made here only, so the calls of the other tables keep their people and
clients as they were. Admin-only routes are refused to staff, staff routes to a client user
or to staff of another client: each refusal reads as a missing page (404, `access.denied`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.app import TEST_CONTEXT, World
from tests.web.audit_calls import E, no, ok, quiet
from tests.web.audit_driver import Browsers
from vault import accounts
from vault import folders as folder_service
from vault.db import transaction
from vault.models import Role
from vault.notifications import DeliveryState, Notification
from vault.policy import SYSTEM
from web.services import Services

PERSON = "/admin/people/{console_person}"
CLIENT = "/admin/clients/{console_client}"

CONSOLE_CALLS: dict[tuple[str, str], E] = {
    # Reads.
    ("GET", "/admin"): E(quiet("sam", "a redirect to the People page: nothing read"), no("alice")),
    ("GET", "/admin/people"): E(
        ok("sam", "user.listed", path="/admin/people?q=example"), no("alice")
    ),
    ("GET", "/admin/people/{user_id}"): E(
        ok("sam", "user.viewed", path=PERSON), no("gina", path=PERSON)
    ),
    ("GET", "/admin/clients"): E(ok("ada", "client.listed"), no("sam")),
    ("GET", "/admin/clients/{client_id}"): E(
        ok("ada", "client.viewed", path=CLIENT), no("sam", path=CLIENT)
    ),
    ("GET", "/admin/operations"): E(ok("ada", "notification.failed_listed"), no("sam")),
    ("GET", "/admin/reports"): E(
        ok("sam", "report.viewed", path="/admin/reports?client_id={client_id}&weeks=4"),
        no("alice"),
    ),
    ("GET", "/admin/reports/{client_id}/{table}.csv"): E(
        ok("sam", "report.exported", path="/admin/reports/{client_id}/weeks.csv"),
        no("gina", path="/admin/reports/{client_id}/weeks.csv"),
    ),
    # People: each action on an account of its own.
    ("POST", "/admin/people/invite"): E(
        ok(
            "ada",
            "user.invited",
            form={"email": "mona@example.test", "role": "client", "client_id": "{client_id}"},
        ),
        no(
            "alice",
            form={"email": "nina@example.test", "role": "client", "client_id": "{client_id}"},
        ),
    ),
    ("POST", "/admin/people/{user_id}/disable"): E(
        ok("ada", "user.disabled", path="/admin/people/{console_disabled}/disable"),
        no("gina", path="/admin/people/{console_disabled}/disable"),
    ),
    ("POST", "/admin/people/{user_id}/enable"): E(
        ok("sam", "user.enabled", path="/admin/people/{console_disabled}/enable"),
        no("gina", path="/admin/people/{console_disabled}/enable"),
    ),
    ("POST", "/admin/people/{user_id}/role"): E(
        ok(
            "ada",
            "user.role_changed",
            path="/admin/people/{console_role}/role",
            form={"role": "staff"},
        ),
        no("sam", path=PERSON + "/role", form={"role": "admin"}),
    ),
    ("POST", "/admin/people/{user_id}/reset-2fa"): E(
        ok("ada", "mfa.reset", path=PERSON + "/reset-2fa"),
        no("sam", path=PERSON + "/reset-2fa"),
    ),
    ("POST", "/admin/people/{user_id}/clients"): E(
        ok(
            "ada",
            "user.access_granted",
            path=PERSON + "/clients",
            form={"client_id": "{console_client}", "change": "grant"},
        ),
        no("sam", path=PERSON + "/clients", form={"client_id": "{client_id}", "change": "grant"}),
    ),
    ("POST", "/admin/people/{user_id}/resend"): E(
        ok("sam", "user.invitation_resent", path="/admin/people/{console_invited}/resend"),
        no("gina", path="/admin/people/{console_invited}/resend"),
    ),
    # Clients: the one made here is renamed, shared, archived and restored, in that order.
    ("POST", "/admin/clients"): E(
        ok("ada", "client.created", form={"name": "Stark"}), no("sam", form={"name": "Wayne"})
    ),
    ("POST", "/admin/clients/{client_id}/rename"): E(
        ok("ada", "client.renamed", path=CLIENT + "/rename", form={"name": "Umbrella Corp"}),
        no("sam", path=CLIENT + "/rename", form={"name": "Mine"}),
    ),
    ("POST", "/admin/clients/{client_id}/shared"): E(
        ok("ada", "client.shared", path=CLIENT + "/shared", form={"shared": "on"}),
        no("sam", path=CLIENT + "/shared", form={"shared": "on"}),
    ),
    ("POST", "/admin/clients/{client_id}/archive"): E(
        ok("ada", "client.archived", path=CLIENT + "/archive"),
        no("sam", path=CLIENT + "/archive"),
    ),
    ("POST", "/admin/clients/{client_id}/restore"): E(
        ok("ada", "client.restored", path=CLIENT + "/restore"),
        no("sam", path=CLIENT + "/restore"),
    ),
    # Operations: one failed email retried alone, then the other with "retry all".
    ("POST", "/admin/operations/outbox/{notification_id}/retry"): E(
        ok(
            "ada",
            "notification.retried",
            path="/admin/operations/outbox/{console_notification}/retry",
        ),
        no("sam", path="/admin/operations/outbox/{console_notification2}/retry"),
    ),
    ("POST", "/admin/operations/outbox/retry-all"): E(ok("ada", "notification.retried"), no("sam")),
    ("POST", "/admin/operations/keys/rotate"): E(ok("ada", "keys.rotated"), no("sam")),
    ("POST", "/admin/operations/keys/rewrap"): E(ok("ada", "keys.rewrap_requested"), no("sam")),
}


async def set_up_console(services: Services, browsers: Browsers, world: World) -> None:
    """What the calls name: `{console_client}` (a client of its own), `{console_person}`,
    `{console_disabled}`, `{console_role}` (client users of Acme), `{console_invited}` (one who
    never chose a password), and `{console_notification}`, `{console_notification2}` (failed
    emails)."""
    ids = browsers.ids
    async with transaction(services.sessions) as session:
        client = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, "Umbrella")
        ids["console_client"] = str(client.id)
        for key, name in (
            ("console_person", "cass"),
            ("console_disabled", "cole"),
            ("console_role", "cleo"),
            ("console_invited", "nell"),
        ):
            user = await accounts.create_user(
                session,
                TEST_CONTEXT,
                email=f"{name}@example.test",
                role=Role.CLIENT,
                client_ids=[world.acme],
            )
            ids[key] = str(user.id)
        for key in ("console_notification", "console_notification2"):
            failed = Notification(
                user_id=world["alice"].id, email="alice@example.test",
                message_id=f"<{key}@test>", subject="s", body_text="t", body_html="h",
                seqs="[]", state=DeliveryState.FAILED, next_attempt_at=datetime.now(UTC),
            )  # fmt: skip
            session.add(failed)
            await session.flush()
            ids[key] = str(failed.id)
