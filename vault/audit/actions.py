"""The audit log's vocabulary: every action an event may name, the `details` keys each one
may carry, and the families (`document`, `auth`, …) the search groups them by.

The stored action is the member's value, byte for byte: it is part of every event's hashed
entry, so a value is never renamed. `audit.record` takes only a member, and refuses a
`details` key its action does not declare, so an event's shape is written down here once;
the web layer's sentences cover every member."""

# Action names such as "token.created" are no secrets, whatever their member names suggest.
# ruff: noqa: S105

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class AuditAction(StrEnum):
    """What an audit event says happened (`<subject>.<what>`)."""

    # Refusals
    ACCESS_DENIED = "access.denied"
    ACCESS_DENIED_SUPPRESSED = "access.denied_suppressed"

    # A person's own account
    ACCOUNT_VIEWED = "account.viewed"

    # Security alerts
    ALERT_LISTED = "alert.listed"
    ALERT_RAISED = "alert.raised"
    ALERT_VIEWED = "alert.viewed"

    # Announcements
    ANNOUNCEMENT_LISTED = "announcement.listed"
    ANNOUNCEMENT_POSTED = "announcement.posted"
    ANNOUNCEMENT_WITHDRAWN = "announcement.withdrawn"

    # Reads and checks of the audit log itself
    AUDIT_CHECKPOINT_VIEWED = "audit.checkpoint_viewed"
    AUDIT_EXPORTED = "audit.exported"
    AUDIT_KEY_VIEWED = "audit.key_viewed"
    AUDIT_PROOF_VIEWED = "audit.proof_viewed"
    AUDIT_REPORT_DOWNLOADED = "audit.report_downloaded"
    AUDIT_VERIFIED = "audit.verified"
    AUDIT_VIEWED = "audit.viewed"

    # Signing in and out, passwords
    AUTH_LINK_REFUSED = "auth.link_refused"
    AUTH_LINK_VIEWED = "auth.link_viewed"
    AUTH_LOCKOUT = "auth.lockout"
    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_MFA = "auth.mfa"
    AUTH_PASSWORD_CHANGED = "auth.password_changed"
    AUTH_PASSWORD_RESET = "auth.password_reset"
    AUTH_REAUTHENTICATE = "auth.reauthenticate"
    AUTH_RESET_REQUESTED = "auth.reset_requested"

    # Backups
    BACKUP_CREATED = "backup.created"
    BACKUP_RESTORED = "backup.restored"

    # Clients
    CLIENT_ARCHIVED = "client.archived"
    CLIENT_CREATED = "client.created"
    CLIENT_LISTED = "client.listed"
    CLIENT_RENAMED = "client.renamed"
    CLIENT_RESTORED = "client.restored"
    CLIENT_SHARED = "client.shared"
    CLIENT_UNSHARED = "client.unshared"
    CLIENT_VIEWED = "client.viewed"

    # Documents and their content
    DOCUMENT_CREATED = "document.created"
    DOCUMENT_DELETED = "document.deleted"
    DOCUMENT_DOWNLOAD_COMPLETED = "document.download_completed"
    DOCUMENT_DOWNLOADED = "document.downloaded"
    DOCUMENT_INTEGRITY_FAILED = "document.integrity_failed"
    DOCUMENT_MOVED = "document.moved"
    DOCUMENT_PURGED = "document.purged"
    DOCUMENT_RECEIPTS_VIEWED = "document.receipts_viewed"
    DOCUMENT_RENAMED = "document.renamed"
    DOCUMENT_RESTORED = "document.restored"
    DOCUMENT_THUMBNAIL_VIEWED = "document.thumbnail_viewed"
    DOCUMENT_VERSION_ADDED = "document.version_added"
    DOCUMENT_VIEWED = "document.viewed"

    # Folders
    FOLDER_CREATED = "folder.created"
    FOLDER_DOWNLOADED = "folder.downloaded"
    FOLDER_LISTED = "folder.listed"
    FOLDER_MOVED = "folder.moved"
    FOLDER_RENAMED = "folder.renamed"
    FOLDER_SEARCHED = "folder.searched"

    # Legal holds
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"

    # Encryption keys
    KEYS_REWRAP_REQUESTED = "keys.rewrap_requested"
    KEYS_REWRAPPED = "keys.rewrapped"
    KEYS_ROTATED = "keys.rotated"

    # Shared links and drop links
    LINK_CODE_REFUSED = "link.code_refused"
    LINK_CODE_SENT = "link.code_sent"
    LINK_CREATED = "link.created"
    LINK_DOWNLOADED = "link.downloaded"
    LINK_DROP_STARTED = "link.drop_started"
    LINK_DROPPED = "link.dropped"
    LINK_LISTED = "link.listed"
    LINK_POLICY_CHANGED = "link.policy_changed"
    LINK_POLICY_VIEWED = "link.policy_viewed"
    LINK_REFUSED = "link.refused"
    LINK_REVOKED = "link.revoked"
    LINK_SENT = "link.sent"
    LINK_UNLOCK_FAILED = "link.unlock_failed"
    LINK_UNLOCKED = "link.unlocked"
    LINK_VIEWED = "link.viewed"

    # Second factors
    MFA_ENROLLED = "mfa.enrolled"
    MFA_ENROLMENT_STARTED = "mfa.enrolment_started"
    MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
    MFA_RESET = "mfa.reset"

    # Emails to people
    NOTIFICATION_FAILED = "notification.failed"
    NOTIFICATION_FAILED_LISTED = "notification.failed_listed"
    NOTIFICATION_PREFERENCE_CHANGED = "notification.preference_changed"
    NOTIFICATION_RETRIED = "notification.retried"
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_UNSUBSCRIBE_VIEWED = "notification.unsubscribe_viewed"

    # Uploads held for a malware scan
    QUARANTINE_DELETED = "quarantine.deleted"
    QUARANTINE_HELD = "quarantine.held"
    QUARANTINE_RELEASED = "quarantine.released"
    QUARANTINE_SCANNED = "quarantine.scanned"

    # Storage quotas
    QUOTA_SET = "quota.set"
    QUOTA_THRESHOLD = "quota.threshold"

    # A client's records (usage, retention, holds)
    RECORDS_VIEWED = "records.viewed"

    # Reports
    REPORT_EXPORTED = "report.exported"
    REPORT_VIEWED = "report.viewed"

    # Document requests
    REQUEST_ANSWERED = "request.answered"
    REQUEST_CLOSED = "request.closed"
    REQUEST_DUE_CHANGED = "request.due_changed"
    REQUEST_EDITED = "request.edited"
    REQUEST_LISTED = "request.listed"
    REQUEST_OPENED = "request.opened"
    REQUEST_REMINDER = "request.reminder"
    REQUEST_SUBMITTED = "request.submitted"
    REQUEST_TEMPLATE_CREATED = "request.template_created"
    REQUEST_TEMPLATE_DELETED = "request.template_deleted"
    REQUEST_TEMPLATE_LISTED = "request.template_listed"
    REQUEST_TEMPLATE_UPDATED = "request.template_updated"
    REQUEST_TEMPLATE_VIEWED = "request.template_viewed"
    REQUEST_VIEWED = "request.viewed"

    # Retention
    RETENTION_APPLIED = "retention.applied"
    RETENTION_POLICY_SET = "retention.policy_set"

    # Browser sessions
    SESSION_REVOKED = "session.revoked"
    SESSION_REVOKED_ALL = "session.revoked_all"

    # Storage maintenance
    STORAGE_CHECKED = "storage.checked"
    STORAGE_COLLECTED = "storage.collected"

    # Personal access tokens
    TOKEN_CREATED = "token.created"
    TOKEN_LISTED = "token.listed"
    TOKEN_REVOKED = "token.revoked"

    # Trash
    TRASH_LISTED = "trash.listed"

    # Resumable uploads
    UPLOAD_CHECKED = "upload.checked"
    UPLOAD_CREATED = "upload.created"
    UPLOAD_EXPIRED = "upload.expired"
    UPLOAD_FAILED = "upload.failed"
    UPLOAD_TERMINATED = "upload.terminated"

    # People and their access
    USER_ACCESS_GRANTED = "user.access_granted"
    USER_ACCESS_REVOKED = "user.access_revoked"
    USER_CREATED = "user.created"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    USER_INVITATION_ACCEPTED = "user.invitation_accepted"
    USER_INVITATION_RESENT = "user.invitation_resent"
    USER_INVITED = "user.invited"
    USER_LISTED = "user.listed"
    USER_PROFILE_UPDATED = "user.profile_updated"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_UPDATED = "user.updated"
    USER_VIEWED = "user.viewed"

    # Versions
    VERSION_SHREDDED = "version.shredded"


