"""Prometheus metrics: what the app measures, the object store wrapped to time its calls,
and the `/metrics` endpoint (docs/operations.md lists every family).

With several worker processes (`[server].workers` > 1) `clientvault serve` points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start, and a scrape of
any worker adds up the figures of all of them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from notify.feed import CURSOR as NOTIFY_CURSOR
from vault.db import reading
from vault.stats import OperationalStats, operational_stats
from vault.store import ObjectStore, PendingUpload, StoredObject, StoredPart

if TYPE_CHECKING:
    from web.services import Services

T = TypeVar("T")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; from a cached page to a multi-gigabyte upload.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def prepare_multiprocess(directory: Path) -> None:
    """Have worker processes started after this share their metrics through `directory`.

    Emptied first: files of processes from an earlier run would be added in forever.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)


class Metrics:
    """The app's metric families, in a registry of their own (one per app, so tests and
    several apps in one process never collide)."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files and the scrape reads those instead.
        registry = None if self.multiprocess else self.registry
        self.requests = Histogram(
            "clientvault_http_request_duration_seconds",
            "HTTP requests by route template, method and status, until the last body byte.",
            ["route", "method", "status"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.bytes_in = Counter(
            "clientvault_http_request_body_bytes",
            "Request body bytes received, by route template.",
            ["route"],
            registry=registry,
        )
        self.bytes_out = Counter(
            "clientvault_http_response_body_bytes",
            "Response body bytes sent, by route template.",
            ["route"],
            registry=registry,
        )
        self.storage = Histogram(
            "clientvault_storage_request_duration_seconds",
            "Object store calls by operation (reads and listings: until the first chunk).",
            ["operation"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.storage_errors = Counter(
            "clientvault_storage_errors",
            "Object store calls that failed, by operation and error.",
            ["operation", "error"],
            registry=registry,
        )
        self.audit_append = Histogram(
            "clientvault_audit_append_duration_seconds",
            "Time to append one event to the audit chain (head lock included).",
            buckets=_LATENCY,
            registry=registry,
        )

    def exposition(self, stats: OperationalStats) -> bytes:
        """The text format of every family, with the scrape-time figures from `stats`."""
        if self.multiprocess:
            collected = CollectorRegistry()
            multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
            text = generate_latest(collected)
        else:
            text = generate_latest(self.registry)
        return text + generate_latest(_StatsCollector(stats))


class _StatsCollector(CollectorRegistry):
    """Figures read from the database at scrape time: the same whichever worker answers."""

    def __init__(self, stats: OperationalStats) -> None:
        super().__init__(auto_describe=False)
        self._stats = stats

    def collect(self):  # type: ignore[no-untyped-def]
        s = self._stats
        for name, text, value in (
            (
                "clientvault_upload_sessions_open",
                "Resumable uploads not yet complete.",
                s.uploads_open,
            ),
            ("clientvault_outbox_depth", "Emails waiting to be sent.", s.outbox_depth),
            (
                "clientvault_outbox_oldest_age_seconds",
                "Age of the oldest email waiting to be sent (0 when none waits).",
                s.outbox_oldest_age_seconds,
            ),
            (
                "clientvault_notifier_lag_events",
                "Audit events the notifier has not read yet.",
                s.notifier_lag_events,
            ),
            (
                "clientvault_checkpoint_lag_events",
                "Audit events no signed checkpoint covers yet.",
                s.checkpoint_lag_events,
            ),
            (
                "clientvault_checkpoint_lag_seconds",
                "Age of the oldest audit event no signed checkpoint covers (0 when all are).",
                s.checkpoint_lag_seconds,
            ),
        ):
            yield GaugeMetricFamily(name, text, value=value)


def _bearer(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: 404 (as if absent) unless enabled and the bearer token matches."""
    svc: Services = request.state.services
    settings = svc.settings
    if not settings.metrics.enabled or svc.metrics is None:
        return PlainTextResponse("Not Found", status_code=404)
    token = settings.metrics_token()
    # Constant time, so the token cannot be learnt a byte at a time from response delays.
    if not token or not hmac.compare_digest(_bearer(request).encode(), token.encode()):
        return PlainTextResponse("Not Found", status_code=404)
    async with reading(svc.sessions) as session:
        stats = await operational_stats(session, cursor=NOTIFY_CURSOR)
    body = svc.metrics.exposition(stats)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class InstrumentedStore:
    """An object store that times every call and counts failures, then hands it on.

    Satisfies `vault.store.ObjectStore` itself, so the vault never knows it is measured.
    """

    def __init__(self, inner: ObjectStore, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"InstrumentedStore({self._inner!r})"

    @property
    def etags_pin_parts(self) -> bool:
        return self._inner.etags_pin_parts

    async def _timed(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await call
        except Exception as exc:
            self._metrics.storage_errors.labels(operation, type(exc).__name__).inc()
            raise
        finally:
            self._metrics.storage.labels(operation).observe(time.perf_counter() - started)

    async def _streamed(self, operation: str, items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
        started = time.perf_counter()
        first = True
        try:
            handed: list[T] = []
            async for item in items:
                if first:
                    self._metrics.storage.labels(operation).observe(time.perf_counter() - started)
                    first = False
                # Not kept while suspended: a store may reuse a window's buffer once no view
                # of it is left (storage/s3_reads.py), and this frame would keep one.
                handed.append(item)
                del item
                yield handed.pop()
        except Exception as exc:
            self._metrics.storage_errors.labels(operation, type(exc).__name__).inc()
            raise
        finally:
            if first:  # empty, failed or abandoned before the first item
                self._metrics.storage.labels(operation).observe(time.perf_counter() - started)
            close: Callable[[], Awaitable[None]] | None = getattr(items, "aclose", None)
            if close is not None:
                await close()

    async def create_multipart(self, key: str) -> str:
        return await self._timed("create_multipart", self._inner.create_multipart(key))

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, data: bytes | bytearray | memoryview
    ) -> str:
        return await self._timed(
            "upload_part", self._inner.upload_part(key, upload_id, part_number, data)
        )

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        return await self._timed("list_parts", self._inner.list_parts(key, upload_id))

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        await self._timed(
            "complete_multipart", self._inner.complete_multipart(key, upload_id, parts)
        )

    async def put_new(self, key: str, data: bytes) -> str | None:
        return await self._timed("put_new", self._inner.put_new(key, data))

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self._timed("abort_multipart", self._inner.abort_multipart(key, upload_id))

    async def list_multipart_uploads(self, prefix: str = "") -> list[PendingUpload]:
        return await self._timed(
            "list_multipart_uploads", self._inner.list_multipart_uploads(prefix)
        )

    def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes | memoryview]:
        return self._streamed("read", self._inner.read(key, start, end))

    async def head(self, key: str) -> StoredObject:
        return await self._timed("head", self._inner.head(key))

    async def delete(self, key: str) -> None:
        await self._timed("delete", self._inner.delete(key))

    def list(self, prefix: str = "", start_after: str = "") -> AsyncIterator[StoredObject]:
        return self._streamed("list", self._inner.list(prefix, start_after))

    async def check(self) -> None:
        await self._timed("check", self._inner.check())
