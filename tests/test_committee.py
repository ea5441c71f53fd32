"""solve_committee against brute force: the LP over every k-multiset, each column
P[S ≻ y] computed by the oracle (tests/oracle.py), under all four tie conventions,
on strict and weak orders with zero-weight voters; and its pricing problems
(branch and bound, heuristics) against enumeration of the pricing objective.
Against opponents with l outputs (opponent_k): the matrix game of every committee
against every l-multiset, and the returned policy's level by the oracle's
enumeration of opponents."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import oracle
import pytest
from helpers import outputs_by_thread_count, random_ranks
from scipy.optimize import linprog

import ualign as ua
from ualign import _core_loader
from ualign._validate import tie_code
from ualign.operands import as_operand
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


def brute_force(ranks: np.ndarray, weights: np.ndarray, k: int, ties: str, opponent_k: int = 1) -> float:
    """max_rho min_Y P[rho ≻ Y]: the matrix game of every k-multiset committee against
    every multiset Y of ``opponent_k`` responses (single responses by default), each
    entry computed by the oracle, solved by an LP."""
    m = ranks.shape[1]
    sets = list(itertools.combinations_with_replacement(range(m), k))
    opponents = list(itertools.combinations_with_replacement(range(m), opponent_k))
    a = np.array([[oracle.win_rate(ranks, weights, list(S), list(Y), ties) for Y in opponents] for S in sets])
    c, r = a.shape
    res = linprog(np.r_[np.zeros(c), -1.0], A_ub=np.hstack([-a.T, np.ones((r, 1))]), b_ub=np.zeros(r),
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
        for pricing in ("exact", "auto"):
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


def pricing_values(ranks: np.ndarray, weights: np.ndarray, q: np.ndarray, k: int, ties: str,
                   multisets: bool) -> dict:
    """q·a_S for every k-multiset (or every k-set), from the oracle."""
    m = ranks.shape[1]
    combos = itertools.combinations_with_replacement(range(m), k) if multisets else itertools.combinations(range(m), k)
    return {S: sum(q[y] * oracle.win_rate(ranks, weights, list(S), y, ties) for y in range(m)) for S in combos}


@pytest.mark.parametrize("ties", oracle.TIES)
def test_branch_and_bound_pricing_against_enumeration(ties: str) -> None:
    """max_S Σ_y q_y P[S ≻ y] by branch and bound: its best committee's value and its
    bound equal the brute-force optimum (1e-12); every committee it returns has the
    oracle's value; with a target above the optimum it proves the optimum below it;
    stopped after one node, or once it holds enough committees beating the target,
    its bound still covers the optimum."""
    rng = np.random.default_rng(11 + len(ties))
    repeats = ties == "uniform"
    stopped_by_enough = 0
    for seed in range(40):
        model, ranks, weights = population(seed, n_max=7, m_max=9)
        m = model.n_responses
        q = rng.random(m) * (rng.random(m) < 0.7)
        q = q / q.sum() if q.sum() > 0 else np.full(m, 1.0 / m)
        for k in (1, 2, 3, 4):
            if (not repeats and k > m) or math.comb(m + k - 1, k) > 300:
                continue
            values = pricing_values(ranks, weights, q, k, ties, repeats)
            best = max(values.values())
            if not repeats:  # repeats never help outside uniform ties
                assert abs(max(pricing_values(ranks, weights, q, k, ties, True).values()) - best) <= 1e-12
            pricer = committee_module._RankingPricer(model, ties, k, repeats)
            pricer.set_dual(q)
            found, bound, finished = pricer.exact(-1.0, 60.0, ())
            assert finished and abs(bound - best) <= 1e-12
            assert abs(values[found[0]] - best) <= 1e-12
            assert all(len(S) == k and abs(pricer.value(S) - values[S]) <= 1e-12 for S in found)
            assert [values[S] for S in found] == sorted((values[S] for S in found), reverse=True)
            start = pricer.local_search(pricer.greedy())
            found, bound, finished = pricer.exact(best + 0.01, 60.0, start)
            assert finished and best - 1e-12 <= bound <= best + 0.01
            found, bound, finished = pricer.exact(best - 0.01, 60.0, ())  # a target below: still exact
            assert finished and abs(bound - best) <= 1e-12 and abs(values[found[0]] - best) <= 1e-12
            # enough improving columns: the search may stop once it holds 8 beating the target (all here)
            found, bound, finished = pricer.exact(-1.0, 60.0, (), enough=True)
            assert bound >= best - 1e-12 and all(abs(values[S] - pricer.value(S)) <= 1e-12 for S in found)
            assert finished or len(found) == committee_module._PRICING_COLUMNS
            stopped_by_enough += not finished
            for nodes in (1, 2, 3):  # stopped early (or finished): the bound still covers the optimum
                found, bound, finished = pricer.exact(-1.0, 60.0, (), max_nodes=nodes)
                assert bound >= best - 1e-12 and all(abs(values[S] - pricer.value(S)) <= 1e-12 for S in found)
            for T in (pricer.greedy(), pricer.local_search(pricer.greedy())):
                assert len(T) == k and pricer.value(T) == pytest.approx(values[T], abs=1e-12)
            for S in [()] + found[:3]:  # the heuristics' step: the value of S + {z} for every z
                gains = pricer.add_values(*pricer.state(S))
                assert gains == pytest.approx([pricer.value(tuple(sorted(S + (z,)))) for z in range(m)], abs=1e-12)
    assert stopped_by_enough > 0


@pytest.mark.parametrize("kind", ["strict", "weak"])
def test_multiset_pricing_deep_searches_against_enumeration(kind: str) -> None:
    """Committees of 5 to 7 members under uniform ties, where the search bounds nodes
    with 3 or more members to add by its Lagrangian bound (with tied levels, a member
    may be the second one at its level): the branch and bound finds the brute-force
    optimum, proves a target just above it, and never reports a bound below it."""
    rng = np.random.default_rng(71 if kind == "strict" else 72)
    checked = 0
    for _ in range(24):
        n, m = int(rng.integers(3, 40)), int(rng.integers(3, 7))
        ranks = random_ranks(rng, n, m, kind)
        weights = rng.random(n) + 0.05
        model = ua.RankingPopulation(ranks, weights)
        q = rng.random(m) * (rng.random(m) < 0.8)
        q = q / q.sum() if q.sum() > 0 else np.full(m, 1.0 / m)
        for k in (5, 6, 7):
            if math.comb(m + k - 1, k) > 400:
                continue
            values = pricing_values(ranks, weights, q, k, "uniform", True)
            best = max(values.values())
            pricer = committee_module._RankingPricer(model, "uniform", k, True)
            pricer.set_dual(q)
            found, bound, finished = pricer.exact(-1.0, 60.0, ())
            assert finished and abs(bound - best) <= 1e-12 and abs(values[found[0]] - best) <= 1e-12
            found, bound, finished = pricer.exact(best + 1e-9, 60.0, ())
            assert finished and best - 1e-12 <= bound <= best + 1e-9
            for target in (best - 1e-9, best - 1e-3):  # prunes nodes by their bounds against the target
                found, bound, finished = pricer.exact(target, 60.0, ())
                assert finished and abs(values[found[0]] - best) <= 1e-12
            checked += 1
    assert checked >= 30


@pytest.mark.parametrize("ties", oracle.TIES)
def test_pricing_against_opponent_mixtures(ties: str) -> None:
    """The column oracle against l-output opponents: max_S Σ_Y q_Y P[S ≻ Y] over
    k-multisets S for a mixture q of l-multisets, by the opponent branch and bound
    (price_opponent with a target), against enumeration by the oracle (1e-12)."""
    rng = np.random.default_rng(23 + len(ties))
    core = _core_loader.core()
    for seed in range(16):
        model, ranks, weights = population(seed, n_max=5, m_max=5)
        m = model.n_responses
        rows = [tuple(sorted(rng.integers(0, m, size=int(rng.integers(2, 4))))) for _ in range(3)]
        q = rng.dirichlet(np.ones(3))
        q[int(rng.integers(3))] = 0.0  # a row the dual does not use
        q /= q.sum()
        mixture = ua.MultisetPolicy([list(Y) for Y in rows], q)
        parts = as_operand(mixture, m, "opponent").parts()
        for k in (1, 2, 3):
            values = {S: oracle.win_rate(ranks, weights, list(S), oracle.multi(rows, q), ties)
                      for S in itertools.combinations_with_replacement(range(m), k)}
            best = max(values.values())
            for target in (-1.0, best - 0.01, best + 0.01):
                found, found_values, bound, finished, _ = core.price_opponent(
                    model._store, parts, tie_code(ties), k, np.zeros(0, dtype=np.int64), 3, 10**9, 60.0, target)
                assert finished and best - 1e-12 <= bound <= max(best, target) + 1e-12
                padded = [committee_module._padded(tuple(S), k) for S in found]
                assert all(abs(values[S] - v) <= 1e-12 for S, v in zip(padded, found_values))
                if target < best:
                    assert abs(found_values[0] - best) <= 1e-12


@pytest.mark.parametrize("ties", oracle.TIES)
def test_pricing_relaxation_bound(ties: str) -> None:
    """The bound of the pricing's LP relaxation: never below the brute-force optimum
    (1e-12), equal to the relaxation's optimum (solved here without the duals), and
    at most 1; None past the size budget."""
    rng = np.random.default_rng(31 + len(ties))
    repeats = ties == "uniform"
    for seed in range(24):
        model, ranks, weights = population(seed, n_max=7, m_max=8)
        m, n = model.n_responses, model.n_voters
        q = rng.random(m) * (rng.random(m) < 0.8)
        q = q / q.sum() if q.sum() > 0 else np.full(m, 1.0 / m)
        for k in (1, 2, 3):
            if (not repeats and k > m) or math.comb(m + k - 1, k) > 300:
                continue
            best = max(pricing_values(ranks, weights, q, k, ties, repeats).values())
            pricer = committee_module._RankingPricer(model, ties, k, repeats)
            pricer.set_dual(q)
            bound = pricer.relaxation_bound()
            assert bound is not None and best - 1e-12 <= bound <= 1.0 + 1e-12
            # the relaxation straight from its definition: serve[i, j] <= open[j], Σ_j serve[i, j] <= 1,
            # Σ_j open[j] <= min(k, m), each voter worth its best level's q-mass below plus a tie share
            share = {"uniform": k / (k + 1.0), "half": 0.5, "strict": 0.0, "weak": 1.0}[ties]
            w = weights / weights.sum()
            value = np.array([[w[i] * (q[ranks[i] > ranks[i, j]].sum() + share * q[ranks[i] == ranks[i, j]].sum())
                               for j in range(m)] for i in range(n)])
            rows = np.zeros((n + n * m + 1, n * m + m))
            for i in range(n):
                rows[i, i * m:(i + 1) * m] = 1.0
                for j in range(m):
                    rows[n + i * m + j, i * m + j], rows[n + i * m + j, n * m + j] = 1.0, -1.0
            rows[-1, n * m:] = 1.0
            limits = np.r_[np.ones(n), np.zeros(n * m), min(k, m)]
            lp = linprog(np.r_[-value.ravel(), np.zeros(m)], A_ub=rows, b_ub=limits, bounds=(0, 1), method="highs")
            assert lp.status == 0 and abs(-lp.fun - bound) <= 1e-9
    big = ua.RankingPopulation(np.zeros((committee_module._RELAXATION_BUDGET // 10 + 1, 10), dtype=np.int64))
    pricer = committee_module._RankingPricer(big, "uniform", 2, True)
    pricer.set_dual(np.full(10, 0.1))
    assert pricer.relaxation_bound() is None


def test_stopped_search_reports_the_relaxation_bound() -> None:
    """Where the branch and bound stops by its time limit, the committee's bound is
    the smaller of its open nodes' bound and the relaxation's, and says so."""
    rng = np.random.default_rng(5)
    model = ua.RankingPopulation.from_orders(np.argsort(rng.random((100, 64)), axis=1))
    result = ua.solve_committee(model, 8, tol=1e-9, time_limit=0.2)
    assert not result.exact and result.pricing.endswith("bound of its LP relaxation)")
    assert result.robust_level <= result.upper_bound < 1.0


def test_branch_and_bound_budget_stop() -> None:
    """A pool too large to finish at once: stopped searches keep a bound above every
    committee the exact search finds, under every tie convention."""
    rng = np.random.default_rng(9)
    model = ua.RankingPopulation(rng.integers(0, 5, size=(40, 24)))
    q = rng.random(24)
    q /= q.sum()
    for ties in oracle.TIES:
        pricer = committee_module._RankingPricer(model, ties, 5, ties == "uniform")
        pricer.set_dual(q)
        found, best, finished = pricer.exact(-1.0, 60.0, ())
        assert finished and abs(pricer.value(found[0]) - best) <= 1e-12
        for nodes in (1, 3, 10, 30):
            part, bound, finished = pricer.exact(-1.0, 60.0, (), max_nodes=nodes)
            assert not finished and bound >= best - 1e-12 and all(pricer.value(S) <= best + 1e-12 for S in part)
        part, bound, finished = pricer.exact(-1.0, 0.0, ())  # no time: stops within 256 nodes
        assert bound >= best - 1e-12


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


def test_larger_pool_certificate() -> None:
    """A pool beyond brute force: the certified level and bound bracket the optimum
    of a second solve with a tighter tolerance, and the level re-checks exactly."""
    rng = np.random.default_rng(3)
    model = ua.RankingPopulation(rng.integers(0, 6, size=(30, 16)))
    for ties in oracle.TIES:
        result = ua.solve_committee(model, 3, ties, tol=1e-6)
        assert result.pricing == "branch and bound" and result.exact and result.gap <= 1e-6
        assert result.robust_level == ua.robust_level(model, result.policy, ties=ties)
        tight = ua.solve_committee(model, 3, ties, tol=1e-10)
        assert result.robust_level - 1e-12 <= tight.upper_bound and tight.robust_level <= result.upper_bound + 1e-12


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
    with pytest.raises(ValueError, match="pricing"):
        ua.solve_committee(ua.PlackettLuceMixture(np.zeros((1, 3))), 2, pricing="milp")
    with pytest.raises(ValueError, match="pricing"):
        ua.solve_committee(model, 2, pricing="milp")
    core = _core_loader.core()
    levels, voters = np.zeros((2, 3)), np.zeros(2)
    with pytest.raises(ValueError, match="^alone"):
        core.committee_add_values(levels, np.zeros((2, 4)), voters, voters, voters, voters)
    with pytest.raises(ValueError, match="^best, same, old, w"):
        core.committee_add_values(levels, levels, voters, voters, voters, np.zeros(3))
    with pytest.raises(ValueError, match="^level"):
        core.committee_add_values(np.zeros(6), levels, voters, voters, voters, voters)
    values, none = np.zeros((3, 2)), np.zeros(0, dtype=np.int64)
    for bad in (3, -1):  # levels index each voter's ranking of the m = 3 responses
        level = np.zeros((3, 2), dtype=np.int64)
        level[1, 0] = bad
        with pytest.raises(ValueError, match=r"^level: expected levels in \[0, m\)"):
            core.price_multiset_committee(values, values, level, 2, none, 8, 0.0, 100, 1.0, False)


def test_committee_size_beyond_the_supported_range() -> None:
    # a regression of the fuzzing: solve_committee(model, 1000) ran for 40 s under uniform ties
    from ualign.solvers.committee import UNIFORM_K_MAX

    model = ua.RankingPopulation.from_orders([[0, 1, 2], [2, 1, 0], [1, 2, 0]])
    start = time.perf_counter()
    with pytest.raises(ValueError, match="^k: committees under 'uniform' ties"):
        ua.solve_committee(model, UNIFORM_K_MAX + 1)
    assert time.perf_counter() - start < 1.0
    for ties in ("half", "strict", "weak"):  # every k: the committee of all responses for k >= m
        result = ua.solve_committee(model, 1000, ties=ties)
        assert result.gap <= 1e-12 and result.pricing == "closed form"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", oracle.TIES)
def test_against_opponents_matches_the_matrix_game(seed: int, ties: str) -> None:
    model, ranks, weights = population(seed)
    m = model.n_responses
    for k in (1, 2, 3):
        for ell in (2, 3):
            best = brute_force(ranks, weights, k, ties, ell)
            result = ua.solve_committee(model, k, ties, opponent_k=ell)
            assert isinstance(result, ua.solvers.OpponentCommitteeResult) and result.opponent_k == ell
            assert all(len(S) == k and max(S) < m for S in result.policy.multisets)
            assert abs(result.robust_level - best) <= 1e-9, (k, ell)
            assert result.converged and result.exact and result.gap <= 1e-9
            assert result.lower_bound == result.robust_level
            assert best - 1e-9 <= result.upper_bound and result.upper_bound - result.lower_bound == result.gap
            # the certified level, recomputed by enumerating every opponent and every draw
            reference = oracle.multi([list(S) for S in result.policy.multisets], list(result.policy.probabilities))
            level, worst = oracle.opponent_level(ranks, weights, reference, None, ell, ties)
            assert abs(result.robust_level - level) <= 1e-12
            assert result.opponent in worst or abs(
                oracle.win_rate(ranks, weights, reference, list(result.opponent), ties) - level) <= 1e-12
            assert result.robust_level == ua.robust_level(model, result.policy, ties=ties, opponent_k=ell)


@pytest.mark.parametrize("ties", oracle.TIES)
def test_against_opponents_more_members_or_outputs_than_responses(ties: str) -> None:
    """k >= m outside uniform ties: all responses, in closed form; l > m: repeats."""
    model, ranks, weights = population(5, n_max=3, m_max=3)
    m = model.n_responses
    for k, ell in ((m, 2), (m + 1, m + 1), (2, m + 1)):
        if ties == "uniform" and k + ell > 5:
            continue  # the matrix game grows quickly with repeats
        best = brute_force(ranks, weights, k, ties, ell)
        result = ua.solve_committee(model, k, ties, opponent_k=ell)
        assert abs(result.robust_level - best) <= 1e-9 and result.converged
        if ties != "uniform" and k >= m:
            assert result.pricing == "closed form" and result.gap == 0.0


def test_against_one_output_is_todays_solver() -> None:
    model, _, _ = population(2)
    for ties in oracle.TIES:
        today = ua.solve_committee(model, 2, ties)
        same = ua.solve_committee(model, 2, ties, opponent_k=1)
        assert type(same) is ua.solvers.CommitteeResult
        assert same.robust_level == today.robust_level and same.upper_bound == today.upper_bound
        assert [list(S) for S in same.policy.multisets] == [list(S) for S in today.policy.multisets]


def test_against_opponents_uniform_ties_reward_repeats() -> None:
    """One voter, one response: a committee of k copies against l copies wins
    k/(k+l) of the tie under uniform ties."""
    model = ua.RankingPopulation([[0]])
    for k, ell in ((1, 2), (3, 2), (2, 3)):
        result = ua.solve_committee(model, k, "uniform", opponent_k=ell)
        assert result.robust_level == pytest.approx(k / (k + ell), abs=1e-15)
        assert result.opponent == (0,) * ell


@pytest.mark.parametrize("pricing", ["exact", "greedy"])
def test_against_opponents_other_models(pricing: str) -> None:
    """Plackett-Luce: enumeration (exact) or greedy pricing with its bound."""
    model = ua.PlackettLuceMixture(np.log([[3.0, 1.0, 0.5, 2.0], [0.5, 2.0, 1.0, 1.0]]), weights=[0.6, 0.4])
    ties = "uniform"
    result = ua.solve_committee(model, 2, ties, pricing=pricing, opponent_k=2)
    level = ua.robust_level(model, result.policy, ties=ties, opponent_k=2)
    assert result.robust_level == level and result.lower_bound == level
    assert result.upper_bound >= level
    if pricing == "exact":
        assert result.pricing == "enumeration" and result.converged and result.exact
        assert result.upper_bound - level <= 1e-9
    else:
        assert result.pricing == "greedy" and not result.exact


def test_against_opponents_time_limit_gives_honest_bounds() -> None:
    """A tiny budget stops the solver: the bounds still hold and the result says so."""
    rng = np.random.default_rng(4)
    model = ua.RankingPopulation(np.argsort(rng.random((40, 9)), axis=1))
    best = ua.solve_committee(model, 3, "uniform", opponent_k=2)
    assert best.converged
    stopped = ua.solve_committee(model, 3, "uniform", opponent_k=2, time_limit=1e-6)
    assert stopped.lower_bound <= best.upper_bound + 1e-12
    assert stopped.upper_bound >= best.lower_bound - 1e-12
    assert not stopped.converged and not stopped.exact and stopped.pricing.endswith("(stopped by the time limit)")


def test_opponent_k_bad_input() -> None:
    model, _, _ = population(1)
    with pytest.raises(ValueError, match="^opponent_k"):
        ua.solve_committee(model, 2, opponent_k=0)
    with pytest.raises(TypeError, match="^opponent_k"):
        ua.solve_committee(model, 2, opponent_k=2.0)
    with pytest.raises(TypeError, match="^opponent_k"):
        ua.solve_committee(model, 2, opponent_k=True)


THREADS_SCRIPT = """
import sys
import numpy as np
import ualign as ua

