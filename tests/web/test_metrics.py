"""/metrics scraped and parsed with prometheus_client's own parser; request ids and the
one-line-per-request log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr
from sqlmodel import col, select

from storage import ObjectNotFoundError
from tests.fixtures.app import World, on_each_store
from tests.fixtures.cli import SCRIPT, script
from tests.fixtures.s3 import free_port
from vault.db import transaction
from vault.models import AuditEvent
from vault.stats import OperationalStats
from web.app import create_app
from web.metrics import InstrumentedStore, Metrics
from web.observe import ACCESS_LOGGER, JSONFormatter
from web.services import Services
from web.settings import LoggingSettings, MetricsSettings, Settings

TOKEN = "scrape-" + "s3cret" * 6
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return on_each_store(request, settings).model_copy(
        update={
            "metrics": MetricsSettings(enabled=True, token=SecretStr(TOKEN)),
            "logging": LoggingSettings(format="json"),
        }
    )


@asynccontextmanager
async def portal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def scrape(http: httpx.AsyncClient) -> dict[str, list[Sample]]:
    response = await http.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_after_an_upload_and_a_download(
    http: httpx.AsyncClient, world: World, services: Services
) -> None:
    content = b"quarterly figures " * 4000
    put = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/q3.txt",
        content=content,
        headers=world["alice"].auth,
    )
    assert put.status_code == 201, put.text
    document_id = put.json()["document_id"]
    # Longer than a part (5 MiB here): a multipart upload, where the first went in one PUT.
    big = b"\0" * (5 * 1024 * 1024 + 1)
    put_big = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/scan.bin",
        content=big,
        headers=world["alice"].auth,
    )
    assert put_big.status_code == 201, put_big.text
    got = await http.get(f"/api/v1/documents/{document_id}/content", headers=world["alice"].auth)
    assert got.status_code == 200 and got.content == content
    tus = await http.post(
        "/api/v1/uploads",
        headers={
            **world["alice"].auth,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": f"folder_id {_b64(str(world.acme_folder))},filename {_b64('x')}",
        },
    )
    assert tus.status_code == 201, tus.text

    families = await scrape(http)
    put_route = "/api/v1/folders/{folder_id}/files/{name:path}"
    get_route = "/api/v1/documents/{document_id}/content"
    requests = families["clientvault_http_request_duration_seconds"]
    name = "clientvault_http_request_duration_seconds_count"
    assert value(requests, name, route=put_route, method="PUT", status="201") == 2
    assert value(requests, name, route=get_route, method="GET", status="200") == 1
    assert value(requests, name, route="/api/v1/uploads", method="POST", status="201") == 1
    # Templates only: no label carries an id from a path.
    assert not [s for s in requests if document_id in s.labels.get("route", "")]
    bytes_in = families["clientvault_http_request_body_bytes"]
    assert value(bytes_in, "clientvault_http_request_body_bytes_total", route=put_route) == len(
        content
    ) + len(big)
    bytes_out = families["clientvault_http_response_body_bytes"]
    assert value(bytes_out, "clientvault_http_response_body_bytes_total", route=get_route) == len(
        content
    )
    storage = families["clientvault_storage_request_duration_seconds"]
    for operation in ("put_new", "create_multipart", "upload_part", "complete_multipart", "read"):
        count = "clientvault_storage_request_duration_seconds_count"
        assert value(storage, count, operation=operation) >= 1, operation
    appends = families["clientvault_audit_append_duration_seconds"]
    assert value(appends, "clientvault_audit_append_duration_seconds_count") >= 3
    assert value(appends, "clientvault_audit_append_duration_seconds_sum") > 0
    assert families["clientvault_upload_sessions_open"][0].value == 1
    assert families["clientvault_outbox_depth"][0].value >= 0
    assert families["clientvault_outbox_oldest_age_seconds"][0].value >= 0
    assert families["clientvault_notifier_lag_events"][0].value >= 0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_store_calls_and_errors_are_measured(services: Services) -> None:
    """The wrapper around each real store: timings per operation, failures by error."""
    metrics = Metrics()
    store = InstrumentedStore(services.store, metrics)
    missing = f"objects/{uuid.uuid4()}/{uuid.uuid4()}"
    with pytest.raises(ObjectNotFoundError):
        await store.head(missing)
    with pytest.raises(ObjectNotFoundError):
        [chunk async for chunk in store.read(missing)]
    assert [obj async for obj in store.list("objects/")] == []
    text = metrics.exposition(OperationalStats(0, 0, 0.0, 0)).decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    errors = families["clientvault_storage_errors"]
    for operation in ("head", "read"):
        assert (
            value(
                errors,
                "clientvault_storage_errors_total",
                operation=operation,
                error="ObjectNotFoundError",
            )
            == 1
        )
    timings = families["clientvault_storage_request_duration_seconds"]
    count = "clientvault_storage_request_duration_seconds_count"
    assert [value(timings, count, operation=op) for op in ("head", "read", "list")] == [1, 1, 1]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "wrong-token", "not-bearer"],
)
async def test_metrics_hide_without_the_token(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await http.get("/metrics", headers=headers)).status_code == 404


async def test_metrics_are_absent_unless_enabled(settings: Settings) -> None:
    disabled = settings.model_copy(update={"metrics": MetricsSettings()})
    async with portal(disabled) as http:
        assert (await http.get("/metrics", headers=SCRAPER)).status_code == 404


def test_enabling_metrics_needs_a_token() -> None:
    with pytest.raises(ValueError, match=r"metrics\.token"):
        MetricsSettings(enabled=True)


async def test_request_id_is_returned_logged_and_audited(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = await http.put(
        f"/api/v1/folders/{world.acme_folder}/files/a.txt",
        content=b"abc",
        headers={**world["alice"].auth, "X-Request-Id": "forged-by-the-client"},
    )
    request_id = response.headers["x-request-id"]
    assert request_id != "forged-by-the-client" and len(request_id) == 32  # not trusted
    (record,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    line = json.loads(JSONFormatter().format(record))
    assert line["request_id"] == request_id
    assert {k: line[k] for k in ("method", "route", "status", "bytes_in")} == {
        "method": "PUT",
        "route": "/api/v1/folders/{folder_id}/files/{name:path}",
        "status": 201,
        "bytes_in": 3,
    }
    assert line["duration_ms"] > 0 and line["level"] == "INFO"
    async with transaction(services.sessions) as session:
        event = (
            await session.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "document.created")
                .order_by(col(AuditEvent.seq))
            )
        ).scalar_one()
    assert json.loads(event.details)["request_id"] == request_id


async def test_a_trusted_request_id_is_kept(settings: Settings) -> None:
    trusting = settings.model_copy(update={"logging": LoggingSettings(trust_request_id=True)})
    given = str(uuid.uuid4())
    async with portal(trusting) as http:
        kept = await http.get("/healthz", headers={"X-Request-Id": given})
        assert kept.headers["x-request-id"] == given
        # Anything that is not a plain token is replaced, so logs cannot be forged.
        odd = await http.get("/healthz", headers={"X-Request-Id": "a b\tc"})
        assert odd.headers["x-request-id"] != "a b\tc"


@pytest.mark.live
async def test_two_workers_report_the_sum_of_both(tmp_path: Path) -> None:
    """`clientvault serve` with two worker processes: whichever answers a scrape counts
    every request (prometheus_client's multiprocess mode), and logs one JSON line each."""
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "clientvault.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(data_dir))}\n"
        f"[server]\nworkers = 2\nport = {port}\n"
        f"[metrics]\nenabled = true\ntoken = {json.dumps(TOKEN)}\n"
        '[logging]\nformat = "json"\n[notify]\nworker = false\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTVAULT")}
    assert script(config, "init").returncode == 0
    log = (tmp_path / "serve.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        str(SCRIPT), "--config", str(config), "serve", stdout=log, stderr=log, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                async with httpx.AsyncClient(base_url=base) as http:
                    if (await http.get("/healthz")).status_code == 200:
                        break
            await asyncio.sleep(0.1)
        count = "clientvault_http_request_duration_seconds_count"
        async with httpx.AsyncClient(base_url=base) as http:
            before = value(
                (await scrape(http))["clientvault_http_request_duration_seconds"],
                count,
                route="/healthz",
            )
        for _ in range(20):
            # A connection per request, so the kernel spreads them over both workers.
            async with httpx.AsyncClient(base_url=base) as http:
                assert (await http.get("/healthz")).status_code == 200
        for _ in range(4):
            async with httpx.AsyncClient(base_url=base) as http:
                requests = (await scrape(http))["clientvault_http_request_duration_seconds"]
            assert value(requests, count, route="/healthz", status="200") == before + 20
        assert len({p.name.split("_")[-1] for p in (data_dir / "metrics").glob("*.db")}) == 2
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
        log.close()
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    access = [line for line in lines if line.get("logger") == ACCESS_LOGGER]
    assert len({line["request_id"] for line in access}) == len(access) >= 25
