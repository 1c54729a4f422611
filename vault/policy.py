"""The one access policy: every read and write in the vault asks it first.

Deny by default. A resource of a client the caller cannot see is reported as missing
(`NotFoundError` → 404), so ids of other clients' documents reveal nothing; a visible
resource the caller may not change raises `PermissionDeniedError` (403).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from vault.errors import NotFoundError, PermissionDeniedError
from vault.models import Role


class Permission(StrEnum):
    VIEW = "view"  # folders, documents and versions (metadata)
    DOWNLOAD = "download"
    UPLOAD = "upload"
    CREATE_FOLDER = "create_folder"
    DELETE = "delete"
    CREATE_CLIENT = "create_client"
    READ_AUDIT = "read_audit"
    MANAGE = "manage"  # users, clients, assignments, keys
    INVITE = "invite"  # invite client users to a client
    REQUEST_DOCUMENTS = "request_documents"  # open, answer and close document requests


# What each role may do on the clients it can see (client-scoped permissions) ...
_CLIENT_SCOPED: dict[Role, frozenset[Permission]] = {
    Role.CLIENT: frozenset({Permission.VIEW, Permission.DOWNLOAD, Permission.UPLOAD}),
    Role.STAFF: frozenset(
        {
            Permission.VIEW,
            Permission.DOWNLOAD,
            Permission.UPLOAD,
            Permission.CREATE_FOLDER,
            Permission.DELETE,
            Permission.INVITE,
            Permission.REQUEST_DOCUMENTS,
        }
    ),
    Role.AUDITOR: frozenset(),
    Role.ADMIN: frozenset(
        {
            Permission.VIEW,
            Permission.DOWNLOAD,
            Permission.UPLOAD,
            Permission.CREATE_FOLDER,
            Permission.DELETE,
            Permission.INVITE,
            Permission.REQUEST_DOCUMENTS,
        }
    ),
}
# ... and what it may do regardless of client.
_GLOBAL: dict[Role, frozenset[Permission]] = {
    Role.CLIENT: frozenset(),
    Role.STAFF: frozenset({Permission.CREATE_CLIENT}),
    Role.AUDITOR: frozenset({Permission.READ_AUDIT}),
    Role.ADMIN: frozenset({Permission.CREATE_CLIENT, Permission.READ_AUDIT, Permission.MANAGE}),
}
_WRITES = frozenset(
    {
        Permission.UPLOAD,
        Permission.CREATE_FOLDER,
        Permission.DELETE,
        Permission.CREATE_CLIENT,
        Permission.INVITE,
        Permission.MANAGE,
        Permission.REQUEST_DOCUMENTS,
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user, their role, the clients they belong or are assigned to."""

    user_id: uuid.UUID
    email: str
    role: Role
    client_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    read_only: bool = False  # a read-only access token

    @property
    def user_ref(self) -> uuid.UUID | None:
        """The user to record as creator or uploader; None for the system itself."""
        return None if self.user_id == SYSTEM_USER_ID else self.user_id


# The CLI and maintenance jobs act as this administrator, which is no row in `users`.
SYSTEM_USER_ID = uuid.UUID(int=0)
SYSTEM = Principal(user_id=SYSTEM_USER_ID, email="", role=Role.ADMIN)


def can_see_client(principal: Principal, client_id: uuid.UUID) -> bool:
    """Whether the client's folders and documents exist for this caller at all."""
    if principal.role is Role.ADMIN:
        return True
    if principal.role in (Role.CLIENT, Role.STAFF):
        return client_id in principal.client_ids
    return False


def allows(principal: Principal, permission: Permission, client_id: uuid.UUID | None) -> bool:
    """Whether `principal` may do `permission` (on `client_id`, for client-scoped ones)."""
    if principal.read_only and permission in _WRITES:
        return False
    if permission in _GLOBAL[principal.role]:
        return True
    if client_id is None or not can_see_client(principal, client_id):
        return False
    return permission in _CLIENT_SCOPED[principal.role]


def require(principal: Principal, permission: Permission, client_id: uuid.UUID | None) -> None:
    """Raise unless allowed: `NotFoundError` when the client is hidden, else 403."""
    if client_id is not None and not can_see_client(principal, client_id):
        raise NotFoundError("not found")
    if not allows(principal, permission, client_id):
        raise PermissionDeniedError(f"{principal.role} may not {permission}")
