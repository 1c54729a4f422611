"""Resumable uploads over tus 1.0.0, in-process, on SQLite and PostgreSQL, with the S3 store:
discovery, creation, each header rule and error, and who may touch an upload.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.fixtures.app import TEST_CONTEXT, World
from tests.fixtures.tus import (
    OFFSET_STREAM,
    PART,
    PROBLEM,
    TUS,
    MiB,
    assert_problem,
    create,
    data,
    events,
    headers,
    metadata,
    new_upload,
    offset_of,
    pending_multipart,
    send,
    upload_rows,
)
from tests.fixtures.tus import s3 as s3
from tests.fixtures.tus import settings as settings
from vault import accounts
from vault.db import transaction
from vault.models import TokenScope, User
from web.services import Services

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# --- Discovery and creation --------------------------------------------------------------------


async def test_options_advertises_version_extensions_and_sizes(
    http: httpx.AsyncClient, services: Services
) -> None:
    # Discovery needs no token, and the request's own Tus-Resumable is ignored.
    response = await http.options("/api/v1/uploads", headers={"Tus-Resumable": "0.2.2"})

    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-extension"] == (
        "creation,creation-with-upload,termination,expiration,checksum"
    )
    assert response.headers["tus-checksum-algorithm"] == "sha1,sha256,md5"
    # The configured 100 GiB, though 10,000 parts of 5 MiB hold less: larger files get
    # larger parts (tests/web/test_large_parts.py).
    assert int(response.headers["tus-max-size"]) == services.max_upload_size
    # 256 MiB rounded down to whole 5 MiB parts.
    assert int(response.headers["clientvault-chunk-size"]) == 255 * MiB


async def test_create_then_head(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    before = datetime.now(UTC)
    response = await create(http, auth, world.acme_folder, 3 * PART + 10)

    location = response.headers["location"]
    assert location.startswith("/api/v1/uploads/")
    uuid.UUID(location.rsplit("/", 1)[1])
    assert response.headers["upload-offset"] == "0"
    assert int(response.headers["clientvault-chunk-size"]) % PART == 0
    expires = parsedate_to_datetime(response.headers["upload-expires"])
    assert response.headers["upload-expires"].endswith(" GMT")
    assert timedelta(hours=23) < expires - before < timedelta(hours=25)

    head = await http.head(location, headers=headers(auth))
    assert head.status_code == 200
    assert head.headers["tus-resumable"] == "1.0.0"
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == str(3 * PART + 10)
    assert head.headers["cache-control"] == "no-store"
    # The metadata exactly as the client sent it.
    assert head.headers["upload-metadata"] == metadata(
        filename="report.pdf", folder_id=str(world.acme_folder)
    )
    assert "document-id" not in head.headers


@pytest.mark.parametrize("method", ["POST", "HEAD", "PATCH", "DELETE"])
@pytest.mark.parametrize("version", [None, "0.2.2", "1.0"])
async def test_other_protocol_versions_get_412_and_change_nothing(
    http: httpx.AsyncClient, world: World, method: str, version: str | None
) -> None:
    auth = world["alice"].auth
    url = await new_upload(http, auth, world.acme_folder, PART + 1)
    sent = {
        **auth,
        **OFFSET_STREAM,
        "Upload-Offset": "0",
        "Upload-Length": "10",
        "Upload-Metadata": metadata(filename="x.txt", folder_id=str(world.acme_folder)),
    }
    if version is not None:
        sent["Tus-Resumable"] = version

    target = "/api/v1/uploads" if method == "POST" else url
    response = await http.request(method, target, headers=sent, content=data(PART))

    assert response.status_code == 412, response.text
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    if method != "HEAD":
        assert response.headers["content-type"].startswith(PROBLEM)
    assert await offset_of(http, url, auth) == 0


async def test_creation_errors(http: httpx.AsyncClient, world: World, services: Services) -> None:
    auth = world["alice"].auth
    folder = str(world.acme_folder)

    async def post(**extra: str) -> httpx.Response:
        return await http.post("/api/v1/uploads", headers=headers(auth, **extra))

    good = metadata(filename="a.txt", folder_id=folder)
    assert_problem(await post(Upload_Metadata=good), 400)  # no Upload-Length
    assert_problem(await post(Upload_Length="-1", Upload_Metadata=good), 400)
    assert_problem(await post(Upload_Length="1e3", Upload_Metadata=good), 400)
    assert_problem(await post(Upload_Defer_Length="1", Upload_Metadata=good), 400)
    too_big = await post(Upload_Length=str(services.max_upload_size + 1), Upload_Metadata=good)
    assert_problem(too_big, 413)
    assert too_big.headers["tus-max-size"] == str(services.max_upload_size)
    assert_problem(await post(Upload_Length="5"), 400)  # no metadata at all
    no_name = await post(Upload_Length="5", Upload_Metadata=metadata(folder_id=folder))
    assert "filename" in assert_problem(no_name, 400)["detail"]
    assert_problem(await post(Upload_Length="5", Upload_Metadata="filename ***"), 400)
    repeated = f"{good},filename {base64.b64encode(b'b.txt').decode()}"
    assert_problem(await post(Upload_Length="5", Upload_Metadata=repeated), 400)
    # A body with creation (creation-with-upload) must say it is upload bytes.
    with_body = await http.post(
        "/api/v1/uploads",
        headers=headers(auth, Upload_Length="5", Upload_Metadata=good),
        content=b"hello",
    )
    assert_problem(with_body, 415)

    named = await post(
        Upload_Length="5", Upload_Metadata=metadata(filename="../etc/passwd", folder_id=folder)
    )
    assert assert_problem(named, 422)["rule"] == "path_separator"
    control = await post(
        Upload_Length="5", Upload_Metadata=metadata(filename="a\r\nb.txt", folder_id=folder)
    )
    assert assert_problem(control, 422)["rule"] == "control_character"

    # A folder of another client, a made-up one and a malformed id all answer the same 404.
    for other in (str(world.globex_folder), str(uuid.uuid4()), "not-a-uuid"):
        missing = await post(
            Upload_Length="5", Upload_Metadata=metadata(filename="a.txt", folder_id=other)
        )
        assert assert_problem(missing, 404)["detail"] == "folder not found"

    assert await upload_rows(services) == []
    assert await events(services, "upload.created") == []


async def test_creation_is_audited(
    http: httpx.AsyncClient, world: World, services: Services, s3: tuple[S3Client, str]
) -> None:
    url = await new_upload(http, world["alice"].auth, world.acme_folder, 123, "audited.txt")

    (event,) = await events(services, "upload.created")
    assert event.target_id == url.rsplit("/", 1)[1]
    assert event.actor_id == str(world["alice"].id)
    assert event.client_id == str(world.acme)
    details = json.loads(event.details)
    assert details.pop("request_id")  # the creating request's id
    assert details == {
        "name": "audited.txt",
        "folder_id": str(world.acme_folder),
        "length": 123,
    }
    # An upload of one part goes to the store in one PUT once it is complete: no multipart
    # upload. A longer one starts its multipart upload with the upload, so that any process
    # can add parts to it.
    (small,) = await upload_rows(services)
    assert small.multipart_id == ""
    assert pending_multipart(s3) == []
    await new_upload(http, world["alice"].auth, world.acme_folder, PART + 1, "two-parts.txt")
    (large,) = [row for row in await upload_rows(services) if row.id != small.id]
    assert large.multipart_id
    assert pending_multipart(s3) == [large.storage_key]


# --- Who may touch an upload -------------------------------------------------------------------


async def test_only_the_creator_may_touch_an_upload(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"].auth
    url = await new_upload(http, alice, world.acme_folder, PART + 1)
    # Bob is of another client; Sam is staff of Acme and Ada an admin, both of whom can see
    # the folder: an upload is still its creator's alone.
    for person in ("bob", "sam", "ada", "otto"):
        auth = world[person].auth
        head = await http.head(url, headers=headers(auth))
        assert head.status_code == 404, person
        assert head.headers["tus-resumable"] == "1.0.0"
        assert "upload-offset" not in head.headers
        # The same answers as for an upload that never existed: nothing to tell them apart.
        never = f"/api/v1/uploads/{uuid.uuid4()}"
        patched = assert_problem(await send(http, url, auth, 0, data(PART), expect=404), 404)
        assert patched == assert_problem(
            await send(http, never, auth, 0, data(PART), expect=404), 404
        )
        deleted = assert_problem(await http.delete(url, headers=headers(auth)), 404)
        assert deleted == assert_problem(await http.delete(never, headers=headers(auth)), 404)
    # Nor does anyone get further without a token.
    for method in ("HEAD", "PATCH", "DELETE"):
        response = await http.request(
            method, url, headers={**TUS, **OFFSET_STREAM, "Upload-Offset": "0"}
        )
        assert response.status_code == 401, method
        assert response.headers["tus-resumable"] == "1.0.0"
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert await offset_of(http, url, alice) == 0


async def test_a_read_only_token_may_look_but_not_write(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    alice = world["alice"].auth
    url = await new_upload(http, alice, world.acme_folder, PART + 1)
    async with transaction(services.sessions) as session:
        user = await session.get(User, world["alice"].id)
        assert user is not None
        _, secret = await accounts.create_token(
            session, TEST_CONTEXT, user, name="ro", scope=TokenScope.READ
        )
    read_only = {"Authorization": f"Bearer {secret}"}

    assert_problem(await create(http, read_only, world.acme_folder, 10, expect=403), 403)
    assert await offset_of(http, url, read_only) == 0
    assert_problem(await send(http, url, read_only, 0, data(PART + 1), expect=403), 403)
    assert_problem(await http.delete(url, headers=headers(read_only)), 403)
    assert await offset_of(http, url, alice) == 0
    assert len(await upload_rows(services)) == 1
