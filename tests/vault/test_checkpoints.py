"""The stored Merkle tree, signed checkpoints in the object store, and what they catch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from tests.fixtures.app import TEST_CONTEXT
from tests.fixtures.tamper import rewrite, tamper
from vault import audit, maintenance, stats
from vault.audit import checkpoints, merkle, notes
from vault.audit import tree as audit_tree
from vault.audit.checkpoints import Signer
from vault.crypto.keyring import new_signing_key
from vault.db import transaction
from vault.errors import CheckpointError
from vault.models import AuditEvent, AuditNode
from vault.store import ObjectStore
from web.services import Services


async def _append(svc: Services, n: int) -> None:
    async with transaction(svc.sessions) as session:
        for i in range(n):
            await audit.append(session, TEST_CONTEXT, "test.event", details={"i": i})


async def _leaves(svc: Services) -> list[bytes]:
    async with transaction(svc.sessions) as session:
        return [bytes.fromhex(e.leaf_hash) async for e in audit.iter_events(session)]


async def test_stored_tree_gives_the_rfc_roots_and_proofs(services: Services) -> None:
    await _append(services, 300)
    async with transaction(services.sessions) as session:
        assert await audit_tree.extend(session) == 256  # one complete chunk stored
    await _append(services, 500)  # 800: three chunks complete, none stored yet past 256
    leaves = await _leaves(services)
    async with transaction(services.sessions) as session:
        partial = await audit_tree.TreeReader.open(session)
        assert await partial.root(800) == merkle.root_of(leaves)
        assert await audit_tree.extend(session) == 768
        nodes = (await session.execute(select(func.count()).select_from(AuditNode))).scalar()
        assert nodes == 3 + 1  # level 8: three chunks; level 9: the first pair
        reader = await audit_tree.TreeReader.open(session)
        for size in (1, 2, 255, 256, 257, 512, 513, 768, 800):
            root = merkle.root_of(leaves[:size])
            assert await reader.root(size) == root, size
            for index in {0, size // 2, size - 1}:
                path = await reader.inclusion(index, size)
                merkle.verify_inclusion(leaves[index], index, size, path, root)
        for first, second in ((1, 800), (256, 800), (300, 768), (511, 513), (800, 800)):
            proof = await reader.consistency(first, second)
            merkle.verify_consistency(
                first,
                second,
                proof,
                first_root=merkle.root_of(leaves[:first]),
                second_root=merkle.root_of(leaves[:second]),
            )


async def test_checkpoints_go_to_the_object_store_and_verify(
    services: Services, object_store: ObjectStore
) -> None:
    signer = Signer.from_keyring(services.keyring)
    assert await checkpoints.write(services.sessions, object_store, signer) is None  # empty log
    await _append(services, 5)
    note = await checkpoints.write(services.sessions, object_store, signer)
    assert note is not None
    text = notes.open_note(note, signer.verifier)
    checkpoint = notes.parse_checkpoint(text, signer.name)
    assert checkpoint.size == 5 and checkpoint.root == merkle.root_of(await _leaves(services))
    assert [o.key async for o in object_store.list("checkpoints/")] == [
        "checkpoints/00000000000000000005"
    ]
    # Not grown: the same checkpoint, nothing new stored.
    assert await checkpoints.write(services.sessions, object_store, signer) == note
    assert await checkpoints.latest(services.sessions, object_store, signer.verifier) == note
    await _append(services, 3)
    newer = await checkpoints.write(services.sessions, object_store, signer)
    assert newer is not None and newer != note
    assert len([o async for o in object_store.list("checkpoints/")]) == 2
    report = await checkpoints.verify_stored(services.sessions, object_store, signer.verifier)
    assert report.ok and report.checked == 2, report.problems


async def test_a_consistent_rewrite_of_the_whole_table_is_caught(services: Services) -> None:
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 10)
    assert await checkpoints.write(services.sessions, services.store, signer)

    def promote(event: AuditEvent) -> None:
        if event.seq == 3:
            event.actor_role = "admin"

    await rewrite(services.engine, promote)
    async with transaction(services.sessions) as session:
        assert (await audit.verify(session)).ok  # the chain alone cannot tell
    report = await checkpoints.verify_stored(services.sessions, services.store, signer.verifier)
    assert not report.ok
    assert any("checkpoint 10 does not match the log" in p for p in report.problems)
    # Nor will the log sign the rewritten history: it is not an extension of checkpoint 10.
    await _append(services, 1)
    with pytest.raises(CheckpointError, match="no longer extends checkpoint 10"):
        await checkpoints.write(services.sessions, services.store, signer)


async def test_a_truncated_log_is_caught(services: Services) -> None:
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 10)
    assert await checkpoints.write(services.sessions, services.store, signer)
    events = await _leaves(services)
    await tamper(
        services.engine,
        "DELETE FROM audit_events WHERE seq > 8",
        "UPDATE audit_head SET seq = 8, leaf_hash = :leaf WHERE id = 1",
        params={"leaf": events[7].hex()},
    )
    async with transaction(services.sessions) as session:
        assert (await audit.verify(session)).ok  # a shorter chain is still a chain
    report = await checkpoints.verify_stored(services.sessions, services.store, signer.verifier)
    assert any("log was truncated" in p for p in report.problems), report.problems


async def _object(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def _point_state_at(services: Services, size: int) -> None:
    """What the database owner can do to the tree state: name an older checkpoint, and drop
    the stored subtree hashes so they are rebuilt from whatever the events now say."""
    await tamper(
        services.engine,
        "UPDATE audit_tree_state SET checkpoint_key = :key, checkpoint_size = :size, "
        "leaves = 0 WHERE id = 1",
        params={"key": checkpoints.object_key(size), "size": size},
    )
    await tamper(services.engine, "DELETE FROM audit_tree_nodes")


async def test_a_tail_rewritten_behind_an_older_checkpoint_is_never_signed(
    services: Services, object_store: ObjectStore
) -> None:
    """The attack on a writer that trusts the database: rewrite the events after checkpoint
    S, point the tree state at S and drop the tree past it. S -> now is consistent, so such a
    writer signed the forged tail and replaced the honest checkpoint N with it."""
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 300)  # past one stored chunk, so the tree has nodes to drop
    assert await checkpoints.write(services.sessions, object_store, signer)
    await _append(services, 300)
    honest = await checkpoints.write(services.sessions, object_store, signer)
    assert honest is not None
    key = checkpoints.object_key(600)
    stored = await _object(object_store, key)

    def forge(event: AuditEvent) -> None:
        if event.seq > 300:
            event.actor_role = "admin"

    await rewrite(services.engine, forge)
    await _point_state_at(services, 300)
    with pytest.raises(
        CheckpointError, match=r"no longer extends checkpoint 600.*names checkpoints/0+300"
    ):
        await checkpoints.write(services.sessions, object_store, signer)
    await _append(services, 5)  # nor once the log has grown past N
    with pytest.raises(CheckpointError, match="no longer extends checkpoint 600"):
        await checkpoints.write(services.sessions, object_store, signer)
    assert await _object(object_store, key) == stored
    assert [o.key async for o in object_store.list("checkpoints/")] == [
        checkpoints.object_key(300),
        key,
    ]
    # Readers get the newest checkpoint in the store, not the one the database names.
    assert await checkpoints.latest(services.sessions, object_store, signer.verifier) == honest
    report = await checkpoints.verify_stored(services.sessions, object_store, signer.verifier)
    assert any("checkpoint 600 does not match the log" in p for p in report.problems)


async def test_a_state_that_lags_the_store_is_caught_up_not_refused(
    services: Services, object_store: ObjectStore
) -> None:
    """A crash between storing a checkpoint and committing leaves the database naming the
    one before; the log still extends the stored one, so the writer carries on from it."""
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 3)
    assert await checkpoints.write(services.sessions, object_store, signer)
    await _append(services, 3)
    newer = await checkpoints.write(services.sessions, object_store, signer)
    await _point_state_at(services, 3)
    assert await checkpoints.write(services.sessions, object_store, signer) == newer
    await _append(services, 1)
    assert await checkpoints.write(services.sessions, object_store, signer)
    report = await checkpoints.verify_stored(services.sessions, object_store, signer.verifier)
    assert report.ok and report.checked == 3, report.problems


async def test_a_state_naming_a_checkpoint_the_store_lacks_is_refused(
    services: Services,
) -> None:
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 4)
    assert await checkpoints.write(services.sessions, services.store, signer)
    await services.store.delete(checkpoints.object_key(4))
    with pytest.raises(CheckpointError, match="which the store does not hold"):
        await checkpoints.write(services.sessions, services.store, signer)


async def test_an_object_already_at_the_next_key_is_kept(
    services: Services, object_store: ObjectStore
) -> None:
    """Something not ours (here: signed by another key) at the key about to be written is
    never replaced; the writer refuses instead."""
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 4)
    forger = Signer(signer.name, new_signing_key().private_key())
    planted = await checkpoints.write(services.sessions, object_store, forger)
    assert planted is not None
    await tamper(
        services.engine, "UPDATE audit_tree_state SET checkpoint_key = NULL, checkpoint_size = 0"
    )
    with pytest.raises(CheckpointError, match="already exists in the store"):
        await checkpoints.write(services.sessions, object_store, signer)
    assert await _object(object_store, checkpoints.object_key(4)) == planted.encode()


async def test_checkpoints_signed_by_another_key_are_reported(services: Services) -> None:
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 4)
    forger = Signer(signer.name, new_signing_key().private_key())
    assert await checkpoints.write(services.sessions, services.store, forger)
    report = await checkpoints.verify_stored(services.sessions, services.store, signer.verifier)
    # Another key has another key id: its signature line is not one of ours.
    assert report.problems == (
        f"checkpoint checkpoints/00000000000000000004: note carries no signature by {signer.name}",
    )


async def test_garbage_collection_leaves_checkpoints_alone(services: Services) -> None:
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 2)
    assert await checkpoints.write(services.sessions, services.store, signer)
    await maintenance.collect_garbage(services.sessions, services.store, grace=timedelta(0))
    assert [o.key async for o in services.store.list("checkpoints/")] == [
        "checkpoints/00000000000000000002"
    ]


async def test_a_proof_reads_a_few_rows_not_the_log(services: Services) -> None:
    """Stored subtree hashes come in one query, the leaves' chunk in another: the number of
    queries does not grow with the log (docs/audit-log.md; docs/benchmarks.md, figures at 1 M
    leaves)."""
    await _append(services, 1100)
    async with transaction(services.sessions) as session:
        await audit_tree.extend(session)
    leaves = await _leaves(services)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sqlalchemy_event.listen(services.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with transaction(services.sessions) as session:
            reader = await audit_tree.TreeReader.open(session)
            statements.clear()
            path = await reader.inclusion(700, 1100)
            assert len(statements) <= 3, statements  # nodes, one chunk, the unstored tail
            statements.clear()
            proof = await reader.consistency(300, 1024)
            assert len(statements) <= 3, statements
    finally:
        sqlalchemy_event.remove(services.engine.sync_engine, "before_cursor_execute", count)
    merkle.verify_inclusion(leaves[700], 700, 1100, path, merkle.root_of(leaves))
    merkle.verify_consistency(
        300,
        1024,
        proof,
        first_root=merkle.root_of(leaves[:300]),
        second_root=merkle.root_of(leaves[:1024]),
    )


async def test_checkpoint_lag_counts_what_no_checkpoint_covers(services: Services) -> None:
    """The operator's gauge: events past the newest signed checkpoint, and how long the
    oldest of them has waited; both fall to zero once a checkpoint covers the log."""
    signer = Signer.from_keyring(services.keyring)
    await _append(services, 4)
    async with transaction(services.sessions) as session:
        before = await stats.operational_stats(session, cursor="notify")
    assert before.checkpoint_lag_events == 4
    assert before.checkpoint_lag_seconds >= 0
    later = await _stats_at(services, timedelta(minutes=5))
    assert later.checkpoint_lag_seconds >= 300
    assert await checkpoints.write(services.sessions, services.store, signer)
    async with transaction(services.sessions) as session:
        after = await stats.operational_stats(session, cursor="notify")
    assert (after.checkpoint_lag_events, after.checkpoint_lag_seconds) == (0, 0.0)


async def _stats_at(services: Services, ahead: timedelta) -> stats.OperationalStats:
    async with transaction(services.sessions) as session:
        return await stats.operational_stats(
            session, cursor="notify", now=datetime.now(UTC) + ahead
        )
