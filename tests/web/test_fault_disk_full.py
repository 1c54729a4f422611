"""The local object store's filesystem full (a small tmpfs the test mounts over the objects
directory): an upload answers 507, as problem+json on the API and as a readable page in the
browser; nothing half-stored becomes visible, nothing stored is damaged, and downloads go on."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.live import LiveApp, LiveAppFactory, Pattern
from tests.fixtures.multipart import MULTIPART, Part, multipart, streamed
from tests.fixtures.needs import missing
from tests.fixtures.pages import csrf_of

MiB = 1024 * 1024
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose `objects/` is a 3 MiB tmpfs (unmounted at the end)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("mounting a tmpfs needs root")
    data_dir = tmp_path / "data"
    objects = data_dir / "objects"
    objects.mkdir(mode=0o700, parents=True)
    data_dir.chmod(0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(objects)], check=True
    )
    try:
        yield data_dir
    finally:
        # Lazily: the app may still hold files open if the test failed before stopping it.
        subprocess.run(["umount", "-l", str(objects)], check=False)


async def browser_upload(app: LiveApp, email: str, folder_id: str, data: bytes) -> httpx.Response:
    async with app.http() as browser:
        signed_in = await browser.post("/login", data={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        csrf = csrf_of((await browser.get("/account")).text)
        parts: list[Part] = [("csrf_token", None, csrf.encode()), ("file", "huge.bin", data)]
        return await browser.post(
            f"/folders/{folder_id}/upload",
            content=streamed(multipart(parts)),
            headers={"Content-Type": MULTIPART, "Accept-Language": "he"},
        )


async def test_a_full_disk_refuses_uploads_clearly_and_keeps_serving_downloads(
    live_app: LiveAppFactory, full_disk: Path
) -> None:
    app = await live_app(config={"data_dir": str(full_disk)})
    tenant = await app.provision("Acme")
    email = "reader@example.test"
    await app.cli(
        *("user", "add", email, "--role", "client", "--client", "Acme", "--password-stdin"),
        stdin=f"{PASSWORD}\n".encode(),
    )
    small = Pattern("small").read(0, 300_000)
    huge = Pattern("huge").read(0, 8 * MiB)
    async with app.http() as http:
        folder = f"/api/v1/folders/{tenant.folder_id}/files"
        kept = await http.put(f"{folder}/kept.bin", content=small, headers=tenant.user.auth)
        assert kept.status_code == 201, kept.text
        document_id = kept.json()["document_id"]

        refused = await http.put(f"{folder}/huge.bin", content=huge, headers=tenant.user.auth)
        assert refused.status_code == 507, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["title"] == "Insufficient storage"

        page = await browser_upload(app, email, tenant.folder_id, huge)
        assert page.status_code == 507
        assert page.headers["content-type"].startswith("text/html")
        assert "אין מקום לקבצים חדשים" in page.text  # "No room for new files", in Hebrew

        # Still full (the small file stays), and the portal keeps serving what it holds.
        for _ in range(3):
            again = await http.get(
                f"/api/v1/documents/{document_id}/content", headers=tenant.user.auth
            )
            assert again.status_code == 200
            assert hashlib.sha256(again.content).digest() == hashlib.sha256(small).digest()
        listing = await http.get(f"/api/v1/folders/{tenant.folder_id}", headers=tenant.user.auth)
        assert [d["name"] for d in listing.json()["documents"]] == ["kept.bin"]
    assert app.alive()
    # Nothing damaged, no leftover object, no unfinished upload holding the space.
    await app.cli("fsck", "--deep", "--grace-minutes", "0")
    assert app.pending_uploads() == []
    app.stop()
