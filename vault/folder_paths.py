"""Recreating an uploaded folder's tree: a relative path such as `2025/receipts/a.pdf`,
sent with each file of a dropped folder, names the subfolders the file goes into.

Each missing folder is created as `folders.create_folder` creates any folder (permission
checked, name validated, audited as `folder.created`); one that exists is reused, so the
files of one tree, uploaded side by side, meet in the same folders. A folder of the tree
with no file in it is created by its own path (`ensure_path`), so an empty subfolder of a
dropped tree is recreated too.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from vault import audit
from vault import folders as folder_service
from vault.errors import ConflictError, InvalidNameError, InvalidPathError
from vault.models import Folder
from vault.names import name_key, validate_name
from vault.policy import Principal

# Deeper than anyone files by hand; a bound on the folders one request may create.
MAX_DEPTH = 32
MAX_PATH = 4096


def folder_names(relative_path: str, *, ends_in_file: bool = True) -> list[str]:
    """The folders of `relative_path`, outermost first (its last part is the file's name,
    unless not `ends_in_file`).

    Raises:
        InvalidPathError: an absolute path, a `.` or `..` part (path traversal out of the
            folder the upload targets), an empty part, or a folder name the rules refuse.
    """
    if len(relative_path) > MAX_PATH:
        raise InvalidPathError("the relative path is too long", rule="too-long")
    text = relative_path.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise InvalidPathError("the relative path must not be absolute", rule="absolute")
    parts = text.split("/")
    if any(part in (".", "..") for part in parts):
        raise InvalidPathError("the relative path must not contain . or ..", rule="traversal")
    if any(not part for part in parts):
        raise InvalidPathError("the relative path has an empty part", rule="empty-part")
    names = parts[:-1] if ends_in_file else parts
    if len(names) > MAX_DEPTH:
        raise InvalidPathError("the relative path is too deep", rule="too-deep")
    try:
        return [validate_name(name) for name in names]
    except InvalidNameError as exc:
        raise InvalidPathError(f"a folder name is refused: {exc}", rule=exc.rule) from exc


async def _child(session: AsyncSession, parent: Folder, name: str) -> Folder | None:
    query = select(Folder).where(
        Folder.client_id == parent.client_id,
        Folder.parent_ref == str(parent.id),
        Folder.name_key == name_key(name),
    )
    return (await session.execute(query)).scalar_one_or_none()


async def ensure_folders(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    folder_id: uuid.UUID,
    relative_path: str,
) -> uuid.UUID:
    """The folder under `folder_id` that `relative_path`'s file goes into, creating (and
    auditing) each missing folder on the way.

    Raises:
        InvalidPathError: see `folder_names`.
        NotFoundError: `folder_id` is not the caller's to see.
        PermissionDeniedError: a folder is missing and the caller may not create folders.
    """
    return await _ensure(session, principal, context, folder_id, folder_names(relative_path))


async def ensure_path(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    folder_id: uuid.UUID,
    folder_path: str,
) -> uuid.UUID:
    """The folder `folder_path` (folders only, such as `2025/empty`) names under
    `folder_id`, creating each missing one as `ensure_folders` does.

    Raises: as `ensure_folders`.
    """
    names = folder_names(folder_path, ends_in_file=False)
    return await _ensure(session, principal, context, folder_id, names)


async def _ensure(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    folder_id: uuid.UUID,
    names: list[str],
) -> uuid.UUID:
    current = await folder_service.get_folder(session, principal, folder_id)
    for name in names:
        found = await _child(session, current, name)
        if found is None:
            try:
                found = await folder_service.create_folder(
                    session,
                    principal,
                    context,
                    client_id=current.client_id,
                    parent_id=current.id,
                    name=name,
                )
            except ConflictError:
                # Another file of the same tree created it meanwhile: use that one.
                found = await _child(session, current, name)
                if found is None:
                    raise
        current = found
    return current.id
