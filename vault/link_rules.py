"""The rules a new link must follow: its kind, limits, expiry and who may create it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from vault import link_policy
from vault.accounts.passwords import check_password_policy
from vault.errors import InvalidLinkError, WeakPasswordError
from vault.models import Role
from vault.policy import Permission, Principal, allows

MAX_DOWNLOADS = 1_000_000
MAX_FILES = 100_000
MAX_BYTES = 2**62
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every stored one is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class LinkKind(StrEnum):
    DOWNLOAD = "download"
    UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """What a new link should be, as asked for (checked by `create`)."""

    kind: LinkKind
    expires_at: datetime
    password: str | None = None
    recipient_email: str | None = None
    max_downloads: int | None = None
    max_file_bytes: int | None = None
    max_files: int | None = None
    max_total_bytes: int | None = None
    version: int | None = None


def _limit(value: int | None, name: str, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidLinkError(f"{name} is a whole number from 1 to {maximum}", field=name)
    return value


def check_spec(
    spec: LinkSpec, policy: link_policy.LinkDefaults, *, now: datetime, max_file_bytes: int
) -> LinkSpec:
    expires_at = aware(spec.expires_at)
    if expires_at <= now + timedelta(minutes=1):
        raise InvalidLinkError("expires_at must be in the future", field="expires_at")
    latest = now + timedelta(days=policy.max_expiry_days)
    if expires_at > latest:
        raise InvalidLinkError(
            f"expires_at may be at most {policy.max_expiry_days} days ahead", field="expires_at"
        )
    if policy.require_password and not spec.password:
        raise InvalidLinkError("this client's links need a password", field="password")
    if policy.require_recipient and not spec.recipient_email:
        raise InvalidLinkError(
            "this client's links need a recipient email", field="recipient_email"
        )
    if spec.password:
        try:
            check_password_policy(spec.password)
        except WeakPasswordError as exc:
            raise InvalidLinkError(str(exc), field="password") from None
    email = spec.recipient_email
    if email is not None:
        email = email.strip()
        if len(email) > 320 or not _EMAIL.match(email):
            raise InvalidLinkError(
                "recipient_email is not an email address", field="recipient_email"
            )
    if spec.kind == LinkKind.DOWNLOAD:
        for name in ("max_file_bytes", "max_files", "max_total_bytes"):
            if getattr(spec, name) is not None:
                raise InvalidLinkError(f"{name} is for upload links", field=name)
    else:
        if spec.max_downloads is not None:
            raise InvalidLinkError("max_downloads is for download links", field="max_downloads")
        if spec.version is not None:
            raise InvalidLinkError("version is for download links", field="version")
    return LinkSpec(
        kind=spec.kind,
        expires_at=expires_at,
        password=spec.password or None,
        recipient_email=email or None,
        max_downloads=_limit(spec.max_downloads, "max_downloads", MAX_DOWNLOADS),
        max_file_bytes=_limit(spec.max_file_bytes, "max_file_bytes", max_file_bytes),
        max_files=_limit(spec.max_files, "max_files", MAX_FILES),
        max_total_bytes=_limit(spec.max_total_bytes, "max_total_bytes", MAX_BYTES),
        version=spec.version,
    )


def may_create(
    principal: Principal, client_id: uuid.UUID, kind: LinkKind, policy: link_policy.LinkDefaults
) -> bool:
    """Whether `principal` may create a `kind` link into `client_id` under `policy`.

    Upload-request links are staff's and admins' only, whatever the policy: a link that lets
    strangers put files into the client's folders is the firm's to open. The policy's
    `staff_and_clients` lets the client's users share (download links) what they may
    download."""
    if not policy.allowed or principal.read_only:
        return False
    needed = Permission.DOWNLOAD if kind == LinkKind.DOWNLOAD else Permission.UPLOAD
    if not allows(principal, needed, client_id):
        return False
    if principal.role in (Role.STAFF, Role.ADMIN):
        return True
    return (
        kind == LinkKind.DOWNLOAD
        and principal.role == Role.CLIENT
        and policy.creators == link_policy.Creators.STAFF_AND_CLIENTS
    )
