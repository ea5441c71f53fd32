"""Built-in example populations."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .ranking import RankingPopulation

#: Responses in the default population.
DEFAULT_RESPONSES = 12
#: (label, share of the population, best-first order) of its three groups.
_DEFAULT_GROUPS = (
    ("majority", 0.5, list(range(12))),                  # 0 is its favourite
    ("minority", 0.3, list(range(6, 12)) + list(range(6))),  # prefers 6..11
    ("reversed", 0.2, list(range(11, -1, -1))),          # the reverse taste
)
_VOTERS_PER_GROUP = 40


def default_population() -> RankingPopulation:
    """The population ``ualign audit`` uses when given no input.

    Twelve responses and 120 voters in three groups: a majority (50%) ranking
    0, 1, …, 11, a minority (30%) ranking 6, …, 11, 0, …, 5 and a minority (20%)
    ranking 11, …, 0. Each voter of a group is the group's order with one adjacent
    pair swapped (voter j swaps positions j mod 11 and j mod 11 + 1), so every
    group is a small cloud of nearby orders. No response is a Condorcet winner:
    response 0 beats 1, …, 5 and 11 but ties 6, …, 10 at exactly 1/2, so the
    maximal lotteries form a set (every lottery over 0 and 6, among others) and
    NLHF's robust level at ``k >= 2`` is a range over that set: at ``k = 4`` from
    1/2 (all mass on 0) to about 0.78 (0 and 6 mixed), which the audit reports as
    ``level_low`` and ``level_high``. The minorities are what k samples can serve.
    Fully deterministic (no random numbers).
    """
    orders = []
    weights = []
    for _label, share, order in _DEFAULT_GROUPS:
        for j in range(_VOTERS_PER_GROUP):
            voter = list(order)
            p = j % (DEFAULT_RESPONSES - 1)
            voter[p], voter[p + 1] = voter[p + 1], voter[p]
            orders.append(voter)
            weights.append(share / _VOTERS_PER_GROUP)
    return RankingPopulation.from_orders(np.array(orders, dtype=np.int64), weights=np.array(weights))


def default_groups() -> NDArray[np.str_]:
    """The group label of each voter of :func:`default_population`, in its voter
    order: ``"majority"`` (50%), ``"minority"`` (30%, prefers 6…11) and
    ``"reversed"`` (20%), 40 voters each. ``ualign audit`` without input reports the worst group's level with them."""
    return np.repeat(np.array([label for label, _share, _order in _DEFAULT_GROUPS]), _VOTERS_PER_GROUP)
