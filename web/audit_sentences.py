"""Audit events as sentences in the reader's language.

"Alice Example downloaded Tax return 2025.pdf (version 3, bytes 0–1,048,575) from 203.0.113.5".
Each action has one template (`TEMPLATES`, extracted for gettext like the templates' strings);
the actor and the target come from the event's labels (`vault.audit.labels.shown`). Names
typed by users keep their own direction: `<bdi>` in HTML, Unicode isolates (FSI … PDI,
Unicode Bidirectional Algorithm, UAX #9 §2.7) in plain text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from markupsafe import Markup, escape

from vault.models import AuditEvent
from web import i18n


def _(message: str) -> str:
    """Marks a string for extraction; it is translated when a sentence is built."""
    return message


TEMPLATES: dict[str, str] = {
    "access.denied": _("{actor} was refused access to {target}"),
    "access.denied_suppressed": _("{actor} was refused {count} more times"),
    "account.viewed": _("{actor} looked at their own account"),
    "alert.listed": _("{actor} listed the alerts"),
    "alert.raised": _("{actor} raised an alert"),
    "alert.viewed": _("{actor} opened an alert"),
    "announcement.listed": _("{actor} read the announcements"),
    "announcement.posted": _("{actor} posted the announcement {target}"),
    "announcement.withdrawn": _("{actor} withdrew the announcement {target}"),
    "audit.checkpoint_viewed": _("{actor} read the latest audit log checkpoint"),
    "audit.exported": _("{actor} exported the audit log"),
    "audit.key_viewed": _("{actor} fetched the audit log verifier key"),
    "audit.proof_viewed": _("{actor} read an audit log proof"),
    "audit.report_downloaded": _("{actor} downloaded an access report"),
    "audit.verified": _("{actor} verified the audit log"),
    "audit.viewed": _("{actor} searched the audit log"),
    "auth.link_refused": _("{actor} followed an invitation or reset link that no longer works"),
    "auth.link_viewed": _("{actor} opened an invitation or reset link"),
    "auth.lockout": _("{target} was locked out after repeated failed attempts"),
    "auth.login": _("{actor} signed in"),
    "auth.logout": _("{actor} signed out"),
    "auth.mfa": _("{actor} confirmed a second factor"),
    "auth.password_changed": _("{actor} changed their password"),
    "auth.password_reset": _("{actor} set a new password with a reset link"),
    "auth.reauthenticate": _("{actor} confirmed their password again"),
    "auth.reset_requested": _("A password reset was asked for {target}"),
    "backup.created": _("{actor} made a backup"),
    "backup.restored": _("{actor} restored a backup"),
    "client.archived": _("{actor} archived the client {target}"),
    "client.created": _("{actor} created the client {target}"),
    "client.listed": _("{actor} listed the clients"),
    "client.renamed": _("{actor} renamed the client {target}"),
    "client.restored": _("{actor} restored the client {target}"),
    "client.shared": _("{actor} made {target} the firm's shared space"),
    "client.unshared": _("{actor} made {target} an ordinary client again"),
    "client.viewed": _("{actor} opened the client {target}"),
    "document.created": _("{actor} uploaded {target}"),
    "document.deleted": _("{actor} moved {target} to the trash"),
    "document.download_completed": _("{actor} received the whole of {target}"),
    "document.downloaded": _("{actor} downloaded {target}"),
    "document.integrity_failed": _("{target} failed its integrity check while being sent"),
    "document.moved": _("{actor} moved {target} to another folder"),
    "document.purged": _("{actor} permanently deleted {target}"),
    "document.receipts_viewed": _("{actor} read the delivery receipts of {target}"),
    "document.renamed": _("{actor} renamed a document to {target}"),
    "document.restored": _("{actor} restored {target} from the trash"),
    "document.thumbnail_viewed": _("{actor} saw a thumbnail of {target}"),
    "document.version_added": _("{actor} uploaded a new version of {target}"),
    "document.viewed": _("{actor} opened the details of {target}"),
    "folder.created": _("{actor} created the folder {target}"),
    "folder.downloaded": _("{actor} downloaded the folder {target} as a zip"),
    "folder.listed": _("{actor} opened {target}"),
    "folder.moved": _("{actor} moved the folder {target}"),
    "folder.renamed": _("{actor} renamed a folder to {target}"),
    "folder.searched": _("{actor} searched {target}"),
    "hold.placed": _("{actor} placed a legal hold"),
    "hold.released": _("{actor} released a legal hold"),
    "keys.rewrap_requested": _("{actor} asked for the document keys to be re-wrapped"),
    "keys.rewrapped": _("{actor} re-wrapped the document keys"),
    "keys.rotated": _("{actor} rotated the encryption keys"),
    "link.code_refused": _("{actor} gave a wrong code for a link"),
    "link.code_sent": _("{actor} asked for a code for a link"),
    "link.created": _("{actor} created a link"),
    "link.downloaded": _("{actor} downloaded a file through a link"),
    "link.drop_started": _("{actor} started uploading through a link"),
    "link.dropped": _("{actor} uploaded a file through a link"),
    "link.listed": _("{actor} listed the links"),
    "link.policy_changed": _("{actor} changed the link policy"),
    "link.policy_viewed": _("{actor} read the link policy"),
    "link.sent": _("{actor} emailed a link to its recipient"),
    "link.refused": _("{actor} followed a link that no longer works"),
    "link.revoked": _("{actor} revoked a link"),
    "link.unlock_failed": _("{actor} gave a wrong password for a link"),
    "link.unlocked": _("{actor} unlocked a link"),
    "link.viewed": _("{actor} opened a link"),
    "mfa.enrolled": _("{actor} set up two-step verification"),
    "mfa.enrolment_started": _("{actor} began setting up two-step verification"),
    "mfa.recovery_codes_regenerated": _("{actor} made new recovery codes"),
    "mfa.reset": _("{actor} reset the two-step verification of {target}"),
    "notification.failed": _("An email to {target} could not be delivered"),
    "notification.failed_listed": _("{actor} listed the undelivered emails"),
    "notification.preference_changed": _("{actor} changed their email settings"),
    "notification.retried": _("{actor} queued a failed email again"),
    "notification.sent": _("An email was sent to {target}"),
    "notification.unsubscribe_viewed": _("{actor} opened an unsubscribe link"),
    "quarantine.deleted": _("{actor} deleted {target} from quarantine"),
    "quarantine.held": _("{target} was held in quarantine"),
    "quarantine.released": _("{actor} released {target} from quarantine"),
    "quarantine.scanned": _("{target} was scanned for malware"),
    "quota.set": _("{actor} set the storage quota of {target}"),
    "quota.threshold": _("{target} reached a storage quota threshold"),
    "records.viewed": _("{actor} read the records of {target}"),
    "report.exported": _("{actor} exported a report on {target}"),
    "report.viewed": _("{actor} viewed the report on {target}"),
    "request.answered": _("{actor} answered {target}"),
    "request.closed": _("{actor} closed {target}"),
    "request.due_changed": _("{actor} changed the due date of {target}"),
    "request.edited": _("{actor} edited {target}"),
    "request.listed": _("{actor} listed the document requests"),
    "request.opened": _("{actor} opened {target}"),
    "request.reminder": _("A reminder about {target} was sent"),
    "request.submitted": _("{actor} sent a file for {target}"),
    "request.template_created": _("{actor} created the request template {target}"),
    "request.template_deleted": _("{actor} deleted the request template {target}"),
    "request.template_listed": _("{actor} listed the request templates"),
    "request.template_updated": _("{actor} changed the request template {target}"),
    "request.template_viewed": _("{actor} opened the request template {target}"),
    "request.viewed": _("{actor} looked at {target}"),
    "retention.applied": _("{actor} applied the retention policies"),
    "retention.policy_set": _("{actor} set the retention policy of {target}"),
    "session.revoked": _("{actor} ended a session"),
    "session.revoked_all": _("{actor} ended all their other sessions"),
    "storage.checked": _("{actor} checked the stored files"),
    "storage.collected": _("{actor} removed unused stored objects"),
    "token.created": _("{actor} created the access token {target}"),
    "token.listed": _("{actor} listed the access tokens of {target}"),
    "token.revoked": _("{actor} revoked the access token {target}"),
    "trash.listed": _("{actor} listed the trash"),
    "upload.checked": _("{actor} checked how far {target} got"),
    "upload.created": _("{actor} started uploading {target}"),
    "upload.expired": _("An unfinished upload of {target} expired"),
    "upload.failed": _("An upload of {target} by {actor} failed"),
    "upload.terminated": _("{actor} cancelled the upload of {target}"),
    "user.access_granted": _("{actor} gave {target} access to a client"),
    "user.access_revoked": _("{actor} took away the access of {target} to a client"),
    "user.created": _("{actor} created the account {target}"),
    "user.disabled": _("{actor} disabled the account {target}"),
    "user.enabled": _("{actor} enabled the account {target}"),
    "user.invitation_accepted": _("{actor} accepted an invitation"),
    "user.invitation_resent": _("{actor} sent the invitation to {target} again"),
    "user.invited": _("{actor} invited {target}"),
    "user.listed": _("{actor} listed the accounts"),
    "user.profile_updated": _("{actor} updated their profile"),
    "user.role_changed": _("{actor} changed the role of {target}"),
    "user.updated": _("{actor} changed the account {target}"),
    "user.viewed": _("{actor} opened the account {target}"),
    "version.shredded": _("{actor} shredded a version of {target}"),
}

# Variants that say more than the action alone.
PREVIEWED = _("{actor} previewed {target}")
ZIPPED = _("{actor} downloaded {target} inside a folder zip")
SIGN_IN_REFUSED = _("A sign-in as {target} was refused")
UNKNOWN_ACTION = _("{actor}: {action}")

OUTCOMES: dict[str, str] = {
    "denied": _("{sentence} (refused)"),
    "failure": _("{sentence} (failed)"),
    "error": _("{sentence} (failed)"),
    "locked": _("{sentence} (locked out)"),
}
FROM_ADDRESS = _("{sentence} from {ip}")
ORIGIN = _("From {ip}")

VERSION = _("{name} (version {version})")
VERSION_RANGE = _("{name} (version {version}, bytes {start}–{end})")

ACTORS: dict[str | None, str] = {
    "system": _("The portal"),
    "cli": _("An operator at the command line"),
    "test": _("A test"),
    None: _("Someone not signed in"),
}
UNKNOWN_USER = _("A user who no longer exists")

TARGETS: dict[str | None, str] = {
    "document": _("a document"),
    "folder": _("a folder"),
    "client": _("a client"),
    "user": _("an account"),
    "token": _("an access token"),
    "announcement": _("an announcement"),
    "request": _("a document request"),
    "request_item": _("a document request"),
    "request_template": _("a request template"),
    "upload": _("an upload"),
    "notification": _("a recipient"),
    None: _("the portal"),
}

_FSI, _PDI = "\u2068", "\u2069"


def _isolated(text: str, *, html: bool, isolate: bool = True, direction: str = "auto") -> str:
    if html:
        return Markup('<bdi dir="{}">{}</bdi>').format(direction, text)
    return f"{_FSI}{text}{_PDI}" if isolate else text


def details_of(event: AuditEvent) -> dict[str, object]:
    try:
        data = json.loads(event.details)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def sentence(
    event: AuditEvent,
    labels: Mapping[str, str | None],
    lang: str,
    *,
    html: bool = False,
    with_ip: bool = True,
    isolate: bool = True,
) -> str:
    """The event in words, in `lang`: `Markup` when `html`, else plain text (with user-typed
    names in Unicode isolates unless `isolate` is false, e.g. for a PDF that cannot show
    them)."""
    gettext = i18n.translations(lang).gettext
    details = details_of(event)
    outcome = event.outcome

    def fmt(template: str, **parts: object) -> str:
        text = gettext(template)
        if not html:
            return text.format(**parts)
        # The template is escaped first; format() then escapes every part not already Markup.
        return Markup(escape(text)).format(**parts)  # noqa: S704

    person = labels.get("actor_name") or labels.get("actor_email")
    if person:
        actor = _isolated(person, html=html, isolate=isolate)
    elif event.actor_id and event.actor_role not in ACTORS:
        actor = gettext(UNKNOWN_USER)
    else:
        actor = gettext(ACTORS.get(event.actor_role, ACTORS[None]))
    target = _target(
        event, labels, details, lang, html=html, isolate=isolate, fmt=fmt, gettext=gettext
    )

    template = TEMPLATES.get(event.action)
    if event.action == "document.downloaded" and details.get("disposition") == "inline":
        template = PREVIEWED
    elif event.action == "document.downloaded" and details.get("via") == "zip":
        template = ZIPPED
    elif event.action == "auth.login" and outcome != "success":
        template, outcome = SIGN_IN_REFUSED, "success"
    count = details.get("suppressed", 0)
    text = fmt(
        template or UNKNOWN_ACTION,
        actor=actor,
        target=target,
        action=event.action,
        count=i18n.format_number(count if isinstance(count, int) else 0, lang),
    )
    if with_ip and event.ip:
        ip = _isolated(event.ip, html=html, isolate=isolate, direction="ltr")
        text = fmt(FROM_ADDRESS, sentence=text, ip=ip)
    if outcome in OUTCOMES:
        text = fmt(OUTCOMES[outcome], sentence=text)
    return text


def _target(
    event: AuditEvent,
    labels: Mapping[str, str | None],
    details: Mapping[str, object],
    lang: str,
    *,
    html: bool,
    isolate: bool,
    fmt: Callable[..., str],
    gettext: Callable[[str], str],
) -> str:
    label = labels.get("target_label")
    if not label and event.action.startswith("access.") and isinstance(details.get("route"), str):
        label = f"{details.get('method', '')} {details['route']}".strip()
    if not label and isinstance(details.get("filename"), str):
        label = str(details["filename"])
    if not label:
        kind = "document" if event.document_id and not event.target_type else event.target_type
        return gettext(TARGETS.get(kind, TARGETS[None]))
    name = _isolated(label, html=html, isolate=isolate)
    version = details.get("version")
    if event.document_id and isinstance(version, int):
        number = i18n.format_number(version, lang)
        span = details.get("range")
        if isinstance(span, str) and "-" in span:
            start, _sep, end = span.partition("-")
            if start.isdigit() and end.isdigit():
                return fmt(
                    VERSION_RANGE,
                    name=name,
                    version=number,
                    start=i18n.format_number(int(start), lang),
                    end=i18n.format_number(int(end), lang),
                )
        return fmt(VERSION, name=name, version=number)
    return name


def origin(ip: str, lang: str) -> str:
    """ "From 203.0.113.5" as HTML, the address kept left to right in any language."""
    text = i18n.translations(lang).gettext(ORIGIN)
    address = _isolated(ip, html=True, direction="ltr")
    return Markup(escape(text)).format(ip=address)  # noqa: S704  (escaped, as in sentence)
