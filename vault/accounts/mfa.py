"""The second factor: TOTP (RFC 6238) in an authenticator app, and one-time recovery codes.

A TOTP secret is encrypted at rest with AES-256-GCM under its own key, wrapped by the
keyring's active KEK like a document's data key, with the user id as associated data: a
row copied onto another account does not decrypt. Each code is accepted once (NIST SP
800-63B §5.1.4.2, ASVS 6.5.1): the highest time step used is stored, and a step is taken
with a conditional UPDATE, so two app processes given the same code cannot both accept it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault.accounts.identity import RecoveryCode, TotpCredential
from vault.audit.actions import AuditAction
from vault.crypto.keyring import DEK_SIZE, Keyring
from vault.errors import ConflictError, IntegrityError, MfaError
from vault.models import User

ISSUER = "ClientVault"
DIGITS = 6
PERIOD = 30  # seconds
VALID_WINDOW = 1  # steps either side of now, for clocks that drift and fingers that are slow
RECOVERY_CODE_COUNT = 10

# Recovery codes: 25 characters of the RFC 4648 base32 alphabet carry 125 bits, above the
# 112 bits from which ASVS 6.5.2 and NIST SP 800-63B §5.1.2.2 allow a plain hash instead of
# a password KDF. A SHA-256 lookup then costs one indexed query per attempt, where Argon2id
# would cost one full verification per stored code (ten per guess, a denial-of-service lever).
_RECOVERY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_RECOVERY_LENGTH = 25
_RECOVERY_GROUP = 5
# Digits that base32 lacks are read as the letters they resemble.
_RECOVERY_LOOKALIKES = str.maketrans("018", "OIB")
_SEPARATORS = re.compile(r"[\s\-]+")

_NONCE_SIZE = 12
_SECRET_AAD = b"clientvault/totp-secret/v1\x00"
_RECOVERY_HASH_PREFIX = b"clientvault/recovery-code/v1\x00"

Method = Literal["totp", "recovery"]


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the user needs to add the account to an authenticator app; shown once."""

    secret: str = field(repr=False)  # base32
    uri: str = field(repr=False)  # otpauth://, holds the secret too
    qr_svg: str = field(repr=False)  # the URI as a QR code, an <svg> safe to inline


def _totp(secret: str, name: str | None = None) -> pyotp.TOTP:
    return pyotp.TOTP(
        secret,
        digits=DIGITS,
        interval=PERIOD,
        digest=hashlib.sha1,  # what authenticator apps implement; HOTP's HMAC-SHA-1 is sound
        name=name,
        issuer=ISSUER,
    )


def _aad(user_id: uuid.UUID) -> bytes:
    return _SECRET_AAD + user_id.bytes


def _encrypt_secret(keyring: Keyring, user_id: uuid.UUID, secret: str) -> tuple[str, bytes, bytes]:
    key = secrets.token_bytes(DEK_SIZE)
    kek_id, wrapped = keyring.wrap(key)
    nonce = secrets.token_bytes(_NONCE_SIZE)
    ciphertext = AESGCM(key).encrypt(nonce, secret.encode("ascii"), _aad(user_id))
    return kek_id, wrapped, nonce + ciphertext


def _decrypt_secret(keyring: Keyring, credential: TotpCredential) -> str:
    key = keyring.unwrap(credential.kek_id, credential.wrapped_key)
    blob = credential.secret_ciphertext
    try:
        plain = AESGCM(key).decrypt(
            blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], _aad(credential.user_id)
        )
    except InvalidTag:
        raise IntegrityError(
            f"the TOTP secret of user {credential.user_id} does not decrypt"
        ) from None
    return plain.decode("ascii")


def _qr_svg(uri: str) -> str:
    import segno  # only at enrolment: 5 MiB a serving process otherwise never needs

    label = f"QR code to add {ISSUER} to an authenticator app"
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=4,
        border=4,  # the quiet zone the QR specification asks for
        dark="#000",
        light="#fff",  # readable on a dark page too
        title=label,
        svgclass="totp-qr",
        xmldecl=False,
        svgns=True,
        nl=False,
    )
    svg = buffer.getvalue().decode("utf-8")
    # segno writes no ARIA attributes; the label is our constant, so no escaping is needed.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


