"""Password hashing with Argon2id (RFC 9106), parameters chosen by the caller."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def hasher(*, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hash_password(password: str, ph: PasswordHasher | None = None) -> str:
    return (ph or hasher()).hash(password)


def verify_password(stored: str, password: str, ph: PasswordHasher | None = None) -> bool:
    try:
        return (ph or hasher()).verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
