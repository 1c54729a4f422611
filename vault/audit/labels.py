"""Human labels of audit events: who acted (email, display name) and what was acted on.

Format 2 events hash the labels as they were when the event was written (`record()` looks
them up in its own transaction). Format 1 events, written before labels existed, are shown
with labels joined from the current tables and say so (`labels_from: "current"`): such a
label can have changed since, and no hash covers it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from vault.models import AccessToken, Announcement, AuditEvent, Client, Document, Folder, User

FROM_EVENT = "event"
FROM_CURRENT = "current"
FOLDER_SEPARATOR = " / "
_MAX_DEPTH = 64  # folders nest far less; a cycle in damaged data must not loop forever
_LABEL_LIMITS = {"actor_email": 320, "actor_name": 200, "target_label": 1024}


# target type: (model, LabelResolver cache, the attribute that names it)
def _named() -> dict[str, tuple[Any, str]]:
    """Each kind of target named by one column: its model and that column's attribute."""
    # Imported here: vault.document_requests records events, so imports this module's importer.
    from vault.request_tables import DocumentRequest, RequestItem, RequestTemplate

    return {
        "client": (Client, "name"),
        "document": (Document, "name"),
        "token": (AccessToken, "name"),
        "announcement": (Announcement, "title"),
        "request": (DocumentRequest, "title"),
        "request_item": (RequestItem, "name"),
        "request_template": (RequestTemplate, "name"),
    }


@dataclass(frozen=True, slots=True)
class Labels:
    actor_email: str | None = None
    actor_name: str | None = None
    target_label: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "actor_email": self.actor_email,
            "actor_name": self.actor_name,
            "target_label": self.target_label,
        }


def _uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _person(user: User) -> str:
    return f"{user.display_name} <{user.email}>" if user.display_name else user.email


def _clip(name: str, value: str | None) -> str | None:
    return None if value is None else value[: _LABEL_LIMITS[name]]