rng = np.random.default_rng(8)
# enough voters for the parallel kernels (the uniform-tie value tables included)
model = ua.RankingPopulation(rng.integers(0, 4, size=(4400, 5)), rng.random(4400))
result = ua.solve_committee(model, 3, "uniform", opponent_k=2)
out = {"level": np.r_[result.robust_level, result.upper_bound], "policy": result.policy.probabilities,
       "committees": np.concatenate(result.policy.multisets)}
np.savez(sys.argv[1], **out)
"""


def test_against_opponents_thread_count_does_not_change_any_bit(tmp_path: Path) -> None:
    results = outputs_by_thread_count(tmp_path, THREADS_SCRIPT, (1, 2))
    for key, value in results[1].items():
        assert value.tobytes() == results[2][key].tobytes(), key


def test_local_search_from_the_masters_committees_saves_exact_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """When greedy finds no improving column, best-swap local search from the master's
    committees finds the ones it missed: the solve needs fewer branch-and-bound
    searches than without those starts and certifies the same gap."""
    rng = np.random.default_rng(5)
    model = ua.RankingPopulation.from_orders(np.argsort(rng.random((60, 30)), axis=1))
    searches: list = []
    exact = committee_module._RankingPricer.exact

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        searches.append(1)
        return exact(self, *args, **kwargs)

    monkeypatch.setattr(committee_module._RankingPricer, "exact", counted)
    runs = {}
    default = committee_module._LOCAL_STARTS
    for starts in (default, 0):
        monkeypatch.setattr(committee_module, "_LOCAL_STARTS", starts)
        searches.clear()
        result = ua.solve_committee(model, 5, tol=1e-3, time_limit=60.0)
        assert result.converged and result.gap <= 1e-3
        runs[starts] = len(searches)
    assert runs[default] < runs[0]