# Added by `audit.record` from the request's context to any event.
ALWAYS: frozenset[str] = frozenset({"request_id"})

# Shared shapes: a link's own facts, a document request's, a held upload's, a new version's.
_LINK = ("link_id", "kind", "created_by", "folder_id")
_REQUEST = ("request_id", "title", "folder_id", "due_date")
_TEMPLATE = ("template_id", "name", "title", "items", "due_in_days")
_HELD = ("name", "folder_id", "version_id", "size", "state")
_NEW_VERSION = (
    "name",
    "folder_id",
    "version",
    "size",
    "sha256",
    "upload_id",
    "message",
    "drop_id",
    "restored_from",
    "published_from",
    "scan",
    # The document request item an upload answers.
    "request_item_id",
)


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


DETAILS: Mapping[AuditAction, frozenset[str]] = {
    AuditAction.ACCESS_DENIED: _keys("method", "reason", "route", "status"),
    AuditAction.ACCESS_DENIED_SUPPRESSED: _keys("reason", "since", "suppressed", "until"),
    AuditAction.ACCOUNT_VIEWED: _keys("part"),
    AuditAction.ALERT_LISTED: _keys("alerts"),
    AuditAction.ALERT_RAISED: _keys(
        "documents", "events", "failures", "minutes", "refusals", "rule", "subject"
    ),
    AuditAction.ALERT_VIEWED: _keys(),
    AuditAction.ANNOUNCEMENT_LISTED: _keys("announcements"),
    AuditAction.ANNOUNCEMENT_POSTED: _keys("expires_at", "title"),
    AuditAction.ANNOUNCEMENT_WITHDRAWN: _keys("title"),
    AuditAction.AUDIT_CHECKPOINT_VIEWED: _keys(),
    AuditAction.AUDIT_EXPORTED: _keys("filters", "format"),
    AuditAction.AUDIT_KEY_VIEWED: _keys("key"),
    AuditAction.AUDIT_PROOF_VIEWED: _keys("first", "proof", "second", "seq", "tree_size"),
    AuditAction.AUDIT_REPORT_DOWNLOADED: _keys("filters", "format"),
    AuditAction.AUDIT_VERIFIED: _keys("events", "ok"),
    AuditAction.AUDIT_VIEWED: _keys("filters", "view"),
    AuditAction.AUTH_LINK_REFUSED: _keys("reason"),
    AuditAction.AUTH_LINK_VIEWED: _keys("purpose"),
    AuditAction.AUTH_LOCKOUT: _keys("scope", "step", "until"),
    AuditAction.AUTH_LOGIN: _keys("email", "next"),
    AuditAction.AUTH_LOGOUT: _keys(),
    AuditAction.AUTH_MFA: _keys("method"),
    AuditAction.AUTH_PASSWORD_CHANGED: _keys("sessions_ended", "tokens_revoked"),
    AuditAction.AUTH_PASSWORD_RESET: _keys("sessions_ended", "tokens_revoked"),
    AuditAction.AUTH_REAUTHENTICATE: _keys(),
    AuditAction.AUTH_RESET_REQUESTED: _keys(),
    AuditAction.BACKUP_CREATED: _keys(
        "audit_events", "audit_head", "bytes", "created_at", "objects"
    ),
    AuditAction.BACKUP_RESTORED: _keys(
        "audit_events", "audit_head", "bytes", "created_at", "objects"
    ),
    AuditAction.CLIENT_ARCHIVED: _keys("name"),
    AuditAction.CLIENT_CREATED: _keys("name"),
    AuditAction.CLIENT_LISTED: _keys("archived", "clients"),
    AuditAction.CLIENT_RENAMED: _keys("from", "to"),
    AuditAction.CLIENT_RESTORED: _keys("name"),
    AuditAction.CLIENT_SHARED: _keys("name"),
    AuditAction.CLIENT_UNSHARED: _keys("name"),
    AuditAction.CLIENT_VIEWED: _keys(),
    AuditAction.DOCUMENT_CREATED: _keys(*_NEW_VERSION),
    AuditAction.DOCUMENT_DELETED: _keys("folder_id", "name"),
    AuditAction.DOCUMENT_DOWNLOAD_COMPLETED: _keys("first", "version", "via"),
    AuditAction.DOCUMENT_DOWNLOADED: _keys(
        "bytes", "disposition", "folder_id", "range", "version", "via"
    ),
    AuditAction.DOCUMENT_INTEGRITY_FAILED: _keys("version"),
    # A move names both folders by id and by path as they read at the time: a path changes
    # with later renames, the ids do not.
    AuditAction.DOCUMENT_MOVED: _keys("from", "from_path", "name", "to", "to_path"),
    AuditAction.DOCUMENT_PURGED: _keys("folder_id", "name", "reason", "versions"),
    AuditAction.DOCUMENT_RECEIPTS_VIEWED: _keys(),
    AuditAction.DOCUMENT_RENAMED: _keys("folder_id", "from", "to"),
    AuditAction.DOCUMENT_RESTORED: _keys("folder_id", "name", "trashed_at"),
    AuditAction.DOCUMENT_THUMBNAIL_VIEWED: _keys("version"),
    AuditAction.DOCUMENT_VERSION_ADDED: _keys(*_NEW_VERSION),
    AuditAction.DOCUMENT_VIEWED: _keys(),
    AuditAction.FOLDER_CREATED: _keys("name", "parent_id"),
    AuditAction.FOLDER_DOWNLOADED: _keys("bytes", "documents", "name"),
    AuditAction.FOLDER_LISTED: _keys(),
    AuditAction.FOLDER_MOVED: _keys("from", "from_path", "name", "to", "to_path"),
    AuditAction.FOLDER_RENAMED: _keys("from", "parent_id", "to"),
    AuditAction.FOLDER_SEARCHED: _keys("documents", "folders", "query"),
    AuditAction.HOLD_PLACED: _keys("folder_id", "reason"),
    AuditAction.HOLD_RELEASED: _keys("folder_id", "reason"),
    AuditAction.KEYS_REWRAP_REQUESTED: _keys("kek_id"),
    AuditAction.KEYS_REWRAPPED: _keys(
        "kek_id", "quarantine", "thumbnails", "totp_credentials", "uploads", "versions"
    ),
    AuditAction.KEYS_ROTATED: _keys("kek_id"),
    AuditAction.LINK_CODE_REFUSED: _keys(*_LINK, "reason"),
    AuditAction.LINK_CODE_SENT: _keys(*_LINK, "recipient"),
    AuditAction.LINK_CREATED: _keys(
        *_LINK,
        "expires_at",
        "max_downloads",
        "max_file_bytes",
        "max_files",
        "max_total_bytes",
        "password",
        "recipient_email",
        "version",
    ),
    AuditAction.LINK_DOWNLOADED: _keys(*_LINK, "bytes", "downloads", "range", "version", "via"),
    AuditAction.LINK_DROP_STARTED: _keys(
        *_LINK, "length", "name", "upload_id", "uploader_email", "uploader_name"
    ),
    AuditAction.LINK_DROPPED: _keys(
        *_LINK, "held", "name", "size", "uploader_email", "uploader_name"
    ),
    AuditAction.LINK_LISTED: _keys("count"),
    AuditAction.LINK_POLICY_CHANGED: _keys("changes", "overrides"),
    AuditAction.LINK_POLICY_VIEWED: _keys(),
    AuditAction.LINK_REFUSED: _keys(*_LINK, "reason"),
    AuditAction.LINK_REVOKED: _keys(*_LINK),
    AuditAction.LINK_SENT: _keys(*_LINK, "recipient"),
    AuditAction.LINK_UNLOCK_FAILED: _keys(*_LINK, "reason"),
    AuditAction.LINK_UNLOCKED: _keys(*_LINK, "via"),
    AuditAction.LINK_VIEWED: _keys(*_LINK, "locked", "shown_folder_id"),
    AuditAction.MFA_ENROLLED: _keys("recovery_codes"),
    AuditAction.MFA_ENROLMENT_STARTED: _keys(),
    AuditAction.MFA_RECOVERY_CODES_REGENERATED: _keys("recovery_codes"),
    AuditAction.MFA_RESET: _keys("had_totp"),
    AuditAction.NOTIFICATION_FAILED: _keys(
        "attempts", "error", "message_id", "permanent", "recipient_id", "seqs", "to"
    ),
    AuditAction.NOTIFICATION_FAILED_LISTED: _keys("notifications"),
    AuditAction.NOTIFICATION_PREFERENCE_CHANGED: _keys("cadence", "daily_hour", "via"),
    AuditAction.NOTIFICATION_RETRIED: _keys("last_error", "message_id"),
    AuditAction.NOTIFICATION_SENT: _keys(
        "attempts", "message_id", "recipient_id", "seqs", "subject", "to"
    ),
    AuditAction.NOTIFICATION_UNSUBSCRIBE_VIEWED: _keys(),
    AuditAction.QUARANTINE_DELETED: _keys(*_HELD, "by_policy", "signature"),
    AuditAction.QUARANTINE_HELD: _keys(
        *_HELD, "drop_id", "message", "request_item_id", "sha256", "upload_id"
    ),
    AuditAction.QUARANTINE_RELEASED: _keys(*_HELD),
    AuditAction.QUARANTINE_SCANNED: _keys(
        "folder_id", "name", "reason", "signature", "state", "version_id"
    ),
    AuditAction.QUOTA_SET: _keys("previous", "quota_bytes"),
    AuditAction.QUOTA_THRESHOLD: _keys("name", "percent", "quota", "used"),
    AuditAction.RECORDS_VIEWED: _keys("what"),
    AuditAction.REPORT_EXPORTED: _keys("table", "weeks"),
    AuditAction.REPORT_VIEWED: _keys("weeks"),
    AuditAction.REQUEST_ANSWERED: _keys(*_REQUEST, "item_id", "name", "reason", "status"),
    AuditAction.REQUEST_CLOSED: _keys(*_REQUEST, "complete", "name", "next_due_date"),
    AuditAction.REQUEST_DUE_CHANGED: _keys(*_REQUEST, "name", "previous_due_date"),
    AuditAction.REQUEST_EDITED: _keys(
        *_REQUEST, "added", "fields", "message", "name", "removed", "renamed"
    ),
    AuditAction.REQUEST_LISTED: _keys("requests"),
    AuditAction.REQUEST_OPENED: _keys(*_REQUEST, "items", "message", "name", "recurrence"),
    AuditAction.REQUEST_REMINDER: _keys(*_REQUEST, "manual", "name", "stage", "version"),
    AuditAction.REQUEST_SUBMITTED: _keys(*_REQUEST, "item_id", "name", "status", "version"),
    AuditAction.REQUEST_TEMPLATE_CREATED: _keys(*_TEMPLATE),
    AuditAction.REQUEST_TEMPLATE_DELETED: _keys(*_TEMPLATE),
    AuditAction.REQUEST_TEMPLATE_LISTED: _keys("templates"),
    AuditAction.REQUEST_TEMPLATE_UPDATED: _keys(*_TEMPLATE, "fields"),
    AuditAction.REQUEST_TEMPLATE_VIEWED: _keys("template_id", "name"),
    AuditAction.REQUEST_VIEWED: _keys(*_REQUEST),
    AuditAction.RETENTION_APPLIED: _keys("bytes", "documents", "versions"),
    AuditAction.RETENTION_POLICY_SET: _keys(
        "folder_id", "keep_days", "keep_versions", "trash_days"
    ),
    AuditAction.SESSION_REVOKED: _keys("session"),
    AuditAction.SESSION_REVOKED_ALL: _keys("reason", "sessions_ended", "tokens_revoked"),
    AuditAction.STORAGE_CHECKED: _keys("deep", "objects", "problems", "thumbnails", "versions"),
    AuditAction.STORAGE_COLLECTED: _keys("objects_deleted", "objects_held", "uploads_aborted"),
    AuditAction.TOKEN_CREATED: _keys("name", "scope", "user"),
    AuditAction.TOKEN_LISTED: _keys("tokens"),
    AuditAction.TOKEN_REVOKED: _keys(),
    AuditAction.TRASH_LISTED: _keys("documents"),
    AuditAction.UPLOAD_CHECKED: _keys("length", "offset"),
    AuditAction.UPLOAD_CREATED: _keys("folder_id", "length", "name"),
    AuditAction.UPLOAD_EXPIRED: _keys("name", "offset"),
    AuditAction.UPLOAD_FAILED: _keys("name", "reason"),
    AuditAction.UPLOAD_TERMINATED: _keys("name", "offset"),
    AuditAction.USER_ACCESS_GRANTED: _keys("role"),
    AuditAction.USER_ACCESS_REVOKED: _keys("role"),
    AuditAction.USER_CREATED: _keys("clients", "role"),
    AuditAction.USER_DISABLED: _keys("sessions_ended", "tokens_revoked"),
    AuditAction.USER_ENABLED: _keys("sessions_ended", "tokens_revoked"),
    AuditAction.USER_INVITATION_ACCEPTED: _keys(),
    AuditAction.USER_INVITATION_RESENT: _keys("email", "expires_in_hours"),
    AuditAction.USER_INVITED: _keys("clients", "email", "expires_in_hours", "reason", "role"),
    AuditAction.USER_LISTED: _keys("query", "users"),
    AuditAction.USER_PROFILE_UPDATED: _keys("display_name", "locale", "timezone"),
    AuditAction.USER_ROLE_CHANGED: _keys("from", "sessions_ended", "to", "tokens_revoked"),
    AuditAction.USER_UPDATED: _keys("active", "role"),
    AuditAction.USER_VIEWED: _keys(),
    AuditAction.VERSION_SHREDDED: _keys(
        "created_at", "folder_id", "name", "reason", "sha256", "size", "version"
    ),
}