class LabelResolver:
    """Looks up actors and targets for many events with one query per kind of row."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._users: dict[uuid.UUID, User] = {}
        self._folders: dict[uuid.UUID, Folder] = {}
        self._kinds = _named()
        self._names: dict[str, dict[uuid.UUID, str]] = {kind: {} for kind in self._kinds}

    async def load(self, refs: Iterable[tuple[str | None, str | None, str | None]]) -> None:
        """Fetch what `(actor_id, target_type, target_id or document_id)` triples name."""
        wanted: dict[str, set[uuid.UUID]] = {}
        for actor_id, target_type, target_id in refs:
            if (actor := _uuid(actor_id)) is not None:
                wanted.setdefault("user", set()).add(actor)
            if target_type and (target := _uuid(target_id)) is not None:
                wanted.setdefault(target_type, set()).add(target)
        session = self._session
        if ids := wanted.get("user", set()) - self._users.keys():
            rows = await session.execute(select(User).where(col(User.id).in_(ids)))
            self._users.update({u.id: u for u in rows.scalars()})
        for kind, (model, attribute) in self._kinds.items():
            missing = wanted.get(kind, set()) - self._names[kind].keys()
            if missing:
                column = getattr(model, attribute)
                rows = await session.execute(
                    select(model.id, column).where(col(model.id).in_(missing))
                )
                self._names[kind].update({row[0]: row[1] for row in rows.all()})
        pending = set(wanted.get("folder", set()))
        for _ in range(_MAX_DEPTH):
            pending -= self._folders.keys()
            if not pending:
                break
            level = await session.execute(select(Folder).where(col(Folder.id).in_(pending)))
            found = list(level.scalars())
            self._folders.update({f.id: f for f in found})
            pending = {f.parent_id for f in found if f.parent_id is not None}

    async def load_one(
        self, actor_id: str | None, target_type: str | None, target_id: str | None
    ) -> None:
        """`load` for one event through the session's identity map: a request that has just
        read the user, the document or the folder (as most have) costs no query here."""
        session = self._session
        if (actor := _uuid(actor_id)) is not None and (user := await session.get(User, actor)):
            self._users[user.id] = user
        target = _uuid(target_id)
        if target is None:
            return
        if target_type == "user" and (person := await session.get(User, target)):
            self._users[person.id] = person
        elif target_type == "folder":
            current: uuid.UUID | None = target
            for _ in range(_MAX_DEPTH):
                folder = await session.get(Folder, current) if current else None
                if folder is None:
                    break
                self._folders[folder.id] = folder
                current = folder.parent_id
        elif target_type in self._kinds:
            model, attribute = self._kinds[target_type]
            if (row := await session.get(model, target)) is not None:
                self._names[target_type][target] = getattr(row, attribute)

    def folder_path(self, folder_id: uuid.UUID) -> str | None:
        names: list[str] = []
        current: uuid.UUID | None = folder_id
        for _ in range(_MAX_DEPTH):
            if current is None:
                break
            folder = self._folders.get(current)
            if folder is None:
                return None if not names else FOLDER_SEPARATOR.join(reversed(names))
            names.append(folder.name)
            current = folder.parent_id
        return FOLDER_SEPARATOR.join(reversed(names))

    def labels(
        self, actor_id: str | None, target_type: str | None, target_id: str | None
    ) -> Labels:
        actor = self._users.get(_uuid(actor_id) or uuid.UUID(int=0))
        target = _uuid(target_id)
        label: str | None = None
        if target is not None:
            if target_type == "user":
                person = self._users.get(target)
                label = _person(person) if person else None
            elif target_type == "folder":
                label = self.folder_path(target)
            else:
                label = self._names.get(target_type or "", {}).get(target)
        return Labels(
            actor_email=_clip("actor_email", actor.email if actor else None),
            actor_name=_clip("actor_name", (actor.display_name or None) if actor else None),
            target_label=_clip("target_label", label),
        )


_OWN_LABEL = frozenset(
    {
        "document",
        "folder",
        "client",
        "user",
        "token",
        "announcement",
        "request",
        "request_item",
        "request_template",
    }
)


def _facts(event: AuditEvent) -> dict[str, Any]:
    try:
        facts = json.loads(event.details)
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


def target_ref(
    target_type: str | None,
    target_id: str | None,
    document_id: str | None,
    details: Mapping[str, Any] | None = None,
) -> tuple[str | None, str | None]:
    """The row a label names: the target, the person an email went to, or the document an
    event about one concerns."""
    if target_type in _OWN_LABEL:
        return target_type, target_id
    recipient = (details or {}).get("recipient_id")
    if target_type == "notification" and isinstance(recipient, str):
        return "user", recipient
    if document_id:
        return "document", document_id
    return target_type, target_id


async def at_record(
    session: AsyncSession,
    *,
    actor_id: str | None,
    target_type: str | None,
    target_id: str | None,
    document_id: str | None,
    details: Mapping[str, Any] | None = None,
) -> Labels:
    """The labels a new event hashes, as the tables hold them in the writer's transaction."""
    kind, ref = target_ref(target_type, target_id, document_id, details)
    resolver = LabelResolver(session)
    await resolver.load_one(actor_id, kind, ref)
    return resolver.labels(actor_id, kind, ref)


async def current(session: AsyncSession, events: Iterable[AuditEvent]) -> dict[int, Labels]:
    """For format 1 events (no labels of their own): labels from the current tables."""
    old = [e for e in events if e.v < 2]
    if not old:
        return {}
    refs = {
        e.seq: (e.actor_id, *target_ref(e.target_type, e.target_id, e.document_id, _facts(e)))
        for e in old
    }
    resolver = LabelResolver(session)
    await resolver.load(refs.values())
    return {seq: resolver.labels(*ref) for seq, ref in refs.items()}


def shown(event: AuditEvent, joined: dict[int, Labels]) -> dict[str, str | None]:
    """The label fields of an event as the API and exports show them, with their source."""
    if event.v >= 2:
        return {
            "actor_email": event.actor_email,
            "actor_name": event.actor_name,
            "target_label": event.target_label,
            "labels_from": FROM_EVENT,
        }
    return {**joined.get(event.seq, Labels()).as_dict(), "labels_from": FROM_CURRENT}
