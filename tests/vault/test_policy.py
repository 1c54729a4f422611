"""Property tests of the access policy over random users × clients × permissions."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import NotFoundError, PermissionDeniedError
from vault.models import Role
from vault.policy import Permission, Principal, allows, can_see_client, require

CLIENTS = [uuid.UUID(int=i) for i in range(1, 5)]
CLIENT_SCOPED = [
    Permission.VIEW,
    Permission.DOWNLOAD,
    Permission.UPLOAD,
    Permission.CREATE_FOLDER,
    Permission.DELETE,
    Permission.INVITE,
    Permission.REQUEST_DOCUMENTS,
]
WRITES = {
    Permission.UPLOAD,
    Permission.CREATE_FOLDER,
    Permission.DELETE,
    Permission.CREATE_CLIENT,
    Permission.INVITE,
    Permission.MANAGE,
    Permission.REQUEST_DOCUMENTS,
}

principals = st.builds(
    Principal,
    user_id=st.uuids(),
    email=st.just("x@example.test"),
    role=st.sampled_from(list(Role)),
    client_ids=st.frozensets(st.sampled_from(CLIENTS)),
    read_only=st.booleans(),
)


@given(principals, st.sampled_from(CLIENTS), st.sampled_from(list(Permission)))
def test_policy_matches_the_role_table(p: Principal, client: uuid.UUID, perm: Permission) -> None:
    visible = p.role is Role.ADMIN or (
        p.role in (Role.CLIENT, Role.STAFF) and client in p.client_ids
    )
    assert can_see_client(p, client) == visible
    expected: bool
    if p.read_only and perm in WRITES:
        expected = False
    elif perm is Permission.READ_AUDIT:
        expected = p.role in (Role.AUDITOR, Role.ADMIN)
    elif perm is Permission.CREATE_CLIENT:
        expected = p.role in (Role.STAFF, Role.ADMIN)
    elif perm is Permission.MANAGE:
        expected = p.role is Role.ADMIN
    elif not visible:
        expected = False
    elif p.role is Role.CLIENT:
        expected = perm in (Permission.VIEW, Permission.DOWNLOAD, Permission.UPLOAD)
    else:
        expected = perm in CLIENT_SCOPED
    assert allows(p, perm, client) == expected


@given(principals, st.sampled_from(CLIENTS), st.sampled_from(CLIENT_SCOPED))
def test_hidden_clients_are_not_found_never_forbidden(
    p: Principal, client: uuid.UUID, perm: Permission
) -> None:
    if can_see_client(p, client):
        if allows(p, perm, client):
            require(p, perm, client)
        else:
            with pytest.raises(PermissionDeniedError):
                require(p, perm, client)
    else:
        with pytest.raises(NotFoundError):
            require(p, perm, client)


@given(principals, st.sampled_from(CLIENTS))
def test_auditors_never_download(p: Principal, client: uuid.UUID) -> None:
    if p.role is Role.AUDITOR:
        assert not allows(p, Permission.DOWNLOAD, client)
        assert not allows(p, Permission.VIEW, client)


@given(principals, st.sampled_from(CLIENTS), st.sampled_from(list(Permission)))
def test_read_only_tokens_never_write(p: Principal, client: uuid.UUID, perm: Permission) -> None:
    if p.read_only and perm in WRITES:
        assert not allows(p, perm, client)
