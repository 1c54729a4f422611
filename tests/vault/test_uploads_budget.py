"""An upload's takings from the process's byte budget: whole units, all given back at the
end, none given back that it does not hold."""

from __future__ import annotations

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
