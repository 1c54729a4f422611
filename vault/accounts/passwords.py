"""Passwords: the policy a new password must meet, and Argon2id hashing (RFC 9106).

The policy follows NIST SP 800-63B §5.1.1.2 and ASVS 5.0 §6.2: a length range and a check
against common, breached, repetitive and personal passwords, with no composition rules.
Passwords are NFKC-normalised before they are checked or hashed, so the same password typed
on two keyboards (composed or decomposed accents, full-width digits) is the same password.
Hashing parameters are chosen by the caller (from the settings).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from importlib import resources
from typing import TypeVar

import anyio
from anyio.lowlevel import RunVar
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from vault.errors import WeakPasswordError

MIN_LENGTH = 12
MAX_LENGTH = 128


T = TypeVar("T")

# Argon2 costs about 0.2 s of CPU and 64 MiB per call by design. On the event loop it would
# stall every other request of the process (downloads included) for that long, so it runs in
# worker threads; at most this many at once, so a burst of sign-ins can take neither all the
# memory nor all the worker threads that S3 calls also use.
ARGON2_CONCURRENCY = min(4, os.cpu_count() or 1)
_argon2_threads: RunVar[anyio.CapacityLimiter] = RunVar("argon2_threads")


async def off_loop(call: Callable[..., T], *args: object) -> T:
    """Run an Argon2 call (`hash_password`, `verify_password`, `dummy_verify`) in a thread."""
    try:
        limiter = _argon2_threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(ARGON2_CONCURRENCY)
        _argon2_threads.set(limiter)
    return await anyio.to_thread.run_sync(call, *args, limiter=limiter)


def hasher(*, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def normalise(password: str) -> str:
    """The form a password is checked and hashed in (NFKC, as NIST SP 800-63B suggests)."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, ph: PasswordHasher | None = None) -> str:
    return (ph or hasher()).hash(normalise(password))


def verify_password(stored: str, password: str, ph: PasswordHasher | None = None) -> bool:
    """Whether `password` (NFKC-normalised) matches `stored`: exactly one Argon2 run.

    The work never depends on the input: an account enumeration attack times the answer
    (security review, issue 13 item 1), so a known account, an unknown one (`dummy_verify`)
    and a password that NFKC changes all cost one verification. Hashes hold the NFKC form
    since passwords were first normalised (0.1.0, before any release).
    """
    return _verify(ph or hasher(), stored, normalise(password))


def _verify(ph: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return ph.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, ph: PasswordHasher) -> bool:
    """Whether `stored` was made with other parameters than `ph`'s (rehash at next login)."""
    try:
        return ph.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def _dummy_hash(
    time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int, kind: Type
) -> str:
    ph = PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=hash_len,
        salt_len=salt_len,
        type=kind,
    )
    return ph.hash(secrets.token_urlsafe(32))


def dummy_verify(password: str, ph: PasswordHasher) -> None:
    """Spend the time of a real verification, for sign-in attempts on unknown accounts.

    Without it, "no such account" answers in microseconds and "wrong password" in the
    time of one Argon2 run, which tells an attacker which addresses have accounts.
    """
    stored = _dummy_hash(
        ph.time_cost, ph.memory_cost, ph.parallelism, ph.hash_len, ph.salt_len, ph.type
    )
    _verify(ph, stored, normalise(password))


# Policy ---------------------------------------------------------------------------------


@functools.cache
def common_passwords() -> frozenset[str]:
    """The list in vault/data/common-passwords.txt, NFKC-casefolded (read once, on first use)."""
    text = (resources.files("vault") / "data" / "common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.casefold() for line in text.splitlines() if line and not line.startswith("#")
    )


# Walks along these (either way, wrapping around) are sequences, not passwords: "12345678901",
# "abcdefghijkl", "qwertyuiopas", "1qaz2wsx3edc".
_SEQUENCES = (
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
)
# What people substitute for letters, so "P@ssw0rd" is found as "password".
_LEET = str.maketrans("@401!3$57+89|", "aaoiiessttbgl")
_NAME_SEPARATORS = re.compile(r"[\s._+\-@,;'\"()]+")
_PERSONAL_MIN = 3  # shorter name parts ("Al", "Jo") occur inside too many ordinary words


def _forbidden_characters(password: str) -> bool:
    # Control characters cannot be typed reliably and surrogates cannot be encoded; format
    # characters (Cf: zero-width joiners in emoji sequences) are legitimate.
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in password)


