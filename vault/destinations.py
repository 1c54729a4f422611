"""Where staff publish: a folder path chosen once for several clients at a time.

A path is a list of folder names from a client's top level down ("Reports / 2026"). The
clients' trees differ, so the same path may exist for some chosen clients and not for
others: publishing walks it in each client by name (compared as `name_key` compares them)
and creates, audited, the folders that are missing there. The tree offered to choose from
is the union of the trees of the clients the caller may publish to, each folder marked with
the clients it exists for.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault import audit
from vault import folders as folder_service
from vault.errors import ConflictError, InvalidNameError
from vault.models import ROOT_REF, Folder
from vault.names import name_key, validate_name
from vault.policy import Permission, Principal, allows, require

SEPARATOR = "/"  # validate_name refuses "/" in every name, so it cannot be part of one
MAX_DEPTH = 16
# Folders read to draw the tree; a firm with more sees the first ones by name, and may still
# type any path.
MAX_TREE_FOLDERS = 5000


def parse_path(text: str) -> list[str]:
    """The folder names of `text` ("Reports/2026"), each checked and in NFC.

    Raises:
        InvalidNameError: a name breaks a naming rule, the path is empty or too deep.
    """
    parts = [part.strip() for part in text.split(SEPARATOR)]
    if not any(parts):
        raise InvalidNameError("empty", "Name the folder.")
    if len(parts) > MAX_DEPTH:
        raise InvalidNameError("too_long", f"A path has at most {MAX_DEPTH} folders.")
    return [validate_name(part) for part in parts]


def join_path(names: Iterable[str]) -> str:
    return SEPARATOR.join(names)


@dataclass(frozen=True, slots=True)
class TreeFolder:
    """One folder of the combined tree: its path, and the clients it exists for."""

    path: tuple[str, ...]
    client_ids: frozenset[uuid.UUID]

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def value(self) -> str:
        return join_path(self.path)


async def combined_tree(
    session: AsyncSession, principal: Principal, client_ids: Sequence[uuid.UUID]
) -> list[TreeFolder]:
    """The folders of `client_ids` merged by path, depth first and by name; clients the
    caller may not publish to are left out, whatever was asked."""
    allowed = [c for c in dict.fromkeys(client_ids) if allows(principal, Permission.UPLOAD, c)]
    if not allowed:
        return []
    rows = (
        await session.execute(
            select(col(Folder.id), col(Folder.client_id), col(Folder.parent_id), col(Folder.name))
            .where(col(Folder.client_id).in_(allowed))
            .order_by(col(Folder.name_key), col(Folder.created_at))
            .limit(MAX_TREE_FOLDERS)
        )
    ).all()
    by_id = {fid: (client_id, parent_id, name) for fid, client_id, parent_id, name in rows}
    keys: dict[uuid.UUID, tuple[str, ...] | None] = {}

    def key_of(fid: uuid.UUID) -> tuple[str, ...] | None:
        # None: a folder whose ancestors were cut off by the limit (or a damaged chain).
        if fid in keys:
            return keys[fid]
        keys[fid] = None  # a cycle stops here
        _, parent_id, name = by_id[fid]
        if parent_id is None:
            found: tuple[str, ...] | None = (name,)
        elif parent_id in by_id:
            parent = key_of(parent_id)
            found = None if parent is None else (*parent, name)
        else:
            found = None
        keys[fid] = found
        return found

    spellings: dict[tuple[str, ...], Counter[str]] = {}
    found_in: dict[tuple[str, ...], set[uuid.UUID]] = {}
    for fid, (client_id, _, _) in by_id.items():
        path = key_of(fid)
        if path is None or len(path) > MAX_DEPTH:
            continue
        match = tuple(name_key(n) for n in path)
        spellings.setdefault(match, Counter())[path[-1]] += 1
        found_in.setdefault(match, set()).add(client_id)
    shown: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}
    tree = []
    for match in sorted(found_in):  # a parent sorts before its children
        # The spelling most clients use names the merged folder (the same on every database).
        counts = spellings[match]
        name = min(counts, key=lambda n: (-counts[n], n))
        shown[match] = (*shown[match[:-1]], name)
        tree.append(TreeFolder(shown[match], frozenset(found_in[match])))
    return tree


async def folder_at_path(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    *,
    client_id: uuid.UUID,
    path: Sequence[str],
) -> Folder:
    """The client's folder at `path`, each missing folder on the way created (and audited).

    Raises:
        NotFoundError: the client is not visible to the caller.
        PermissionDeniedError: the caller may not upload into the client.
        InvalidNameError: a name of the path breaks a naming rule.
    """
    await folder_service.get_client(session, principal, client_id)
    require(principal, Permission.UPLOAD, client_id)
    if not path:
        raise InvalidNameError("empty", "Name the folder.")
    parent: Folder | None = None
    for raw in path:
        name = validate_name(raw)
        parent = await _child(session, principal, context, client_id, parent, name)
    assert parent is not None
    return parent


async def _child(
    session: AsyncSession,
    principal: Principal,
    context: audit.AuditContext,
    client_id: uuid.UUID,
    parent: Folder | None,
    name: str,
) -> Folder:
    query = select(Folder).where(
        Folder.client_id == client_id,
        Folder.parent_ref == (str(parent.id) if parent else ROOT_REF),
        Folder.name_key == name_key(name),
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is not None:
        return found
    try:
        return await folder_service.create_folder(
            session,
            principal,
            context,
            client_id=client_id,
            parent_id=parent.id if parent else None,
            name=name,
        )
    except ConflictError:
        # Another publisher created it meanwhile: use theirs. (A document of that name in
        # the parent is a real conflict, and stays one.)
        found = (await session.execute(query)).scalar_one_or_none()
        if found is None:
            raise
        return found
