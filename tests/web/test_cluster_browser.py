"""A real browser through the balancer (tests/fixtures/cluster.py): the portal's own uploader
(tus-js-client, the session cookie and the CSRF token) over nginx's TLS, its chunks spread by
round-robin over both nodes, and the file read back whole."""

from __future__ import annotations

import hashlib

import pytest
from playwright.async_api import Browser, Response, expect

from tests.fixtures.browser import DESKTOP, artifacts, browser_sign_in
from tests.fixtures.cluster import USER_PASSWORD
from tests.fixtures.cluster_world import ClusterWorld
from tests.fixtures.portal import DROP_SCRIPT, pattern, wait_done

pytestmark = pytest.mark.cluster

MiB = 1024 * 1024
SIZE = 17 * MiB + 4321  # four chunks of the 5 MiB the cluster advertises


async def browser_upload(
    cluster_world: ClusterWorld, browser: Browser, name: str, seed: int, size: int = SIZE
) -> tuple[list[Response], list[str]]:
    """Drop a file of `size` bytes on the folder page and wait until it is listed: the
    answers to the upload's POSTs and PATCHes, and every answer of 400 or more."""
    cluster = cluster_world.cluster
    # The harness's CA is the test's own; the browser is told to accept it, as an office
    # machine with the firm's CA installed would.
    context = await browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
    page = await context.new_page()
    answers: list[Response] = []
    failed: list[str] = []

    def on_response(response: Response) -> None:
        if "/api/v1/uploads" in response.url and response.request.method in ("POST", "PATCH"):
            answers.append(response)
        if response.status >= 400:
            failed.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", on_response)
    try:
        await browser_sign_in(page, cluster.url, cluster_world.user_email, USER_PASSWORD)
        await page.goto(f"{cluster.url}/folders/{cluster_world.folder_id}")
        await page.locator(".upload-panel--enhanced").wait_for()
        await page.evaluate(DROP_SCRIPT, ["[data-upload-drop]", [(name, size, seed)]])
        await wait_done(page, name)
        await expect(page.locator(".upload-overlay")).to_be_hidden()
        await page.locator("#folder-listing").get_by_role("link", name=name, exact=True).wait_for()
        await page.screenshot(path=str(artifacts() / f"cluster-{name}.png"))
    finally:
        await context.close()
    return answers, failed


async def assert_read_back(
    cluster_world: ClusterWorld, name: str, seed: int, size: int = SIZE
) -> None:
    async with cluster_world.cluster.http(timeout=60) as http:
        listing = await http.get(
            f"/api/v1/folders/{cluster_world.folder_id}", headers=cluster_world.user
        )
        document_id = next(d["id"] for d in listing.json()["documents"] if d["name"] == name)
        content = await http.get(
            f"/api/v1/documents/{document_id}/content", headers=cluster_world.user
        )
    assert content.status_code == 200, content.text
    assert hashlib.sha256(content.content).digest() == hashlib.sha256(pattern(size, seed)).digest()


async def test_a_browser_upload_through_the_balancer_lands_on_both_nodes(
    cluster_world: ClusterWorld, browser: Browser
) -> None:
    cluster = cluster_world.cluster
    name = "drawings-by-browser.bin"
    answers, failed = await browser_upload(cluster_world, browser, name, seed=5)

    assert not failed, failed
    # Too large to come with the POST: four PATCHes.
    assert [(a.request.method, a.status) for a in answers] == [("POST", 201)] + [("PATCH", 204)] * 4
    # Each PATCH is in the log of the node that took it, under the balancer's request id.
    served_by = {cluster.node_of(a.headers["x-request-id"]).index for a in answers[1:]}
    assert served_by == {0, 1}, served_by
    await assert_read_back(cluster_world, name, seed=5)


async def test_chunks_a_proxy_refuses_as_too_large_go_on_at_half_the_size(
    cluster_world: ClusterWorld, browser: Browser
) -> None:
    # As a CDN with a body limit under the chunk the server advertises (5 MiB here) would.
    name = "drawings-past-a-cdn.bin"
    with cluster_world.cluster.body_limit(3 * MiB):
        answers, failed = await browser_upload(cluster_world, browser, name, seed=6)

    # The first PATCH refused, by nginx: its answer carries no request id of a node.
    assert [a.status for a in answers] == [201, 413] + [204] * 9, [a.status for a in answers]
    refused = answers[1]
    assert "x-request-id" not in refused.headers
    assert failed == [f"413 PATCH {refused.url}"]
    # Then from the offset the server reported (nothing of the refused body reached it), in
    # chunks of 2 MiB: half of 5 MiB, in whole MiB.
    patches = answers[1:]
    sent_at = [int(a.request.headers["upload-offset"]) for a in patches]
    assert sent_at == [0] + [n * 2 * MiB for n in range(9)], sent_at
    stored_to = [int(a.headers["upload-offset"]) for a in patches[1:]]
    assert stored_to == [n * 2 * MiB for n in range(1, 9)] + [SIZE], stored_to
    await assert_read_back(cluster_world, name, seed=6)


async def test_a_small_file_a_proxy_refuses_whole_goes_up_in_chunks(
    cluster_world: ClusterWorld, browser: Browser
) -> None:
    # Small enough to come whole with the POST that creates its upload, too large for the
    # proxy: the upload is created again without it, then sent in 2 MiB chunks.
    name = "small-past-a-cdn.bin"
    size = 4 * MiB + 4321  # under the 5 MiB chunk, over the proxy's limit
    with cluster_world.cluster.body_limit(3 * MiB):
        answers, failed = await browser_upload(cluster_world, browser, name, seed=7, size=size)

    calls = [(a.request.method, a.status) for a in answers]
    assert calls == [("POST", 413), ("POST", 201)] + [("PATCH", 204)] * 3, calls
    kinds = [a.request.headers.get("content-type") for a in answers[:2]]
    assert kinds == ["application/offset+octet-stream", None], kinds
    assert failed == [f"413 POST {answers[0].url}"]
    stored_to = [int(a.headers["upload-offset"]) for a in answers[2:]]
    assert stored_to == [2 * MiB, 4 * MiB, size], stored_to
    await assert_read_back(cluster_world, name, seed=7, size=size)


async def test_a_small_file_goes_up_with_the_post_that_creates_its_upload(
    cluster_world: ClusterWorld, browser: Browser
) -> None:
    name = "small-in-one-request.bin"
    size = 4 * MiB + 4321  # under the 5 MiB chunk
    answers, failed = await browser_upload(cluster_world, browser, name, seed=8, size=size)

    assert not failed, failed
    assert [(a.request.method, a.status) for a in answers] == [("POST", 201)]
    assert answers[0].request.headers["content-type"] == "application/offset+octet-stream"
    assert int(answers[0].headers["upload-offset"]) == size
    assert answers[0].headers["document-id"]
    await assert_read_back(cluster_world, name, seed=8, size=size)