def _is_sequence(text: str) -> bool:
    if len(text) < 3:
        return False
    for sequence in _SEQUENCES:
        if not all(ch in sequence for ch in text):
            continue
        positions = [sequence.index(ch) for ch in text]
        steps = {(b - a) % len(sequence) for a, b in itertools.pairwise(positions)}
        if steps in ({1}, {len(sequence) - 1}):
            return True
    return False


def _smallest_period(text: str) -> int:
    for period in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - period] for i in range(period, len(text))):
            return period
    return len(text)


def _is_repetitive(text: str) -> bool:
    """One character repeated, a sequence, or a short or weak chunk said again and again."""
    if not text or _is_sequence(text):
        return True
    period = _smallest_period(text)
    if period == len(text):
        return False
    unit = text[:period]
    return period <= 4 or _is_sequence(unit) or _is_common(unit)


def _is_filler(text: str) -> bool:
    return not any(ch.isalpha() for ch in text)


def _is_common(folded: str) -> bool:
    """A listed password, alone or padded with digits and symbols ("Password!!!!",
    "1234monkey5678"), with or without letter-for-symbol substitutions ("P@ssw0rd")."""
    listed = common_passwords()
    if folded in listed or folded.translate(_LEET) in listed:
        return True
    n = len(folded)
    starts = [i for i in range(n) if _is_filler(folded[:i])]
    ends = [j for j in range(n, 0, -1) if _is_filler(folded[j:])]
    for i in starts:
        for j in ends:
            if j - i < 6:  # the list holds nothing shorter
                break
            core = folded[i:j]
            if core in listed or core.translate(_LEET) in listed:
                return True
    return False


def _personal_words(email: str, display_name: str) -> list[str]:
    words: set[str] = set()
    folded_email = normalise(email).casefold().strip()
    local = folded_email.partition("@")[0]
    for candidate in (folded_email, local, *_NAME_SEPARATORS.split(local)):
        if len(candidate) >= _PERSONAL_MIN:
            words.add(candidate)
    name = normalise(display_name).casefold().strip()
    parts = [p for p in _NAME_SEPARATORS.split(name) if p]
    for candidate in (name, "".join(parts), *parts):
        if len(candidate) >= _PERSONAL_MIN:
            words.add(candidate)
    words.add("clientvault")  # the service's own name is the first word an attacker tries
    return sorted(words, key=len, reverse=True)


def _is_personal(folded: str, words: list[str]) -> bool:
    """The password is mostly the user's address or name: what is left once they are cut
    out is short or trivial. ("alice.smith2026" is refused; a long passphrase that happens
    to contain "anna" inside "savannah" is not.)"""
    rest = folded
    for word in words:
        rest = rest.replace(word, "")
    if rest == folded:
        return False
    rest = rest.strip()
    return len(rest) < MIN_LENGTH or _is_repetitive(rest) or _is_filler(rest) or _is_common(rest)


def check_password_policy(password: str, *, email: str = "", display_name: str = "") -> None:
    """Refuse a new password that is too short or long, common, trivial or personal.

    Raises:
        WeakPasswordError: naming the rule that was broken.
    """
    normalised = normalise(password)
    length = len(normalised)  # code points, as NIST counts them
    if length < MIN_LENGTH:
        raise WeakPasswordError(
            f"The password is too short: use at least {MIN_LENGTH} characters. A few "
            "unrelated words with spaces between them make a good one.",
            rule="too-short",
        )
    if length > MAX_LENGTH:
        raise WeakPasswordError(
            f"The password is too long: use at most {MAX_LENGTH} characters.", rule="too-long"
        )
    if _forbidden_characters(normalised):
        raise WeakPasswordError(
            "The password contains control characters (such as a line break or tab); "
            "letters, digits, symbols and spaces are all fine.",
            rule="control-characters",
        )
    folded = normalised.casefold()
    if _is_personal(folded, _personal_words(email, display_name)):
        raise WeakPasswordError(
            "The password is too close to your email address, your name or the name of "
            "this service: choose one that others cannot guess from them.",
            rule="personal",
        )
    if _is_common(folded):
        raise WeakPasswordError(
            "The password is a commonly used password, found in lists of breached "
            "passwords that attackers try first: choose another.",
            rule="common",
        )
    # Symbols and spaces around a sequence ("123456789012!") add nothing to it.
    stripped = folded.strip(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    if _is_repetitive(folded) or _is_repetitive(stripped):
        raise WeakPasswordError(
            "The password is too predictable: it repeats a character or a pattern, or "
            "follows a sequence such as 1234, abcd or qwerty.",
            rule="repetitive",
        )
