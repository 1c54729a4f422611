"""The process gives its free memory back when the last request in flight ends after a
transfer, not while any other is still running, and not for small requests
(`web.idle_memory`)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from vault.crypto import ranges
from web.idle_memory import IdleRelease, release_idle_memory
from web.observe import ObserveMiddleware


def app_with(released: list[int], after: int) -> tuple[ObserveMiddleware, anyio.Event, anyio.Event]:
    started, go = anyio.Event(), anyio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        started.set()
        await go.wait()
        return PlainTextResponse("slow")

    async def quick(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"quick {len(await request.body())}")

    inner = Starlette(
        routes=[Route("/slow", slow), Route("/quick", quick, methods=["GET", "POST"])]
    )
    idle = IdleRelease(release=lambda: released.append(idle.in_flight), after=after)
    return ObserveMiddleware(inner, metrics=None, idle=idle), started, go


async def test_memory_goes_back_only_once_nothing_is_in_flight() -> None:
    released: list[int] = []
    app, started, go = app_with(released, after=1)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(http.get, "/slow")
        await started.wait()
        assert (await http.get("/quick")).text == "quick 0"
        assert released == []  # the slow one is still running
        go.set()
    assert released == [0]


async def test_memory_goes_back_only_after_a_transfer() -> None:
    released: list[int] = []
    app, _, _ = app_with(released, after=4 << 20)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        for _ in range(5):
            assert (await http.get("/quick")).status_code == 200
        assert released == []  # small requests only
        body = b"x" * (4 << 20)
        assert (await http.post("/quick", content=body)).text == f"quick {4 << 20}"
        assert released == [0]
        assert (await http.get("/quick")).status_code == 200
    assert released == [0]


def test_falling_idle_drops_the_spare_piece_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The buffers downloads decrypt into go with the allocator's free pages, so a process
    at rest does not carry them into its next transfer."""
    monkeypatch.setattr(ranges, "_spare", [])
    assert IdleRelease().release is release_idle_memory
    spare = ranges._PieceBuffers(ranges.SEND_SIZE)
    first = spare.take()
    sending = memoryview(first)  # a piece still being sent: the next goes elsewhere
    second = spare.take()
    assert second is not first
    del sending
    spare.give_back()
    assert all(any(buffer is kept for kept in ranges._spare) for buffer in (first, second))
    release_idle_memory()
    assert ranges._spare == []