async def _credential(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> TotpCredential | None:
    return await session.get(TotpCredential, user_id, with_for_update=lock, populate_existing=True)


def _matching_step(secret: str, code: str, moment: datetime, *, after: int) -> int | None:
    """The time step within the window whose code is `code`, if it is later than `after`.

    pyotp's `verify` says only yes or no, so it cannot refuse a replayed step; this finds
    the step itself, comparing in constant time.
    """
    totp = _totp(secret)
    current = totp.timecode(moment)
    matched = None
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = current + offset
        candidate = totp.at(moment, counter_offset=offset)
        if hmac.compare_digest(candidate.encode(), code.encode()) and step > after:
            matched = step
    return matched


def _totp_code(code: str) -> str | None:
    compact = _SEPARATORS.sub("", code)
    return compact if len(compact) == DIGITS and compact.isascii() and compact.isdigit() else None


async def begin_enrolment(
    session: AsyncSession, keyring: Keyring, user: User, context: audit.AuditContext
) -> Enrolment:
    """Start (or restart) TOTP enrolment with a new secret, inactive until confirmed.

    Raises:
        ConflictError: the user already has a confirmed TOTP; it must be reset first.
    """
    existing = await _credential(session, user.id, lock=True)
    if existing is not None and existing.confirmed_at is not None:
        raise ConflictError("an authenticator app is already set up; reset it first")
    secret = pyotp.random_base32()  # 160 bits from `secrets`, as RFC 4226 recommends
    kek_id, wrapped, ciphertext = _encrypt_secret(keyring, user.id, secret)
    credential = existing or TotpCredential(
        user_id=user.id, kek_id=kek_id, wrapped_key=wrapped, secret_ciphertext=ciphertext
    )
    credential.kek_id = kek_id
    credential.wrapped_key = wrapped
    credential.secret_ciphertext = ciphertext
    credential.created_at = datetime.now(UTC)
    credential.last_step = 0
    session.add(credential)
    await session.flush()
    # Never the secret: whoever reads the log must not be able to make codes.
    await audit.record(
        session, context, AuditAction.MFA_ENROLMENT_STARTED, target_type="user", target_id=user.id
    )
    uri = _totp(secret, user.email).provisioning_uri()
    return Enrolment(secret=secret, uri=uri, qr_svg=_qr_svg(uri))


async def confirm_enrolment(
    session: AsyncSession,
    keyring: Keyring,
    context: audit.AuditContext,
    user: User,
    code: str,
    *,
    now: datetime | None = None,
) -> list[str]:
    """Activate TOTP with a first code from the app; returns new recovery codes (show once).

    Raises:
        MfaError: the code is wrong (or was used already).
        ConflictError: no enrolment is pending, or TOTP is already active.
    """
    moment = now or datetime.now(UTC)
    credential = await _credential(session, user.id, lock=True)
    if credential is None:
        raise ConflictError("no authenticator enrolment is in progress")
    if credential.confirmed_at is not None:
        raise ConflictError("an authenticator app is already set up")
    digits = _totp_code(code)
    step = None
    if digits is not None:
        step = _matching_step(
            _decrypt_secret(keyring, credential), digits, moment, after=credential.last_step
        )
    if step is None:
        # Recorded before raising: a caller that commits anyway (the pages, the API) keeps
        # the failed attempt in the log, as a failed sign-in code is kept.
        await audit.record(
            session, context, AuditAction.MFA_ENROLLED, outcome="failure", target_type="user",
            target_id=user.id,
        )  # fmt: skip
        raise MfaError("the code is not correct; check the time on the device and try again")
    credential.last_step = step
    credential.confirmed_at = moment
    session.add(credential)
    codes = await _replace_recovery_codes(session, user.id, moment)
    await audit.record(
        session,
        context,
        AuditAction.MFA_ENROLLED,
        target_type="user",
        target_id=user.id,
        details={"recovery_codes": len(codes)},
    )
    return codes


async def has_totp(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user has a confirmed TOTP (and so must give a code at sign-in)."""
    found = (
        await session.execute(
            select(TotpCredential.user_id).where(
                TotpCredential.user_id == user_id, col(TotpCredential.confirmed_at).is_not(None)
            )
        )
    ).first()
    return found is not None


async def verify_code(
    session: AsyncSession,
    keyring: Keyring,
    user: User,
    code: str,
    *,
    now: datetime | None = None,
) -> Method | None:
    """Accept a TOTP code or an unused recovery code, once; returns which, or None.

    Does not audit: the caller records the sign-in outcome.
    """
    moment = now or datetime.now(UTC)
    digits = _totp_code(code)
    if digits is not None:
        return "totp" if await _accept_totp(session, keyring, user, digits, moment) else None
    normalised = _normalise_recovery(code)
    if normalised is None:
        return None
    # The conditional UPDATE is the check and the use at once: of two requests carrying
    # the same code, only the one whose UPDATE changes the row succeeds.
    result = await session.execute(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user.id,
            col(RecoveryCode.code_hash) == _recovery_hash(user.id, normalised),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=moment)
    )
    return "recovery" if getattr(result, "rowcount", 0) == 1 else None


async def _accept_totp(
    session: AsyncSession, keyring: Keyring, user: User, digits: str, moment: datetime
) -> bool:
    credential = await _credential(session, user.id)
    if credential is None or credential.confirmed_at is None:
        return False
    step = _matching_step(
        _decrypt_secret(keyring, credential), digits, moment, after=credential.last_step
    )
    if step is None:
        return False
    # Compare-and-set: a concurrent request that matched the same step finds `last_step`
    # already at it (PostgreSQL re-checks the WHERE after waiting on the row lock; SQLite
    # runs the two transactions one after the other) and changes nothing.
    result = await session.execute(
        update(TotpCredential)
        .where(
            col(TotpCredential.user_id) == user.id,
            col(TotpCredential.confirmed_at).is_not(None),
            col(TotpCredential.last_step) < step,
        )
        .values(last_step=step)
    )
    return getattr(result, "rowcount", 0) == 1


# Recovery codes ---------------------------------------------------------------------------


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return "-".join(
        raw[i : i + _RECOVERY_GROUP] for i in range(0, _RECOVERY_LENGTH, _RECOVERY_GROUP)
    )


def _normalise_recovery(code: str) -> str | None:
    compact = _SEPARATORS.sub("", code).upper().translate(_RECOVERY_LOOKALIKES)
    if len(compact) != _RECOVERY_LENGTH or any(ch not in _RECOVERY_ALPHABET for ch in compact):
        return None
    return compact


def _recovery_hash(user_id: uuid.UUID, normalised: str) -> str:
    # The user id in the hash: a row copied onto another account matches nothing there.
    material = _RECOVERY_HASH_PREFIX + user_id.bytes + normalised.encode("ascii")
    return hashlib.sha256(material).hexdigest()


async def _replace_recovery_codes(
    session: AsyncSession, user_id: uuid.UUID, moment: datetime
) -> list[str]:
    await session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        session.add(
            RecoveryCode(
                user_id=user_id,
                code_hash=_recovery_hash(user_id, _normalise_recovery(code) or ""),
                created_at=moment,
            )
        )
    await session.flush()
    return codes


async def regenerate_recovery_codes(
    session: AsyncSession,
    context: audit.AuditContext,
    user: User,
) -> list[str]:
    """Replace all of the user's recovery codes with ten new ones (show them once).

    Raises:
        ConflictError: the user has no confirmed TOTP, so recovery codes would be useless.
    """
    if not await has_totp(session, user.id):
        raise ConflictError("set up an authenticator app before creating recovery codes")
    codes = await _replace_recovery_codes(session, user.id, datetime.now(UTC))
    await audit.record(
        session,
        context,
        AuditAction.MFA_RECOVERY_CODES_REGENERATED,
        target_type="user",
        target_id=user.id,
        details={"recovery_codes": len(codes)},
    )
    return codes


async def remaining_recovery_codes(session: AsyncSession, user_id: uuid.UUID) -> int:
    count = (
        await session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None))
        )
    ).scalar_one()
    return int(count)


async def reset_totp(session: AsyncSession, context: audit.AuditContext, user: User) -> None:
    """Remove the user's TOTP and recovery codes (an admin's reset, or the user's own)."""
    removed = await session.execute(
        delete(TotpCredential).where(col(TotpCredential.user_id) == user.id)
    )
    await session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    await audit.record(
        session,
        context,
        AuditAction.MFA_RESET,
        target_type="user",
        target_id=user.id,
        details={"had_totp": getattr(removed, "rowcount", 0) == 1},
    )


async def rewrap_totp(session: AsyncSession, keyring: Keyring, *, batch: int = 500) -> int:
    """Move every TOTP secret's key to the active KEK (after `keys rotate`); returns how many.

    Only the wrapped key changes: the secret's ciphertext stays as it is.
    """
    active = keyring.active_id
    total = 0
    while True:
        rows: Sequence[TotpCredential] = (
            (
                await session.execute(
                    select(TotpCredential)
                    .where(TotpCredential.kek_id != active)
                    .limit(batch)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        for credential in rows:
            credential.kek_id, credential.wrapped_key = keyring.rewrap(
                credential.kek_id, credential.wrapped_key
            )
            session.add(credential)
        await session.flush()
        total += len(rows)
        if len(rows) < batch:
            break
    if total:
        await audit.record(
            session,
            audit.SYSTEM,
            AuditAction.KEYS_REWRAPPED,
            details={"totp_credentials": total, "kek_id": active},
        )
    return total
