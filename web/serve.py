"""`clientvault serve`: uvicorn, with a drain before a node stops.

On SIGTERM (or SIGINT) a node first reports itself not ready on `/readyz` for
`[server] shutdown_drain_seconds` while it goes on serving, so that a balancer probing
readiness stops sending it new requests; then it stops accepting connections and gives the
requests in flight (uploads and downloads under way) up to `[server] shutdown_timeout_seconds`
to finish before it cuts them. A second signal stops at once, as uvicorn's own handling does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from types import FrameType
from typing import Any

import uvicorn

from web.datadir import prepare_data_dir
from web.metrics import prepare_multiprocess
from web.observe import configure_logging
from web.settings import Settings

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that sets `draining` on the first stop signal and only stops
    `drain_seconds` later."""

    def __init__(
        self, config: uvicorn.Config, *, draining: threading.Event, drain_seconds: float
    ) -> None:
        super().__init__(config)
        self.draining = draining
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining.is_set() or self._loop is None or self.drain_seconds <= 0:
            self.draining.set()
            super().handle_exit(sig, frame)
            return
        self.draining.set()
        logger.info("stop signal: not ready, stopping in %.1f s", self.drain_seconds)
        # Signal handlers run between bytecodes of the loop's thread: schedule, don't act.
        self._loop.call_soon_threadsafe(
            self._loop.call_later, self.drain_seconds, self._stop_after_drain, sig
        )

    def _stop_after_drain(self, sig: int) -> None:
        if not self.should_exit:  # a second signal may have stopped it already
            super().handle_exit(sig, None)


def run(settings: Settings, *, host: str | None, port: int | None, config_path: str | None) -> None:
    """Serve until stopped (see the module's docstring for how a stop goes)."""
    prepare_data_dir(settings)
    server = settings.server
    if server.workers > 1 and config_path:
        # Worker processes load settings themselves; point them at the same file.
        os.environ["CLIENTVAULT_CONFIG"] = config_path
    configure_logging(format=settings.logging.format, level=settings.logging.level)
    if server.workers > 1 and settings.metrics.enabled:
        prepare_multiprocess(settings.data_dir / "metrics")
    kwargs: dict[str, Any] = {
        "log_config": None,  # ours (web.observe), set up above and in each worker
        "access_log": False,  # the app logs one line per request itself, with its id
        "host": host or server.host,
        "port": port or server.port,
        "factory": True,
        "proxy_headers": bool(server.forwarded_allow_ips),
        "forwarded_allow_ips": server.forwarded_allow_ips or None,
        # httptools, with the request head bounded (review item 15): see web/http_protocol.py.
        # A string, so that worker processes import the class themselves.
        "http": "web.http_protocol:BoundedHeadProtocol",
        "timeout_graceful_shutdown": server.shutdown_timeout_seconds,
    }
    if server.workers > 1:
        # uvicorn's worker processes stop on the first signal: the deadline holds, the
        # readiness drain does not (run one process per node behind the balancer for it).
        uvicorn.run("web.app:create_app", workers=server.workers, **kwargs)
        return
    from web.app import create_app

    draining = threading.Event()
    config = uvicorn.Config(lambda: create_app(settings, draining=draining), **kwargs)
    DrainingServer(config, draining=draining, drain_seconds=server.shutdown_drain_seconds).run()
