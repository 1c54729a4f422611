"""The one access policy: every read and write in the vault asks it first.

Deny by default. A resource of a client the caller cannot see is reported as missing
(`NotFoundError` → 404), so ids of other clients' documents reveal nothing; a visible
resource the caller may not change raises `PermissionDeniedError` (403).

Shared clients hold the firm's resources (guides, forms, FAQs): every client user and staff
member may read them, staff may also curate them, and client users never write there, even
as members. Auditors still see no client's files.
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
# What each role may do on a shared client, whoever it is assigned to. Staff curate the
# resources; requests and invitations make no sense for the firm's own space.
_SHARED: dict[Role, frozenset[Permission]] = {
    Role.CLIENT: frozenset({Permission.VIEW, Permission.DOWNLOAD}),
    Role.STAFF: frozenset(
        {
            Permission.VIEW,
            Permission.DOWNLOAD,
            Permission.UPLOAD,
            Permission.CREATE_FOLDER,
            Permission.DELETE,
        }
    ),
    Role.AUDITOR: frozenset(),
    Role.ADMIN: _CLIENT_SCOPED[Role.ADMIN],
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
    # Every shared client (the firm's resources), whether or not the user belongs to it.
    shared_client_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    # Archived clients: still readable by those who may see them, changed by nobody.
    archived_client_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

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
        return client_id in principal.client_ids or client_id in principal.shared_client_ids
    return False


def visible_client_ids(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The ids of every client `principal` may see; None means all of them (admins)."""
    if principal.role is Role.ADMIN:
        return None
    return frozenset(
        c
        for c in principal.client_ids | principal.shared_client_ids
        if can_see_client(principal, c)
    )


def allows(principal: Principal, permission: Permission, client_id: uuid.UUID | None) -> bool:
    """Whether `principal` may do `permission` (on `client_id`, for client-scoped ones)."""
    if principal.read_only and permission in _WRITES:
        return False
    if permission in _GLOBAL[principal.role]:
        return True
    if client_id is None or not can_see_client(principal, client_id):
        return False
    if client_id in principal.archived_client_ids and permission in _WRITES:
        return False
    if client_id in principal.shared_client_ids:
        return permission in _SHARED[principal.role]
    return permission in _CLIENT_SCOPED[principal.role]


def require(principal: Principal, permission: Permission, client_id: uuid.UUID | None) -> None:
    """Raise unless allowed: `NotFoundError` when the client is hidden, else 403."""
    if client_id is not None and not can_see_client(principal, client_id):
        raise NotFoundError("not found")
    if not allows(principal, permission, client_id):
        raise PermissionDeniedError(f"{principal.role} may not {permission}")


def is_firm(principal: Principal) -> bool:
    """Whether the caller acts for the firm (staff or admin) and may change things: posting
    announcements and publishing to many clients at once."""
    return principal.role in (Role.STAFF, Role.ADMIN) and not principal.read_only


def require_firm(principal: Principal, action: str) -> None:
    """Raise `PermissionDeniedError` unless `is_firm`; `action` words the message."""
    if not is_firm(principal):
        raise PermissionDeniedError(f"{principal.role} may not {action}")


def require_admin(principal: Principal, action: str) -> None:
    """Raise `PermissionDeniedError` unless an administrator (not through a read-only token)
    asks: quotas, retention and legal holds are the firm's records policy."""
    if principal.role is not Role.ADMIN or principal.read_only:
        raise PermissionDeniedError(f"{principal.role} may not {action}")
