"""The document API end to end, moving bytes: upload, versions, ranged download,
validators, how files are served, and trash."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

import httpx

from tests.fixtures.app import World
from tests.fixtures.document_requests import assert_problem, content_url, new_document, payload
from tests.fixtures.documents import API, upload

MiB = 1024 * 1024
SEGMENT = 64 * 1024


def disposition_filename(header: str) -> str:
    match = re.search(r"filename\*=UTF-8''([^;\s]+)", header)
    assert match is not None, header
    return unquote(match.group(1), errors="strict")


# --- round trip -----------------------------------------------------------------------------


ROUND_TRIP_SIZES = [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 12 * MiB + 12345]


async def test_round_trip(http: httpx.AsyncClient, world: World) -> None:
    """Sizes around the 64 KiB segment and one over two 5 MiB parts (three parts)."""
    for size in ROUND_TRIP_SIZES:
        data = payload(size, seed=size)
        name = f"data-{size}.bin"
        response = await upload(http, world["alice"].auth, world.acme_folder, name, data)
        assert response.status_code == 201, (size, response.text)
        body = response.json()
        assert body["version"] == 1
        assert response.headers["location"] == f"{API}/documents/{body['document_id']}"

        download = await http.get(content_url(body["document_id"]), headers=world["sam"].auth)
        assert download.status_code == 200, size
        assert download.headers["content-length"] == str(size)
        assert len(download.content) == size
        assert download.content == data, size

        meta = await http.get(f"{API}/documents/{body['document_id']}", headers=world["alice"].auth)
        assert meta.status_code == 200
        [version] = meta.json()["versions"]
        assert version["size"] == size
        assert version["sha256"] == hashlib.sha256(data).hexdigest()


async def test_versions(http: httpx.AsyncClient, world: World) -> None:
    old, new = payload(70_000, seed=1), payload(1000, seed=2)
    first = await upload(http, world["alice"].auth, world.acme_folder, "plan.txt", old, expect=201)
    second = await upload(http, world["sam"].auth, world.acme_folder, "plan.txt", new, expect=200)
    document_id = first.json()["document_id"]
    assert second.json() == {"document_id": document_id, "version": 2}

    meta = await http.get(f"{API}/documents/{document_id}", headers=world["alice"].auth)
    assert meta.status_code == 200
    doc = meta.json()
    assert doc["id"] == document_id and doc["name"] == "plan.txt"
    assert doc["folder_id"] == str(world.acme_folder) and doc["client_id"] == str(world.acme)
    versions = doc["versions"]
    assert [v["number"] for v in versions] == [1, 2]
    assert [v["size"] for v in versions] == [len(old), len(new)]
    assert [v["sha256"] for v in versions] == [
        hashlib.sha256(old).hexdigest(),
        hashlib.sha256(new).hexdigest(),
    ]
    assert [v["uploaded_by"] for v in versions] == [str(world["alice"].id), str(world["sam"].id)]
    assert all(v["created_at"] for v in versions)

    auth = world["alice"].auth
    assert (await http.get(content_url(document_id), headers=auth)).content == new
    assert (await http.get(content_url(document_id, 2), headers=auth)).content == new
    assert (await http.get(content_url(document_id, 1), headers=auth)).content == old
    for bad in ("3", "0", "-1", "abc", "1.0", ""):
        response = await http.get(f"{content_url(document_id)}?version={bad}", headers=auth)
        assert_problem(response, 404)

    await check_same_name_ignoring_case_is_a_new_version(http, world)


async def check_same_name_ignoring_case_is_a_new_version(
    http: httpx.AsyncClient, world: World
) -> None:
    auth = world["alice"].auth
    first = await upload(http, auth, world.acme_folder, "Report.PDF", b"one", expect=201)
    second = await upload(http, auth, world.acme_folder, "report.pdf", b"two", expect=200)
    assert second.json() == {"document_id": first.json()["document_id"], "version": 2}
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=auth)).json()
    [listed] = [d for d in folder["documents"] if d["name"].casefold() == "report.pdf"]
    assert listed["name"] == "Report.PDF" and listed["version"] == 2


# --- ranges and validators ------------------------------------------------------------------

RANGE_SIZE = 200_000


RANGE_CASES: list[tuple[str, int, tuple[int, int] | None]] = [
    ("bytes=0-99", 206, (0, 100)),  # prefix
    ("bytes=-100", 206, (RANGE_SIZE - 100, RANGE_SIZE)),  # suffix
    ("bytes=199990-", 206, (199_990, RANGE_SIZE)),  # open-ended
    ("bytes=5-5", 206, (5, 6)),  # single byte
    (f"bytes={SEGMENT - 10}-{SEGMENT + 9}", 206, (SEGMENT - 10, SEGMENT + 10)),  # segment edge
    (f"bytes={2 * SEGMENT - 1}-{2 * SEGMENT}", 206, (2 * SEGMENT - 1, 2 * SEGMENT + 1)),
    (f"bytes={SEGMENT}-{SEGMENT}", 206, (SEGMENT, SEGMENT + 1)),  # first byte of a segment
    ("bytes=199990-999999", 206, (199_990, RANGE_SIZE)),  # end clamped
    ("bytes=-999999", 206, (0, RANGE_SIZE)),  # suffix longer than the file
    ("bytes=0-", 206, (0, RANGE_SIZE)),
    ("bytes=200000-", 416, None),  # starts at the end
    ("bytes=999999-1000000", 416, None),
    ("bytes=-0", 416, None),
    ("bytes=0-1,5-6", 200, (0, RANGE_SIZE)),  # multiple ranges: ignored
    ("bytes=abc", 200, (0, RANGE_SIZE)),  # invalid syntax: ignored
    ("bytes=5-1", 200, (0, RANGE_SIZE)),  # last < first: invalid, ignored
    ("bytes=", 200, (0, RANGE_SIZE)),
    ("items=0-1", 200, (0, RANGE_SIZE)),  # unknown unit: ignored
]


async def test_range(http: httpx.AsyncClient, world: World) -> None:
    data = payload(RANGE_SIZE, seed=3)
    document_id = await new_document(http, world, "big.bin", data)
    for header, status, expected in RANGE_CASES:
        response = await http.get(
            content_url(document_id), headers={**world["alice"].auth, "Range": header}
        )
        assert response.status_code == status, header
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["etag"]
        if expected is None:
            assert response.headers["content-range"] == f"bytes */{RANGE_SIZE}", header
            assert response.content == b""
            continue
        start, end = expected
        assert response.content == data[start:end], header
        assert response.headers["content-length"] == str(end - start), header
        if status == 206:
            assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{RANGE_SIZE}"
        else:
            assert "content-range" not in response.headers, header
    await check_range_on_old_version_and_empty_file(http, world)


async def check_range_on_old_version_and_empty_file(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    old = payload(1000, seed=4)
    document_id = await new_document(http, world, "r.bin", old)
    await upload(http, auth, world.acme_folder, "r.bin", b"new", expect=200)
    response = await http.get(content_url(document_id, 1), headers={**auth, "Range": "bytes=-10"})
    assert response.status_code == 206
    assert response.content == old[-10:]
    assert response.headers["content-range"] == "bytes 990-999/1000"

    empty = await new_document(http, world, "empty.bin", b"")
    response = await http.get(content_url(empty), headers={**auth, "Range": "bytes=0-"})
    assert response.status_code == 200 and response.content == b""


async def test_etag_and_conditional_requests(http: httpx.AsyncClient, world: World) -> None:
    auth = world["alice"].auth
    v1, v2 = payload(5000, seed=5), payload(5000, seed=6)
    document_id = await new_document(http, world, "e.bin", v1)
    tag1 = (await http.get(content_url(document_id), headers=auth)).headers["etag"]
    assert re.fullmatch(r'"[\x21\x23-\x7e]+"', tag1)  # strong, well-formed
    assert (await http.get(content_url(document_id), headers=auth)).headers["etag"] == tag1
    assert (
        await http.get(content_url(document_id), headers={**auth, "Range": "bytes=0-9"})
    ).headers["etag"] == tag1

    await upload(http, auth, world.acme_folder, "e.bin", v2, expect=200)
    tag2 = (await http.get(content_url(document_id), headers=auth)).headers["etag"]
    assert tag2 != tag1
    assert (await http.get(content_url(document_id, 1), headers=auth)).headers["etag"] == tag1
    assert tag1.strip('"') not in (hashlib.sha256(v1).hexdigest(),)  # opaque, not the digest

    # If-None-Match: the current tag (strong or weak form, or in a list) -> 304, no body.
    for value in (tag2, f"W/{tag2}", f'"nope", {tag2}', "*"):
        response = await http.get(
            content_url(document_id), headers={**auth, "If-None-Match": value}
        )
        assert response.status_code == 304, value
        assert response.content == b""
        assert response.headers["etag"] == tag2
    stale = await http.get(content_url(document_id), headers={**auth, "If-None-Match": tag1})
    assert stale.status_code == 200 and stale.content == v2
    old = await http.get(content_url(document_id, 1), headers={**auth, "If-None-Match": tag1})
    assert old.status_code == 304

    # If-Range: a stale or weak validator means "send it all"; the current one allows 206.
    ranged = {**auth, "Range": "bytes=0-9"}
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": tag1})
    assert response.status_code == 200 and response.content == v2
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": f"W/{tag2}"})
    assert response.status_code == 200 and response.content == v2
    response = await http.get(
        content_url(document_id), headers={**ranged, "If-Range": "Tue, 01 Jan 2030 00:00:00 GMT"}
    )
    assert response.status_code == 200
    response = await http.get(content_url(document_id), headers={**ranged, "If-Range": tag2})
    assert response.status_code == 206 and response.content == v2[:10]


# --- how files are served -------------------------------------------------------------------


DISPOSITION_NAMES = [
    "گزارش.pdf",
    "報告書 2026.pdf",
    "📄 report 👨‍👩‍👧.pdf",
    'a"b;c.pdf',
    "50% off=yes.txt",
]


async def check_content_disposition_carries_the_name(http: httpx.AsyncClient, world: World) -> None:
    for name in DISPOSITION_NAMES:
        document_id = await new_document(http, world, name, b"x")
        response = await http.get(content_url(document_id), headers=world["alice"].auth)
        assert response.status_code == 200
        header = response.headers["content-disposition"]
        header.encode("ascii")  # the field value itself is plain ASCII
        assert header.startswith("attachment;"), name
        assert disposition_filename(header) == name
        fallback = re.search(r'filename="([^"]*)"', header)
        assert fallback is not None, name
        assert ";" not in fallback.group(1) and "%" not in fallback.group(1), name
        meta = await http.get(f"{API}/documents/{document_id}", headers=world["alice"].auth)
        assert meta.json()["name"] == name


SERVED_TYPES: list[tuple[str, str | None, str]] = [
    ("x.html", None, "application/octet-stream"),
    ("x.svg", None, "application/octet-stream"),
    ("x.js", None, "application/octet-stream"),
    ("x.pdf", None, "application/pdf"),
    ("y.pdf", "text/html", "application/octet-stream"),  # a declared type cannot smuggle
    ("x.bin", "image/svg+xml", "application/octet-stream"),
    ("x.png", None, "image/png"),
]


async def check_served_content_type_and_safety_headers(
    http: httpx.AsyncClient, world: World
) -> None:
    for name, declared, served in SERVED_TYPES:
        headers = {"Content-Type": declared} if declared else None
        response = await upload(
            http,
            world["alice"].auth,
            world.acme_folder,
            name,
            b"<svg onload=alert(1)><script>alert(1)</script>",
            expect=201,
            headers=headers,
        )
        document_id = response.json()["document_id"]
        for extra in ({}, {"Range": "bytes=0-3"}):
            download = await http.get(
                content_url(document_id), headers={**world["alice"].auth, **extra}
            )
            assert download.status_code in (200, 206)
            assert download.headers["content-type"].split(";")[0] == served, name
            assert download.headers["content-disposition"].startswith("attachment;")
            assert download.headers["x-content-type-options"] == "nosniff"
            csp = [d.strip() for d in download.headers["content-security-policy"].split(";")]
            assert "sandbox" in csp and "default-src 'none'" in csp, name
            assert "no-store" in download.headers["cache-control"]


async def test_how_files_are_served(http: httpx.AsyncClient, world: World) -> None:
    await check_content_disposition_carries_the_name(http, world)
    await check_served_content_type_and_safety_headers(http, world)


# --- trash ----------------------------------------------------------------------------------


async def test_delete(http: httpx.AsyncClient, world: World) -> None:
    document_id = await new_document(http, world, "gone.txt", b"old bytes")
    sam = world["sam"].auth
    response = await http.delete(f"{API}/documents/{document_id}", headers=sam)
    assert response.status_code == 204 and response.content == b""

    assert_problem(await http.get(f"{API}/documents/{document_id}", headers=sam), 404)
    assert_problem(await http.get(content_url(document_id), headers=sam), 404)
    assert_problem(await http.get(content_url(document_id, 1), headers=sam), 404)
    assert_problem(await http.delete(f"{API}/documents/{document_id}", headers=sam), 404)
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=sam)).json()
    assert folder["documents"] == []

    again = await upload(http, sam, world.acme_folder, "gone.txt", b"new bytes", expect=201)
    new_id = again.json()["document_id"]
    assert new_id != document_id and again.json()["version"] == 1
    assert (await http.get(content_url(new_id), headers=sam)).content == b"new bytes"
    folder = (await http.get(f"{API}/folders/{world.acme_folder}", headers=sam)).json()
    assert [d["id"] for d in folder["documents"]] == [new_id]
