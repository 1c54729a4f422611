"""The users `bench/load.py` runs through Locust: people browsing, listing and downloading,
and people uploading by tus. Not run on its own: `load.py` writes the plan (the balancer's
URL, its CA, tokens, folders and documents) to the file named by CLIENTVAULT_LOAD_PLAN.

Every failed request is also appended, with when it started and ended, to the plan's
`failures` file, so `load.py` can tell requests in flight on a killed node from later ones.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

PLAN: dict[str, Any] = json.loads(Path(os.environ["CLIENTVAULT_LOAD_PLAN"]).read_text())
TUS = {"Tus-Resumable": "1.0.0"}
_failures_lock = threading.Lock()


@events.request.add_listener
def _record_failure(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None,
    **_: Any,
) -> None:
    if exception is None:
        return
    ended = time.time()
    line = json.dumps(
        {
            "name": f"{request_type} {name}",
            "started": ended - response_time / 1000,
            "ended": ended,
            "error": repr(exception)[:300],
        }
    )
    with _failures_lock, open(PLAN["failures"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


class _PortalUser(HttpUser):
    abstract = True
    host = PLAN["url"]

    def on_start(self) -> None:
        self.tenant: dict[str, Any] = random.choice(PLAN["tenants"])
        self.client.verify = PLAN["ca"]
        self.client.headers["Authorization"] = f"Bearer {self.tenant['token']}"


class BrowsingUser(_PortalUser):
    """Lists clients and folders, reads a document's versions, downloads it whole or a range."""

    fixed_count = int(PLAN["browsers"])
    wait_time = between(*PLAN["think_seconds"])

    @task(3)
    def list_clients(self) -> None:
        self.client.get("/api/v1/clients", name="/api/v1/clients")

    @task(6)
    def list_folder(self) -> None:
        self.client.get(f"/api/v1/folders/{self.tenant['folder_id']}", name="/api/v1/folders/{id}")

    @task(3)
    def document(self) -> None:
        document = random.choice(self.tenant["documents"])
        self.client.get(f"/api/v1/documents/{document}", name="/api/v1/documents/{id}")

    @task(3)
    def download(self) -> None:
        document = random.choice(self.tenant["documents"])
        self.client.get(
            f"/api/v1/documents/{document}/content", name="/api/v1/documents/{id}/content"
        )

    @task(1)
    def download_range(self) -> None:
        document = random.choice(self.tenant["documents"])
        self.client.get(
            f"/api/v1/documents/{document}/content",
            headers={"Range": "bytes=100000-164999"},
            name="/api/v1/documents/{id}/content (Range)",
        )


class UploadingUser(_PortalUser):
    """Uploads a file by tus: creation, then PATCHes of `chunk` bytes."""

    fixed_count = int(PLAN["uploaders"])
    wait_time = between(*PLAN["think_seconds"])

    @task
    def upload(self) -> None:
        size, chunk = int(PLAN["upload_bytes"]), int(PLAN["chunk_bytes"])
        name = f"load-{random.getrandbits(64):016x}.bin"
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in (("filename", name), ("folder_id", self.tenant["upload_folder_id"]))
        )
        with self.client.post(
            "/api/v1/uploads",
            headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": meta},
            name="/api/v1/uploads (create)",
            catch_response=True,
        ) as created:
            if created.status_code != 201:
                created.failure(f"create: {created.status_code}")
                return
            created.success()
        location = created.headers["Location"]
        body = os.urandom(size)
        offset = 0
        while offset < size:
            with self.client.patch(
                location,
                data=body[offset : offset + chunk],
                headers={
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                name="/api/v1/uploads/{id} (PATCH)",
                catch_response=True,
            ) as response:
                if response.status_code != 204:
                    response.failure(f"PATCH: {response.status_code}")
                    return
                response.success()
            offset = int(response.headers["Upload-Offset"])
