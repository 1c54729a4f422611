"""An upload's takings from its process's budget of bytes in memory.

The budget itself is `storage.ByteBudget` (downloads take their read windows from one
too); the vault names only what it needs of it, so it imports nothing of the stores.
"""

from __future__ import annotations

from typing import Protocol

import anyio


class Budget(Protocol):
    """A semaphore counted in bytes, shared by the tasks of one process."""

    @property
    def capacity(self) -> int: ...

    async def acquire(self, size: int) -> None: ...

    def release(self, size: int) -> None: ...


class Share:
    """One holder's takings from a `Budget`, in units of `size` bytes (at most the
    budget's capacity), so that whatever it still holds goes back at once when it ends or
    fails; with a `limit`, it never holds more than that many units at once. Without a
    budget it only counts (and limits).
    """

    def __init__(self, budget: Budget | None, size: int, *, limit: int | None = None) -> None:
        self._budget = budget
        self._slots = None if limit is None else anyio.Semaphore(limit)
        self.size = size if budget is None else min(size, budget.capacity)
        self.held = 0
        self._handed = 0  # units handed on: their slot given back, their budget kept
        self.waiting_for_budget = False

    async def take(self) -> None:
        """Take one unit, waiting until the holder is under its limit and the unit is free;
        a unit handed on is taken first, and never waits for the budget."""
        # The holder's own limit first: waiting for it holds nothing of the shared budget.
        if self._slots is not None:
            await self._slots.acquire()
        if self._handed:
            self._handed -= 1
            return
        if self._budget is not None:
            self.waiting_for_budget = True
            try:
                await self._budget.acquire(self.size)
            except BaseException:
                if self._slots is not None:
                    self._slots.release()
                raise
            finally:
                self.waiting_for_budget = False
        self.held += 1

    def give(self) -> None:
        """Give one unit back (nothing if none is held but those handed on)."""
        if self.held > self._handed:
            self.held -= 1
            if self._slots is not None:
                self._slots.release()
            if self._budget is not None:
                self._budget.release(self.size)

    def hand_on(self) -> None:
        """Give one unit's slot back but keep its share of the budget for the holder's next
        `take`, which then never waits for the budget; for a holder that takes again at
        once and not while it waits for the budget (`waiting_for_budget`), or it could hold
        what another waits for while itself waiting."""
        if self.held > self._handed:
            self._handed += 1
            if self._slots is not None:
                self._slots.release()

    def give_all(self) -> None:
        """Give back every unit still held, those handed on included."""
        while self._handed:
            self._handed -= 1
            self.held -= 1
            if self._budget is not None:
                self._budget.release(self.size)
        while self.held:
            self.give()
