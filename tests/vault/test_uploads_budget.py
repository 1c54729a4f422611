"""An upload's takings from the process's byte budget: whole units, all given back at the
end, none given back that it does not hold."""

from __future__ import annotations

import anyio

from storage import ByteBudget
from vault.uploads.budget import Share


async def test_a_share_takes_whole_units_and_gives_back_what_it_still_holds() -> None:
    budget = ByteBudget(100)
    share = Share(budget, 40)
    await share.take()
    await share.take()
    assert (budget.in_use, share.held) == (80, 2)
    share.give()
    assert (budget.in_use, share.held) == (40, 1)
    share.give_all()
    share.give()  # nothing held: nothing given, nobody else's bytes
    assert (budget.in_use, share.held) == (0, 0)
    # A unit larger than the budget is cut to it, so a holder can always get one.
    whole = Share(budget, 500)
    await whole.take()
    assert budget.in_use == 100
    whole.give_all()
    counting = Share(None, 7)  # no budget: it only counts
    await counting.take()
    assert counting.held == 1


async def test_a_limited_share_waits_for_its_own_units_before_taking_the_budget() -> None:
    budget = ByteBudget(1000)
    share = Share(budget, 10, limit=2)
    await share.take()
    await share.take()
    with anyio.move_on_after(0.2) as waited:
        await share.take()
    assert waited.cancelled_caught  # a third unit waits for one of the two...
    assert (budget.in_use, share.held) == (20, 2)  # ...holding nothing of the budget
    share.give()
    with anyio.fail_after(5):
        await share.take()  # ...and gets it once one comes back
    assert (budget.in_use, share.held) == (20, 2)
    share.give_all()
    assert budget.in_use == 0


async def test_a_unit_handed_on_keeps_its_budget_for_the_holders_next_take() -> None:
    """A stored part hands its unit on to the next part with its buffer: the slot goes back,
    the budget stays, so the next take never waits for the budget; what is left at the end
    goes back with the rest."""
    budget = ByteBudget(200)
    share, other = Share(budget, 100, limit=1), Share(budget, 100)
    await share.take()
    share.hand_on()
    assert (budget.in_use, share.held) == (100, 1)
    await other.take()  # the budget is spent
    with anyio.fail_after(5):
        await share.take()  # its own slot, and the unit it handed on
    assert (budget.in_use, share.held) == (200, 1)
    share.hand_on()
    share.give()  # a unit handed on is not given back as a unit still held...
    assert (budget.in_use, share.held) == (200, 1)
    share.give_all()  # ...but goes with the rest
    assert (budget.in_use, share.held) == (100, 0)
    other.give_all()
    with anyio.fail_after(5):
        await share.take()  # its slot came back with the handed unit's
    share.give_all()
    assert budget.in_use == 0


async def test_a_share_waiting_for_the_budget_says_so() -> None:
    budget = ByteBudget(100)
    first, second = Share(budget, 100), Share(budget, 100)
    await first.take()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(second.take)
        await anyio.wait_all_tasks_blocked()
        assert second.waiting_for_budget and not first.waiting_for_budget
        first.give_all()
    assert not second.waiting_for_budget and second.held == 1
    second.give_all()
