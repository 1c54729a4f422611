"""The password policy (NIST SP 800-63B §5.1.1.2, ASVS 6.2) and Argon2id hashing."""

from __future__ import annotations

import statistics
import time
import unicodedata

import pytest
from argon2 import PasswordHasher

from vault.accounts import passwords
from vault.accounts.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_password_policy,
    dummy_verify,
    hash_password,
    hasher,
    needs_rehash,
    verify_password,
)
from vault.errors import WeakPasswordError

# Cheap parameters keep the suite fast; the policy and the timing comparison do not depend
# on them.
FAST = hasher(time_cost=1, memory_kib=8192)


def refused(password: str, **context: str) -> WeakPasswordError:
    with pytest.raises(WeakPasswordError) as caught:
        check_password_policy(password, **context)
    return caught.value


def test_minimum_length_is_twelve_characters() -> None:
    error = refused("kx7 vq! mzw")  # 11
    assert error.rule == "too-short"
    assert "too short" in str(error) and str(MIN_LENGTH) in str(error)
    check_password_policy("kx7 vq! mzwp")  # exactly 12


def test_length_counts_characters_not_bytes() -> None:
    # Eleven code points are too short even though they are 33 bytes of UTF-8.
    assert refused("日本語のパスワードです").rule == "too-short"
    check_password_policy("日本語のパスワードですね")


def test_long_passwords_are_allowed_up_to_the_maximum() -> None:
    sentence = "the quick brown fox jumps over the lazy dog near the riverbank at dawn "
    long = (sentence * 2)[:MAX_LENGTH]
    assert len(long) == MAX_LENGTH >= 64
    check_password_policy(long)
    error = refused(long + "x")
    assert error.rule == "too-long" and "too long" in str(error)


def test_no_composition_rules_spaces_and_unicode_allowed() -> None:
    for fine in (
        "correct horse battery staple",  # lowercase letters and spaces only
        "Grüße aus Köln, sagt Jürgen",
        "пароль для сейфа клиентов",
        "🦊 fox 🦉 owl 🐝 bee",
        "   leading and trailing spaces   ",
    ):
        check_password_policy(fine)


def test_control_characters_are_refused() -> None:
    error = refused("line one\nline two")
    assert error.rule == "control-characters" and "control characters" in str(error)


@pytest.mark.parametrize(
    "password",
    [
        "qwertyuiop123",  # listed as is, plus digits
        "iloveyou1234",
        "password1234",
        "Password!!!!",
        "PASSWORD1234",
        "1234password",
        "!!password!!",
        "P@ssw0rd2026",  # letter-for-symbol substitutions
        "monkey123456",
        "sunshine2026!",
        "ＰＡＳＳＷＯＲＤ１２３４",  # full-width forms, folded by NFKC
        "1qaz2wsx3edc",
        "qazwsxedcrfv",
    ],
)
def test_common_passwords_and_padded_variants_are_refused(password: str) -> None:
    error = refused(password)
    assert error.rule == "common"
    assert "common" in str(error) and "breached" in str(error)


def test_list_entries_and_their_case_variants_are_refused() -> None:
    listed = sorted(w for w in passwords.common_passwords() if len(w) >= MIN_LENGTH)
    assert len(passwords.common_passwords()) > 20000 and len(listed) > 200
    for word in listed[:: len(listed) // 40]:
        for variant in (word, word.upper(), word.title()):
            with pytest.raises(WeakPasswordError):
                check_password_policy(variant)


def test_the_list_says_where_it_comes_from() -> None:
    from importlib import resources

    text = (resources.files("vault") / "data" / "common-passwords.txt").read_text("utf-8")
    first = text.splitlines()[0]
    assert first.startswith("#") and "zxcvbn" in first and "MIT" in first
    assert len(text.encode()) < 2 * 1024 * 1024
    entries = [line for line in text.splitlines() if not line.startswith("#")]
    assert all(len(e) >= 6 and e == unicodedata.normalize("NFKC", e).casefold() for e in entries)


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaaaaaa",
        "############",
        "ääääääääääääää",
        "123456789012",
        "098765432109",
        "abcdefghijklm",
        "zyxwvutsrqpon",
        "qwertyuiopas",
        "abcabcabcabc",
        "xyxyxyxyxyxyxy",
        "dragondragondragon",
        "123456789012!!",
    ],
)
def test_repetitive_and_sequential_passwords_are_refused(password: str) -> None:
    error = refused(password)
    assert error.rule in {"repetitive", "common"}
    if error.rule == "repetitive":
        assert "predictable" in str(error)


