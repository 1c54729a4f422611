"""The firm's shared resources: a client marked `shared` that every client user and staff
member may read, only staff and admins may write, and auditors still may not download."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.cli import cli, failed, ok, write_config
from tests.fixtures.signin import sign_in
from tests.fixtures.statements import statements_sent
from vault import folders as folder_service
from vault import resources
from vault.accounts.users import principal_for
from vault.db import transaction
from vault.errors import NotFoundError, PermissionDeniedError
from vault.models import AuditEvent, Client, Role, User
from vault.policy import (
    SYSTEM,
    Permission,
    Principal,
    allows,
    can_see_client,
    require,
    visible_client_ids,
)
from web.services import Services
from web.settings import Settings

API = "/api/v1"
CLIENTS = [uuid.UUID(int=i) for i in range(1, 6)]
READS = {Permission.VIEW, Permission.DOWNLOAD}

principals = st.builds(
    Principal,
    user_id=st.uuids(),
    email=st.just("x@example.test"),
    role=st.sampled_from(list(Role)),
    client_ids=st.frozensets(st.sampled_from(CLIENTS)),
    read_only=st.booleans(),
    shared_client_ids=st.frozensets(st.sampled_from(CLIENTS)),
)


# Properties of the policy -----------------------------------------------------------------


@given(principals, st.sampled_from(CLIENTS), st.sampled_from(list(Permission)))
def test_shared_clients_are_readable_by_clients_and_staff_and_written_by_staff(
    p: Principal, client: uuid.UUID, perm: Permission
) -> None:
    if client not in p.shared_client_ids:
        return
    if p.role in (Role.CLIENT, Role.STAFF, Role.ADMIN):
        assert can_see_client(p, client)
    if p.role is Role.CLIENT:
        # Even a member of the shared client only reads it.
        assert allows(p, perm, client) == (perm in READS)
    if p.role is Role.STAFF and perm in (Permission.UPLOAD, Permission.CREATE_FOLDER):
        assert allows(p, perm, client) == (not p.read_only)
    if p.role is Role.AUDITOR:
        assert not can_see_client(p, client)
        assert not allows(p, Permission.DOWNLOAD, client)
        with pytest.raises(NotFoundError):
            require(p, Permission.VIEW, client)


@given(principals, st.sampled_from(CLIENTS), st.sampled_from(list(Permission)))
def test_sharing_only_adds_reads_to_what_a_client_user_may_do(
    p: Principal, client: uuid.UUID, perm: Permission
) -> None:
    """Marking clients shared never gives a client user a write, nor anyone else's client."""
    unshared = Principal(p.user_id, p.email, p.role, p.client_ids, p.read_only)
    if allows(p, perm, client) and not allows(unshared, perm, client):
        assert client in p.shared_client_ids
        assert perm in READS or p.role is Role.STAFF
    if p.role is Role.CLIENT and client not in p.client_ids | p.shared_client_ids:
        assert not can_see_client(p, client)


@given(principals)
def test_visible_client_ids_agree_with_can_see_client(p: Principal) -> None:
    visible = visible_client_ids(p)
    if p.role is Role.ADMIN:
        assert visible is None
        return
    assert visible is not None
    assert visible == {c for c in CLIENTS if can_see_client(p, c)}


# Through the app --------------------------------------------------------------------------


async def make_shared(
    services: Services, name: str = "Firm resources"
) -> tuple[uuid.UUID, uuid.UUID]:
    async with transaction(services.sessions) as session:
        firm = await folder_service.create_client(session, SYSTEM, TEST_CONTEXT, name)
        folder = await folder_service.create_folder(
            session, SYSTEM, TEST_CONTEXT, client_id=firm.id, parent_id=None, name="Guides"
        )
        await resources.set_shared(session, SYSTEM, TEST_CONTEXT, firm.id, shared=True)
    return firm.id, folder.id


