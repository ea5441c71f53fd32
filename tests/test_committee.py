"""solve_committee against brute force: the LP over every k-multiset, each column
P[S ≻ y] computed by the oracle (tests/oracle.py), under all four tie conventions,
on strict and weak orders with zero-weight voters; and its pricing problems
(enumeration, MILP, heuristics) against enumeration of the pricing objective."""

from __future__ import annotations

import itertools
import time

import numpy as np
import oracle
import pytest
from helpers import random_ranks
from scipy.optimize import linprog

import ualign as ua
from ualign.solvers import committee as committee_module


def population(seed: int, n_max: int = 5, m_max: int = 4) -> tuple:
    """(model, ranks, weights): strict or weak orders, some zero weights."""
    rng = np.random.default_rng(500 + seed)
    n, m = int(rng.integers(1, n_max + 1)), int(rng.integers(1, m_max + 1))
    ranks = random_ranks(rng, n, m, ("strict", "weak", "nondense", "all_tied")[seed % 4] if m > 1 else "weak")
    weights = rng.random(n) + 0.05
    weights[rng.random(n) < 0.3] = 0.0
    if not weights.sum() > 0:
        weights[-1] = 1.0
    return ua.RankingPopulation(ranks, weights), ranks, weights


def brute_force(ranks: np.ndarray, weights: np.ndarray, k: int, ties: str) -> float:
    """max_rho min_y P[rho ≻ y] by an LP over every k-multiset (oracle columns)."""
    m = ranks.shape[1]
    sets = list(itertools.combinations_with_replacement(range(m), k))
    a = np.array([[oracle.win_rate(ranks, weights, list(S), y, ties) for y in range(m)] for S in sets])
    c = len(sets)
    res = linprog(np.r_[np.zeros(c), -1.0], A_ub=np.hstack([-a.T, np.ones((m, 1))]), b_ub=np.zeros(m),
                  A_eq=np.r_[np.ones(c), 0.0][None, :], b_eq=[1.0], bounds=[(0, None)] * c + [(None, None)],
                  method="highs", options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    assert res.status == 0
    return float(res.x[-1])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ties", oracle.TIES)
def test_committee_matches_brute_force(seed: int, ties: str) -> None:
    model, ranks, weights = population(seed)
    m = model.n_responses
    for k in (1, 2, 3, m + 1):
        best = brute_force(ranks, weights, k, ties)
        for pricing in ("exact", "milp", "auto"):
            result = ua.solve_committee(model, k, ties, pricing=pricing)
            assert all(len(S) == k for S in result.policy.multisets)
            assert result.robust_level == pytest.approx(best, abs=1e-9)
            assert result.upper_bound >= best - 1e-9 and result.gap <= 1e-9 and result.converged
            assert result.exact
            # the certificate re-checks with the exact kernels and with the oracle
            assert result.robust_level == ua.robust_level(model, result.policy, ties=ties)
            policy = oracle.multi([list(S) for S in result.policy.multisets], list(result.policy.probabilities))
            assert oracle.robust_level(ranks, weights, policy, None, ties) == pytest.approx(best, abs=1e-9)
        greedy = ua.solve_committee(model, k, ties, pricing="greedy")
        assert greedy.robust_level <= best + 1e-9 <= greedy.upper_bound + 2e-9


@pytest.mark.parametrize("ties", oracle.TIES)
def test_pricing_problems_against_enumeration(ties: str) -> None:
    """max_S Σ_y q_y P[S ≻ y]: the MILP's optimum and bound, the enumeration and the
    heuristics against the oracle, for random duals q with zeros."""
    rng = np.random.default_rng(7)
    for seed in range(12):
        model, ranks, weights = population(seed, n_max=6, m_max=5)
        m = model.n_responses
        q = rng.random(m) * (rng.random(m) < 0.7)
        q = q / q.sum() if q.sum() > 0 else np.full(m, 1.0 / m)
        for k in (1, 2, 3):
            repeats = ties == "uniform"
            if not repeats and k > m:
                continue
            combos = itertools.combinations_with_replacement(range(m), k) if repeats else itertools.combinations(range(m), k)
            values = {S: sum(q[y] * oracle.win_rate(ranks, weights, list(S), y, ties) for y in range(m))
                      for S in itertools.combinations_with_replacement(range(m), k)}
            best = max(values.values())
            assert best == pytest.approx(max(values[S] for S in combos), abs=1e-12)  # repeats never needed
            pricer = committee_module._RankingPricer(model, ties, k, repeats)
            pricer.set_dual(q)
            S, value, proven = pricer.milp(10.0, 1e-9)
            assert proven and S is not None and values[tuple(sorted(S))] == pytest.approx(best, abs=1e-9)
            assert value >= best - 1e-9 and value <= best + 1e-7
            top = pricer.enumerate(3)
            assert top[0][1] == pytest.approx(best, abs=1e-12)
            for T, v in top:
                assert v == pytest.approx(values[T], abs=1e-12)
            for T in (pricer.greedy(), pricer.local_search(pricer.greedy())):
                assert len(T) == k and pricer.value(T) == pytest.approx(values[T], abs=1e-12)


def test_repeats_matter_only_under_uniform_ties() -> None:
    """Two copies of a response tied with y win 2/3 of the tie under uniform ties."""
    model = ua.RankingPopulation([[0, 1], [0, 1]])
    result = ua.solve_committee(model, 2, "uniform")
    assert result.robust_level == pytest.approx(brute_force(np.array([[0, 1], [0, 1]]), np.ones(2), 2, "uniform"),
                                                abs=1e-12)
    assert result.robust_level == pytest.approx(1.0, abs=1e-12) or result.robust_level > 2 / 3
    for ties in ("half", "strict", "weak"):
        closed = ua.solve_committee(model, 5, ties)
        assert closed.pricing == "closed form" and closed.gap == 0.0 and closed.exact


def test_larger_pool_milp_certificate() -> None:
    """A pool beyond enumeration: the MILP certifies (or bounds) the optimum and the
    bound is at least the level of every committee found, re-checked exactly."""
    rng = np.random.default_rng(3)
    model = ua.RankingPopulation(rng.integers(0, 6, size=(30, 16)))
    for ties in oracle.TIES:
        result = ua.solve_committee(model, 3, ties, pricing="milp", tol=1e-6)
        assert result.robust_level == ua.robust_level(model, result.policy, ties=ties)
        assert result.upper_bound >= result.robust_level
        if result.exact:
            exact = ua.solve_committee(model, 3, ties, pricing="exact")
            assert exact.robust_level <= result.upper_bound + 1e-9
            assert abs(exact.robust_level - result.robust_level) <= result.gap + 1e-9


def test_huge_k_is_fast() -> None:
    rng = np.random.default_rng(5)
    model = ua.RankingPopulation.from_orders(np.argsort(rng.random((500, 20)), axis=1))
    start = time.perf_counter()
    result = ua.solve_committee(model, 1000, "strict")
    assert result.pricing == "closed form" and result.gap == 0.0
    assert time.perf_counter() - start < 5.0
    everything = ua.MultisetPolicy([list(range(20)) + [0] * 980], [1.0])
    assert result.robust_level == ua.robust_level(model, everything, ties="strict")


def test_bad_input() -> None:
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0]])
    with pytest.raises(ValueError, match="time_limit"):
        ua.solve_committee(model, 2, time_limit=0.0)
    with pytest.raises(ValueError, match="pricing"):
        ua.solve_committee(model, 2, pricing="simplex")
    if hasattr(ua, "PlackettLuceMixture"):
        with pytest.raises(ValueError, match="pricing"):
            ua.solve_committee(ua.PlackettLuceMixture(np.zeros((1, 3))), 2, pricing="milp")
