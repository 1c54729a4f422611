"""Accounts and sign-in: users and their tokens (`users`), the sign-in tables (`identity`),
passwords, second factors, sessions, emailed links, rate limits, re-authentication,
invitations, profiles and the console's view of people. The names below are the users'
surface; the modules beside this file hold the rest."""

from __future__ import annotations

from vault.accounts.users import (
    TOKEN_NAME_LENGTH,
    TOKEN_PREFIX,
    authenticate_token,
    create_token,
    create_user,
    find_user,
    grant_access,
    list_tokens,
    normalise_email,
    principal_for,
    revoke_token,
)

__all__ = [
    "TOKEN_NAME_LENGTH",
    "TOKEN_PREFIX",
    "authenticate_token",
    "create_token",
    "create_user",
    "find_user",
    "grant_access",
    "list_tokens",
    "normalise_email",
    "principal_for",
    "revoke_token",
]