ACTIONS: frozenset[str] = frozenset(action.value for action in AuditAction)

FAMILIES: tuple[str, ...] = tuple(sorted({a.split(".", 1)[0] for a in ACTIONS}))

# The actions of each family: a search for `document.*` asks for exactly these (`action IN
# (...)`, which the `(action, outcome, seq)` index serves under any collation, where `LIKE
# 'document.%'` could not). So an action, once recorded, stays in the vocabulary for good:
# dropping one would hide its old events from searches by family.
FAMILY_ACTIONS: dict[str, tuple[str, ...]] = {
    family: tuple(sorted(a for a in ACTIONS if a.split(".", 1)[0] == family)) for family in FAMILIES
}

# A document's access history: every way its content or its details reached someone.
ACCESS_ACTIONS: tuple[str, ...] = (
    AuditAction.DOCUMENT_VIEWED.value,
    AuditAction.DOCUMENT_DOWNLOADED.value,
    AuditAction.DOCUMENT_DOWNLOAD_COMPLETED.value,
    AuditAction.DOCUMENT_RECEIPTS_VIEWED.value,
    AuditAction.DOCUMENT_THUMBNAIL_VIEWED.value,
)


def check_details(action: AuditAction, details: Mapping[str, object]) -> None:
    """Refuse a `details` key `action` does not declare: a programming error, never a user's.

    Raises:
        TypeError: `action` is not a member, or a key is not declared for it.
    """
    if not isinstance(action, AuditAction):
        raise TypeError(f"audit action must be an AuditAction, not {action!r}")
    extra = set(details) - DETAILS[action] - ALWAYS
    if extra:
        raise TypeError(f"{action.value} declares no details key {', '.join(sorted(extra))}")
