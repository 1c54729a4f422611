"""`clientvault backup` of a live portal on PostgreSQL and S3, restored into a fresh database
and a fresh bucket: every document opens with its SHA-256, the audit log verifies, and the
checkpoints are the ones signed before the backup."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.fixtures.live import (
    CLIENTVAULT,
    LiveApp,
    LiveAppFactory,
    LiveTenant,
    Pattern,
    _run_cli,
    to_toml,
)
from tests.fixtures.postgres import PostgresServer, _pg_bin
from tests.fixtures.s3 import S3Endpoint, empty_bucket, s3_endpoint
from vault.crypto.keyring import KeyFile
from web.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MiB = 1024 * 1024
PG_BIN = str(Path(_pg_bin("pg_dump")).parent)


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    return s3_endpoint(request)


@pytest.fixture
def buckets(endpoint: S3Endpoint) -> Iterator[tuple[S3Client, str, str]]:
    """The live bucket and the empty one the backup is restored into."""
    client = endpoint.client()
    names = (f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}")
    for name in names:
        client.create_bucket(Bucket=name)
    try:
        yield client, *names
    finally:
        for name in names:
            empty_bucket(client, name)
            client.delete_bucket(Bucket=name)
        client.close()


def storage(endpoint: S3Endpoint, bucket: str) -> dict[str, Any]:
    return {
        "backend": "s3",
        "endpoint_url": endpoint.url,
        "bucket": bucket,
        "access_key_id": endpoint.access_key_id,
        "secret_access_key": endpoint.secret_access_key,
        "part_size_mib": 5,
    }


def objects(client: S3Client, bucket: str, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = body
    return found


async def put(app: LiveApp, tenant: LiveTenant, name: str, data: bytes) -> str:
    async with app.http(timeout=60) as http:
        url = f"/api/v1/folders/{tenant.folder_id}/files/{name}"
        response = await http.put(url, content=data, headers=tenant.user.auth)
    assert response.status_code in (200, 201), response.text
    document_id: str = response.json()["document_id"]
    return document_id


async def content(http: httpx.AsyncClient, tenant: LiveTenant, document_id: str, v: int) -> bytes:
    response = await http.get(
        f"/api/v1/documents/{document_id}/content", params={"version": v}, headers=tenant.user.auth
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_a_backup_restores_into_a_fresh_database_and_bucket(
    live_app: LiveAppFactory,
    postgres_server: PostgresServer,
    endpoint: S3Endpoint,
    buckets: tuple[S3Client, str, str],
    tmp_path: Path,
) -> None:
    client, live_bucket, fresh_bucket = buckets
    app = await live_app(
        database="postgresql",
        config={
            "storage": storage(endpoint, live_bucket),
            "audit": {"checkpoint_interval_seconds": 0.2},
        },
    )
    tenant = await app.provision("Acme")
    # Two versions of one document, one object of several parts, and a name in Persian.
    files = {
        "report.pdf": [Pattern("r1").read(0, 200_000), Pattern("r2").read(0, 70_000)],
        "scan.tiff": [Pattern("big").read(0, 6 * MiB)],
        "گزارش.txt": [b"salam\n" * 1000],
    }
    expected: dict[tuple[str, int], str] = {}
    for name, versions in files.items():
        for number, data in enumerate(versions, 1):
            document_id = await put(app, tenant, name, data)
            expected[document_id, number] = hashlib.sha256(data).hexdigest()
    async with app.http() as http:
        for document_id, number in expected:
            await content(http, tenant, document_id, number)  # downloads are audited too

    # The backup runs while uploads go on: it must still be one consistent moment.
    backup_dir = tmp_path / "backup"
    done = asyncio.Event()
    during: dict[str, bytes] = {}

    async def take_backup() -> str:
        try:
            return await app.cli("backup", str(backup_dir), "--pg-bin", PG_BIN)
        finally:
            done.set()

    async def keep_uploading() -> None:
        while not done.is_set():
            name = f"during-{len(during)}.txt"
            during[name] = name.encode() * 3000
            await put(app, tenant, name, during[name])

    out, _ = await asyncio.gather(take_backup(), keep_uploading())
    assert out.startswith(f"ok: {backup_dir}: "), out
    assert len(during) >= 2
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"] == "postgresql" and manifest["objects"] >= 4
    assert os.stat(backup_dir).st_mode & 0o777 == 0o700
    assert os.stat(backup_dir / "database.dump").st_mode & 0o777 == 0o600
    assert not list(backup_dir.glob("*key*")), "the key file must never be in a backup"
    # Changes after the backup are not in it; checkpoints signed after it are left out.
    late = await put(app, tenant, "after-backup.txt", b"too late")
    await app.cli("audit", "verify")
    signed_before = {
        key: note
        for key, note in objects(client, live_bucket, "checkpoints/").items()
        if int(key.removeprefix("checkpoints/")) <= manifest["audit_events"]
    }
    assert signed_before, "the app signed no checkpoint before the backup"

    # A new machine: an empty database, an empty bucket, and only the key file carried over.
    fresh_db = f"restored_{uuid.uuid4().hex[:12]}"
    postgres_server.execute(f"CREATE DATABASE {fresh_db}")
    data_dir = tmp_path / "restored-data"
    data_dir.mkdir(mode=0o700)
    keys = data_dir / "keys.json"
    keys.write_bytes(app.settings.keys_path.read_bytes())
    keys.chmod(0o600)
    config = {
        "data_dir": str(data_dir),
        "database": {"url": postgres_server.url(fresh_db)},
        "storage": storage(endpoint, fresh_bucket),
    }
    config_path = tmp_path / "restored.toml"
    config_path.write_text(to_toml(config), encoding="utf-8")
    env = {**app.env, "CLIENTVAULT_CONFIG": str(config_path)}
    out = await _run_cli(config_path, env, ["restore", str(backup_dir), "--pg-bin", PG_BIN])
    assert out.startswith(f"ok: restored {manifest['audit_events']} audit events"), out
    assert load_settings(config_path).database.url.endswith(fresh_db)

    restored = await live_app(config=config)
    assert "ok: " in await restored.cli("audit", "verify")
    await restored.cli("fsck", "--deep")  # fails the test on any problem
    async with restored.http() as http:
        for (document_id, number), sha256 in expected.items():
            body = await content(http, tenant, document_id, number)
            assert hashlib.sha256(body).hexdigest() == sha256
        gone = await http.get(f"/api/v1/documents/{late}", headers=tenant.user.auth)
        assert gone.status_code == 404
        # Whatever of the uploads during the backup made it in is whole.
        listing = await http.get(f"/api/v1/folders/{tenant.folder_id}", headers=tenant.user.auth)
        for document in listing.json()["documents"]:
            if document["name"].startswith("during-"):
                body = await content(http, tenant, document["id"], 1)
                assert body == during[document["name"]]
    restored_checkpoints = objects(client, fresh_bucket, "checkpoints/")
    assert {k: v for k, v in restored_checkpoints.items() if k in signed_before} == signed_before
    assert set(restored_checkpoints) == set(signed_before)
    postgres_server.execute(f"DROP DATABASE IF EXISTS {fresh_db} WITH (FORCE)")


async def test_the_embedded_defaults_back_up_and_restore_and_a_bad_restore_is_refused(
    live_app: LiveAppFactory, tmp_path: Path
) -> None:
    """SQLite and the local store; a restore refuses a database that is not empty, a key
    file without the backup's keys, and an object whose bytes differ from the manifest."""
    app = await live_app()
    tenant = await app.provision("Acme")
    data = {"a.txt": b"alpha\n" * 5000, "b.bin": Pattern("b").read(0, 400_000)}
    ids = {name: await put(app, tenant, name, body) for name, body in data.items()}
    backup_dir = tmp_path / "backup"
    await app.cli("backup", str(backup_dir))
    assert (backup_dir / "database.sqlite").is_file()
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["database"] == "sqlite" and manifest["objects"] == 2

    async def restore(config: dict[str, Any], name: str) -> tuple[int, str]:
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(config), encoding="utf-8")
        env = {**app.env, "CLIENTVAULT_CONFIG": str(path)}
        process = await asyncio.create_subprocess_exec(
            *(CLIENTVAULT, "--config", str(path), "restore", str(backup_dir)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()

    def fresh_dir(name: str, keys: bytes | None) -> Path:
        data_dir = tmp_path / name
        data_dir.mkdir(mode=0o700)
        if keys is not None:
            (data_dir / "keys.json").write_bytes(keys)
            (data_dir / "keys.json").chmod(0o600)
        return data_dir

    keys = app.settings.keys_path.read_bytes()
    # Into the live portal's own (non-empty) database: refused, nothing touched.
    code, out = await restore({"data_dir": str(app.data_dir)}, "onto-live")
    assert code == 1 and "not empty" in out, out
    # With another installation's key file: refused before anything is written.
    other = fresh_dir("other-keys", None)
    KeyFile.create(other / "keys.json")
    code, out = await restore({"data_dir": str(other)}, "other-keys")
    assert code == 1 and "key file" in out, out
    assert not any(p.is_file() for p in (other / "objects").rglob("*"))
    # A backup file damaged after the fact never lands in the store.
    damaged = fresh_dir("damaged", keys)
    victim = next(p for p in (backup_dir / "store" / "objects").rglob("*") if p.is_file())
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    code, out = await restore({"data_dir": str(damaged)}, "damaged")
    assert code == 1 and "SHA-256" in out, out
    victim.write_bytes(original)

    # Run again into the same place: the restore picks up and finishes.
    config = {"data_dir": str(damaged)}
    code, out = await restore(config, "damaged-again")
    assert code == 0, out
    restored = await live_app(config=config)
    assert "ok: " in await restored.cli("audit", "verify")
    await restored.cli("fsck", "--deep")
    async with restored.http() as http:
        for name, body in data.items():
            assert await content(http, tenant, ids[name], 1) == body


async def test_a_backup_without_objects_restores_onto_a_replicated_store(
    live_app: LiveAppFactory, tmp_path: Path
) -> None:
    """`--no-objects` lists the objects without copying them; the restore then needs the
    store restored by its own means first, and says so when it is not."""
    app = await live_app()
    tenant = await app.provision("Acme")
    data = Pattern("replicated").read(0, 150_000)
    document_id = await put(app, tenant, "replicated.bin", data)
    backup_dir = tmp_path / "backup"
    out = await app.cli("backup", str(backup_dir), "--no-objects")
    assert out.endswith("listed, not copied"), out
    assert not (backup_dir / "store").exists()
    assert json.loads((backup_dir / "manifest.json").read_text())["objects_included"] is False

    data_dir = tmp_path / "restored"
    data_dir.mkdir(mode=0o700)
    (data_dir / "keys.json").write_bytes(app.settings.keys_path.read_bytes())
    (data_dir / "keys.json").chmod(0o600)
    config_path = tmp_path / "restored.toml"
    config_path.write_text(to_toml({"data_dir": str(data_dir)}), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *(CLIENTVAULT, "--config", str(config_path), "restore", str(backup_dir)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**app.env, "CLIENTVAULT_CONFIG": str(config_path)},
    )
    out = (await process.communicate())[0].decode()
    assert process.returncode == 1 and "restore the bucket first" in out, out

    # The store's own copy (here: the objects directory) comes back; then the restore works.
    shutil.copytree(app.objects_dir, data_dir / "objects", dirs_exist_ok=True)
    env = {**app.env, "CLIENTVAULT_CONFIG": str(config_path)}
    await _run_cli(config_path, env, ["restore", str(backup_dir)])
    restored = await live_app(config={"data_dir": str(data_dir)})
    assert "ok: " in await restored.cli("audit", "verify")
    async with restored.http() as http:
        assert await content(http, tenant, document_id, 1) == data