def test_passwords_made_of_the_users_email_or_name_are_refused() -> None:
    who = {"email": "alice.smith@example.com", "display_name": "Alice Smith"}
    for personal in (
        "alice.smith@example.com",
        "alice.smith2026!",
        "AliceSmith2026",
        "smith alice 99",
        "clientvault2026!",  # the service's own name
    ):
        error = refused(personal, **who)
        assert error.rule == "personal", personal
        assert "email address" in str(error) and "name" in str(error)
    # A name inside a longer, unrelated passphrase is not the substance of it.
    check_password_policy("savannah is lovely in the spring", **who)
    check_password_policy("alice walked down to the old harbour", **who)


def test_hashes_are_argon2id_and_verify_exactly() -> None:
    stored = hash_password("correct horse battery staple", FAST)
    assert stored.startswith("$argon2id$v=19$")
    assert verify_password(stored, "correct horse battery staple", FAST)
    assert not verify_password(stored, "Correct horse battery staple", FAST)
    assert not verify_password(stored, "correct horse battery stapl", FAST)
    assert not verify_password("not a hash", "x", FAST)


def test_passwords_are_nfkc_normalised_before_hashing() -> None:
    composed = "Crème brûlée for dessert"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    stored = hash_password(decomposed, FAST)
    assert verify_password(stored, composed, FAST)
    assert verify_password(hash_password("ﬁne ligature pass", FAST), "fine ligature pass", FAST)


def _count_argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each Argon2 verification (the real one still runs)."""
    runs: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        runs.append("verify")
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return runs


@pytest.mark.parametrize(
    "attempt",
    [
        "correct horse battery staple",  # right
        "wrong horse battery staple",  # wrong
        "ｃｏｒｒｅｃｔ horse battery staple",  # full-width: NFKC changes it, and it is right
        "ﬁne ligature pass",  # NFKC changes it, and it is wrong
    ],
)
def test_every_verification_costs_one_argon2_run(
    monkeypatch: pytest.MonkeyPatch, attempt: str
) -> None:
    # Issue 13 item 1: a full-width password took two Argon2 runs on a real account and one
    # on an unknown one, which told the two apart by timing.
    stored = hash_password("correct horse battery staple", FAST)
    dummy_verify("warm-up", FAST)  # makes the cached dummy hash, not part of an attempt
    runs = _count_argon2_runs(monkeypatch)
    verify_password(stored, attempt, FAST)
    known = len(runs)
    dummy_verify(attempt, FAST)
    assert known == 1
    assert len(runs) - known == 1


def test_needs_rehash_when_parameters_change() -> None:
    stored = hash_password("correct horse battery staple", FAST)
    assert not needs_rehash(stored, FAST)
    assert needs_rehash(stored, hasher(time_cost=2, memory_kib=8192))
    assert needs_rehash(stored, hasher(time_cost=1, memory_kib=16384))
    assert needs_rehash("garbage", FAST)


def _timed(call: object) -> float:
    assert callable(call)
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_dummy_verify_takes_as_long_as_a_real_verification() -> None:
    ph = hasher(time_cost=2, memory_kib=19456)  # ASVS appendix C minimum: measurable time
    stored = hash_password("correct horse battery staple", ph)
    dummy_verify("warm-up", ph)  # the dummy hash is made once per parameters, not timed
    real, dummy = [], []
    for _ in range(5):
        real.append(_timed(lambda: verify_password(stored, "wrong guess here", ph)))
        dummy.append(_timed(lambda: dummy_verify("wrong guess here", ph)))
    ratio = statistics.median(dummy) / statistics.median(real)
    assert 0.5 < ratio < 2.0, (real, dummy)
    assert statistics.median(dummy) > 0.002  # it did real Argon2 work, not nothing


def test_dummy_hash_follows_the_hasher_parameters() -> None:
    dummy_verify("x", FAST)
    other = hasher(time_cost=2, memory_kib=8192)
    dummy_verify("x", other)
    cached_fast = passwords._dummy_hash(
        FAST.time_cost, FAST.memory_cost, FAST.parallelism, FAST.hash_len, FAST.salt_len, FAST.type
    )
    cached_other = passwords._dummy_hash(
        other.time_cost,
        other.memory_cost,
        other.parallelism,
        other.hash_len,
        other.salt_len,
        other.type,
    )
    assert not needs_rehash(cached_fast, FAST) and not needs_rehash(cached_other, other)
