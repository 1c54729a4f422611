"""An upload's takings from its process's budget of bytes in memory.

The budget itself is `storage.ByteBudget` (downloads take their read windows from one
too); the vault names only what it needs of it, so it imports nothing of the stores.
"""

from __future__ import annotations

from typing import Protocol


class Budget(Protocol):
    """A semaphore counted in bytes, shared by the tasks of one process."""

    @property
    def capacity(self) -> int: ...

    async def acquire(self, size: int) -> None: ...

    def release(self, size: int) -> None: ...


class Share:
    """One holder's takings from a `Budget`, in units of `size` bytes (at most the
    budget's capacity), so that whatever it still holds goes back at once when it ends or
    fails. Without a budget it only counts.
    """

    def __init__(self, budget: Budget | None, size: int) -> None:
        self._budget = budget
        self.size = size if budget is None else min(size, budget.capacity)
        self.held = 0

    async def take(self) -> None:
        """Take one unit, waiting until it is free."""
        if self._budget is not None:
            await self._budget.acquire(self.size)
        self.held += 1

    def give(self) -> None:
        """Give one unit back (nothing if none is held)."""
        if self.held:
            self.held -= 1
            if self._budget is not None:
                self._budget.release(self.size)

    def give_all(self) -> None:
        """Give back every unit still held."""
        while self.held:
            self.give()