async def test_client_users_read_the_shared_client_but_cannot_upload_there(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    firm, guides = await make_shared(services)
    sam, alice, otto = world["sam"], world["alice"], world["otto"]
    # Staff (not assigned to it) may publish a guide there.
    put = await http.put(
        f"{API}/folders/{guides}/files/Onboarding guide.pdf",
        content=b"%PDF how to use the portal",
        headers=sam.auth,
    )
    assert put.status_code == 201, put.text
    document_id = put.json()["document_id"]

    listed = await http.get(f"{API}/clients", headers=alice.auth)
    names = {c["name"] for c in listed.json()["clients"]}
    assert names == {"Acme", "Firm resources"}  # never Globex
    folder = await http.get(f"{API}/folders/{guides}", headers=alice.auth)
    assert folder.status_code == 200
    assert [d["name"] for d in folder.json()["documents"]] == ["Onboarding guide.pdf"]
    content = await http.get(f"{API}/documents/{document_id}/content", headers=alice.auth)
    assert content.status_code == 200 and content.content == b"%PDF how to use the portal"

    upload = await http.put(
        f"{API}/folders/{guides}/files/mine.pdf", content=b"x", headers=alice.auth
    )
    assert upload.status_code == 403
    trash = await http.delete(f"{API}/documents/{document_id}", headers=alice.auth)
    assert trash.status_code == 403
    new_folder = await http.post(
        f"{API}/folders", json={"client_id": str(firm), "name": "Mine"}, headers=alice.auth
    )
    assert new_folder.status_code == 403

    # Still nothing of Globex's.
    assert (
        await http.get(f"{API}/folders/{world.globex_folder}", headers=alice.auth)
    ).status_code == 404

    # Auditors download nothing, shared or not.
    assert (
        await http.get(f"{API}/documents/{document_id}/content", headers=otto.auth)
    ).status_code == 404
    assert (await http.get(f"{API}/folders/{guides}", headers=otto.auth)).status_code == 404


async def test_unsharing_hides_the_client_again(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    firm, guides = await make_shared(services)
    alice = world["alice"]
    assert (await http.get(f"{API}/folders/{guides}", headers=alice.auth)).status_code == 200
    async with transaction(services.sessions) as session:
        await resources.set_shared(session, SYSTEM, TEST_CONTEXT, firm, shared=False)
        client = Principal(user_id=alice.id, email=alice.email, role=Role.CLIENT)
        with pytest.raises(PermissionDeniedError):
            await resources.set_shared(session, client, TEST_CONTEXT, firm, shared=True)
    assert (await http.get(f"{API}/folders/{guides}", headers=alice.auth)).status_code == 404


async def test_cli_marks_a_client_shared_and_back(
    tmp_path: Path, settings: Settings, services: Services
) -> None:
    config = write_config(tmp_path / "clientvault.toml", settings.data_dir, settings.database.url)
    created = await anyio.to_thread.run_sync(
        lambda: ok(cli(config, "client", "add", "Guides and forms", "--shared"))
    )
    await anyio.to_thread.run_sync(lambda: ok(cli(config, "client", "add", "Plain")))
    async with transaction(services.sessions) as session:
        shared = await session.get(Client, uuid.UUID(created))
        plain = await folder_service.find_client_by_name(session, "Plain")
        assert shared is not None and shared.shared
        assert plain is not None and not plain.shared
    await anyio.to_thread.run_sync(lambda: ok(cli(config, "client", "share", "Plain")))
    await anyio.to_thread.run_sync(lambda: ok(cli(config, "client", "unshare", "Guides and forms")))
    missing = await anyio.to_thread.run_sync(lambda: cli(config, "client", "share", "Nobody"))
    assert "no client named" in failed(missing)
    async with transaction(services.sessions) as session:
        rows = await session.execute(select(Client.name).where(col(Client.shared).is_(True)))
        assert rows.scalars().all() == ["Plain"]
        actions = (
            (
                await session.execute(
                    select(AuditEvent.action)
                    .where(col(AuditEvent.action).in_(["client.shared", "client.unshared"]))
                    .order_by(col(AuditEvent.seq))
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["client.shared", "client.shared", "client.unshared"]


async def test_the_shared_folder_page_reads_without_an_upload_form_for_clients(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    firm, guides = await make_shared(services)
    put = await http.put(
        f"{API}/folders/{guides}/files/FAQ.pdf", content=b"%PDF faq", headers=world["sam"].auth
    )
    assert put.status_code == 201
    # A client of Globex, not of the firm's resources.
    await sign_in(http, world["bob"], second_factor=True)
    home = await http.get("/")
    assert "Firm resources" in home.text
    assert (await http.get(f"/clients/{firm}")).status_code == 200
    page = await http.get(f"/folders/{guides}")
    assert page.status_code == 200 and "FAQ.pdf" in page.text
    assert f'action="/folders/{guides}/upload"' not in page.text
    assert (await http.get(f"/folders/{world.acme_folder}")).status_code == 404


async def test_a_principal_is_built_in_one_statement_with_each_role_s_clients(
    world: World, services: Services
) -> None:
    """Every authenticated request builds one, so it costs one round trip to the database."""
    firm, _ = await make_shared(services)
    async with transaction(services.sessions) as session:
        globex = await session.get(Client, world.globex)
        assert globex is not None
        globex.archived_at = datetime.now(UTC)
    built: dict[str, Principal] = {}
    with statements_sent() as statements:
        async with services.sessions() as session:
            for name in ("alice", "gina", "otto"):
                user = await session.get(User, world[name].id)
                assert user is not None
                statements.clear()
                built[name] = await principal_for(session, user)
                assert len(statements) == 1, statements
    archived = frozenset({world.globex})
    assert built["alice"].client_ids == {world.acme}
    assert built["gina"].client_ids == {world.globex}
    assert built["otto"].client_ids == frozenset()
    # Shared clients are open to client users and staff, not to auditors.
    assert built["alice"].shared_client_ids == built["gina"].shared_client_ids == {firm}
    assert built["otto"].shared_client_ids == frozenset()
    assert all(p.archived_client_ids == archived for p in built.values())
