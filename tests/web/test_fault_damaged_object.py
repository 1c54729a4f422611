"""Objects damaged behind the portal's back on a live server: one with a flipped byte, one
deleted, and a stray one. Downloads fail closed (an error, or a stream cut short, never a
wrong byte), and `clientvault fsck` names each object and exits 1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import httpx

from tests.fixtures.live import CLI_TIMEOUT, CLIENTVAULT, LiveApp, LiveAppFactory, Pattern


async def fsck(app: LiveApp, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *(CLIENTVAULT, "--config", str(app.config_path), "fsck", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=app.env,
    )
    out, _ = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def fetch(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Status and whatever body arrived before the stream ended or broke."""
    received = bytearray()
    try:
        async with http.stream("GET", url, headers=headers) as response:
            async for chunk in response.aiter_raw():
                received += chunk
            return response.status_code, bytes(received)
    except httpx.TransportError:
        return -1, bytes(received)  # cut short: the client sees an incomplete response


async def test_damaged_objects_fail_closed_and_fsck_names_them(live_app: LiveAppFactory) -> None:
    app = await live_app()
    tenant = await app.provision("Acme")
    flipped_data = Pattern("flipped").read(0, 600_000)  # ten 64 KiB segments
    deleted_data = Pattern("deleted").read(0, 20_000)
    ids = {}
    async with app.http() as http:
        for name, data in (("flipped.bin", flipped_data), ("deleted.bin", deleted_data)):
            response = await http.put(
                f"/api/v1/folders/{tenant.folder_id}/files/{name}",
                content=data,
                headers=tenant.user.auth,
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["document_id"]
    deleted_file, flipped_file = sorted(app.stored_objects(), key=lambda p: p.stat().st_size)
    # A byte in the middle of the sixth segment, so the first ones still decrypt and stream.
    with flipped_file.open("r+b") as f:
        f.seek(5 * 65_600)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    deleted_file.unlink()
    stray = flipped_file.parent / str(uuid.uuid4())
    stray.write_bytes(b"not ours")

    async with app.http() as http:
        # The damaged segment is the sixth: an error, or a transfer cut short after bytes
        # that are all right (how much streams first depends on the store's read size).
        url = f"/api/v1/documents/{ids['flipped.bin']}/content"
        status, body = await fetch(http, url, tenant.user.auth)
        assert status == 500 or (status == -1 and len(body) < len(flipped_data)), status
        assert body[:1] == b"{" or body == flipped_data[: len(body)], "wrong bytes were served"
        # A range that starts in the damaged segment fails before any byte is sent.
        ranged = {**tenant.user.auth, "Range": "bytes=330000-340000"}
        failed = await http.get(url, headers=ranged)
        assert failed.status_code == 500, failed.text
        assert failed.json()["title"] == "Stored data failed its integrity check"
        # A missing object is a clear error too, not a 200 cut short.
        url = f"/api/v1/documents/{ids['deleted.bin']}/content"
        missing = await http.get(url, headers=tenant.user.auth)
        assert missing.status_code == 500
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["title"] == "Stored object missing"
        # The portal goes on serving everything else.
        listing = await http.get(f"/api/v1/folders/{tenant.folder_id}", headers=tenant.user.auth)
        assert listing.status_code == 200
    assert app.alive()

    flipped_key = flipped_file.relative_to(app.objects_dir).as_posix()
    deleted_key = deleted_file.relative_to(app.objects_dir).as_posix()
    stray_key = stray.relative_to(app.objects_dir).as_posix()
    code, out = await fsck(app, "--grace-minutes", "0")
    assert code == 1, out
    assert f"missing\t{deleted_key}" in out and f"orphan\t{stray_key}" in out
    assert flipped_key not in out  # size and header are intact: only a deep check reads it
    code, out = await fsck(app, "--deep", "--grace-minutes", "0")
    assert code == 1, out
    assert f"content\t{flipped_key}" in out, out
    assert f"missing\t{deleted_key}" in out and f"orphan\t{stray_key}" in out
