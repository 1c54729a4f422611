"""TOTP enrolment and verification, recovery codes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT
from vault.accounts import mfa
from vault.accounts.identity import RecoveryCode, TotpCredential
from vault.crypto.keyring import KeyFile, Keyring
from vault.db import create_engine, session_factory, transaction
from vault.errors import ConflictError, IntegrityError, MfaError
from vault.models import AuditEvent, Role, User

# The middle of a 30-second step, so ±1 step is unambiguous.
T0 = datetime(2026, 3, 2, 9, 0, 15, tzinfo=UTC)
STEP = timedelta(seconds=30)

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class Env:
    sessions: Sessions
    keyring: Keyring
    user: User
    other: User


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    keyring = Keyring(KeyFile.create(tmp_path / "keys.json"))
    async with transaction(sessions) as session:
        user = User(email="alice@example.com", display_name="Alice", role=Role.STAFF)
        other = User(email="bob@example.com", display_name="Bob", role=Role.CLIENT)
        session.add_all([user, other])
    try:
        yield Env(sessions, keyring, user, other)
    finally:
        await engine.dispose()


def code_at(secret: str, moment: datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


async def begin(env: Env, user: User | None = None) -> mfa.Enrolment:
    async with transaction(env.sessions) as session:
        return await mfa.begin_enrolment(session, env.keyring, user or env.user, TEST_CONTEXT)


async def confirm(env: Env, code: str, *, at: datetime = T0) -> list[str]:
    async with transaction(env.sessions) as session:
        return await mfa.confirm_enrolment(
            session, env.keyring, TEST_CONTEXT, env.user, code, now=at
        )


async def enrolled(env: Env) -> tuple[str, list[str]]:
    enrolment = await begin(env)
    codes = await confirm(env, code_at(enrolment.secret, T0))
    return enrolment.secret, codes


async def verify(env: Env, code: str, *, at: datetime = T0, user: User | None = None) -> str | None:
    async with transaction(env.sessions) as session:
        return await mfa.verify_code(session, env.keyring, user or env.user, code, now=at)


async def has_totp(env: Env) -> bool:
    async with transaction(env.sessions) as session:
        return await mfa.has_totp(session, env.user.id)


async def remaining(env: Env) -> int:
    async with transaction(env.sessions) as session:
        return await mfa.remaining_recovery_codes(session, env.user.id)


async def events(env: Env, action: str) -> list[AuditEvent]:
    async with transaction(env.sessions) as session:
        rows = await session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        )
        return list(rows.scalars().all())


async def credential(env: Env) -> TotpCredential:
    async with transaction(env.sessions) as session:
        row = await session.get(TotpCredential, env.user.id)
    assert row is not None
    return row


async def test_enrolment_gives_an_authenticator_uri_and_needs_a_first_code(env: Env) -> None:
    enrolment = await begin(env)
    assert re.fullmatch(r"[A-Z2-7]{32}", enrolment.secret)
    uri = urlsplit(enrolment.uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/ClientVault:alice@example.com"
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert query["secret"] == enrolment.secret and query["issuer"] == "ClientVault"
    assert query.get("digits", "6") == "6" and query.get("period", "30") == "30"
    assert query.get("algorithm", "SHA1") == "SHA1"
    assert enrolment.secret not in repr(enrolment)
    assert not await has_totp(env)  # pending until confirmed
    assert await verify(env, code_at(enrolment.secret, T0)) is None

    wrong = f"{(int(code_at(enrolment.secret, T0)) + 1) % 1_000_000:06d}"
    with pytest.raises(MfaError):
        await confirm(env, wrong)
    with pytest.raises(MfaError):
        await confirm(env, "not a code")
    assert not await has_totp(env)

    codes = await confirm(env, code_at(enrolment.secret, T0))
    assert await has_totp(env)
    assert (await credential(env)).confirmed_at == T0
    assert len(codes) == 10 == len(set(codes)) == await remaining(env)
    [event] = await events(env, "mfa.enrolled")
    assert event.target_id == str(env.user.id) and event.outcome == "success"
    # A second enrolment is refused until the first is reset.
    with pytest.raises(ConflictError):
        await begin(env)
    with pytest.raises(ConflictError):
        await confirm(env, code_at(enrolment.secret, T0 + STEP), at=T0 + STEP)


async def test_restarting_enrolment_replaces_the_pending_secret(env: Env) -> None:
    first = await begin(env)
    second = await begin(env)
    assert first.secret != second.secret
    with pytest.raises(MfaError):
        await confirm(env, code_at(first.secret, T0))
    await confirm(env, code_at(second.secret, T0))


async def test_confirming_without_enrolment_is_a_conflict(env: Env) -> None:
    with pytest.raises(ConflictError):
        await confirm(env, "123456")


async def test_each_totp_step_is_accepted_once(env: Env) -> None:
    secret, _ = await enrolled(env)
    # The code that confirmed the enrolment is used up.
    assert await verify(env, code_at(secret, T0)) is None
    later = T0 + STEP
    assert await verify(env, code_at(secret, later), at=later) == "totp"
    assert await verify(env, code_at(secret, later), at=later) is None  # replay
    # A code of the following step is within the tolerance and unused: accepted.
    assert await verify(env, code_at(secret, later + STEP), at=later) == "totp"
    # ...after which the current step's code is older than the last one used.
    assert await verify(env, code_at(secret, later), at=later + STEP) is None
    assert (await credential(env)).last_step == pyotp.TOTP(secret).timecode(later + STEP)


async def test_codes_outside_one_step_are_refused(env: Env) -> None:
    secret, _ = await enrolled(env)
    now = T0 + 10 * STEP
    assert await verify(env, code_at(secret, now + 2 * STEP), at=now) is None
    assert await verify(env, code_at(secret, now - 2 * STEP), at=now) is None
    assert await verify(env, code_at(secret, now - STEP), at=now) == "totp"
    spaced = code_at(secret, now)
    assert await verify(env, f" {spaced[:3]} {spaced[3:]} ", at=now) == "totp"


async def test_a_recovery_code_works_once(env: Env) -> None:
    _, codes = await enrolled(env)
    assert all(re.fullmatch(r"([A-Z2-7]{5}-){4}[A-Z2-7]{5}", c) for c in codes)
    assert await verify(env, codes[0]) == "recovery"
    assert await verify(env, codes[0]) is None
    # Typed carelessly: lower case, spaces instead of dashes.
    assert await verify(env, codes[1].lower().replace("-", " ")) == "recovery"
    assert await remaining(env) == 8
    assert await verify(env, "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA") is None
    # Another user's codes do not work for this one.
    async with transaction(env.sessions) as session:
        assert await mfa.verify_code(session, env.keyring, env.other, codes[2], now=T0) is None
    async with transaction(env.sessions) as session:
        stored = (await session.execute(select(RecoveryCode.code_hash))).scalars().all()
    plain = [c.replace("-", "") for c in codes]
    assert len(stored) == 10 and not any(p in h.upper() for p in plain for h in stored)


async def test_regenerating_recovery_codes_voids_the_old_ones(env: Env) -> None:
    _, old = await enrolled(env)
    async with transaction(env.sessions) as session:
        new = await mfa.regenerate_recovery_codes(session, TEST_CONTEXT, env.user)
    assert len(new) == 10 and not set(new) & set(old)
    assert await verify(env, old[0]) is None
    assert await verify(env, new[0]) == "recovery"
    [event] = await events(env, "mfa.recovery_codes_regenerated")
    assert event.target_id == str(env.user.id)
    async with transaction(env.sessions) as session:
        with pytest.raises(ConflictError):
            await mfa.regenerate_recovery_codes(session, TEST_CONTEXT, env.other)


async def test_the_secret_is_encrypted_and_bound_to_its_user(env: Env) -> None:
    secret, _ = await enrolled(env)
    row = await credential(env)
    raw = base64.b32decode(secret)
    for blob in (row.secret_ciphertext, row.wrapped_key):
        assert secret.encode() not in blob and raw not in blob
    assert row.kek_id == env.keyring.active_id
    # The same row copied onto another account does not decrypt there.
    async with transaction(env.sessions) as session:
        session.add(
            TotpCredential(
                user_id=env.other.id,
                kek_id=row.kek_id,
                wrapped_key=row.wrapped_key,
                secret_ciphertext=row.secret_ciphertext,
                confirmed_at=T0,
            )
        )
    with pytest.raises(IntegrityError):
        await verify(env, code_at(secret, T0 + STEP), at=T0 + STEP, user=env.other)


async def test_admin_reset_removes_the_factor_and_is_audited(env: Env) -> None:
    secret, codes = await enrolled(env)
    admin = TEST_CONTEXT
    async with transaction(env.sessions) as session:
        await mfa.reset_totp(session, admin, env.user)
    assert not await has_totp(env)
    assert await remaining(env) == 0
    assert await verify(env, code_at(secret, T0 + STEP), at=T0 + STEP) is None
    assert await verify(env, codes[0]) is None
    [event] = await events(env, "mfa.reset")
    assert (event.target_type, event.target_id) == ("user", str(env.user.id))
    assert event.actor_role == admin.actor_role
    # The user can enrol afresh.
    enrolment = await begin(env)
    await confirm(env, code_at(enrolment.secret, T0 + STEP), at=T0 + STEP)


async def test_qr_code_is_inline_safe_svg(env: Env) -> None:
    enrolment = await begin(env)
    svg = enrolment.qr_svg
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own output; the test is that it parses)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script" not in svg.lower() and "href" not in svg.lower()
    assert not any(name.lower().startswith("on") for el in root.iter() for name in el.attrib)
    assert root.get("role") == "img" and "authenticator" in (root.get("aria-label") or "")
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text and "ClientVault" in title.text
    assert enrolment.secret not in svg  # the secret is only in the QR modules


async def test_rewrap_moves_secrets_to_the_rotated_kek(env: Env) -> None:
    secret, _ = await enrolled(env)
    old = env.keyring.active_id
    new = env.keyring.rotate()
    assert (await credential(env)).kek_id == old
    async with transaction(env.sessions) as session:
        assert await mfa.rewrap_totp(session, env.keyring) == 1
    assert (await credential(env)).kek_id == new
    async with transaction(env.sessions) as session:
        assert await mfa.rewrap_totp(session, env.keyring) == 0
    [event] = await events(env, "keys.rewrapped")
    assert '"totp_credentials":1' in event.details
    later = T0 + STEP
    assert await verify(env, code_at(secret, later), at=later) == "totp"


async def test_a_code_raced_in_two_transactions_is_accepted_once(env: Env) -> None:
    secret, _ = await enrolled(env)
    later = T0 + STEP
    code = code_at(secret, later)
    async with env.sessions() as a, env.sessions() as b:
        await a.begin()
        await b.begin()
        first = await mfa.verify_code(a, env.keyring, env.user, code, now=later)
        # B reads the credential (or, on SQLite, waits for the write lock) while A's use
        # of the step is not yet committed.
        racing = asyncio.create_task(mfa.verify_code(b, env.keyring, env.user, code, now=later))
        await asyncio.sleep(0.3)
        await a.commit()
        second = await asyncio.wait_for(racing, 10)
        await b.commit()
    assert (first, second) == ("totp", None)


async def test_concurrent_submissions_of_one_code_succeed_once(env: Env) -> None:
    secret, codes = await enrolled(env)
    later = T0 + STEP
    results = await asyncio.gather(
        *(verify(env, code_at(secret, later), at=later) for _ in range(8))
    )
    assert (results.count("totp"), results.count(None)) == (1, 7)
    results = await asyncio.gather(*(verify(env, codes[0]) for _ in range(8)))
    assert (results.count("recovery"), results.count(None)) == (1, 7)


async def test_unknown_user_has_no_totp(env: Env) -> None:
    async with transaction(env.sessions) as session:
        assert not await mfa.has_totp(session, uuid.uuid4())
        assert await mfa.remaining_recovery_codes(session, uuid.uuid4()) == 0
