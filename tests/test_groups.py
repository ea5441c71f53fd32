"""Voter groups: every group's level against the brute-force oracle on the group
alone, the worst-group columns of audit_many, and the group-robust optimum of
solve_optimal against an exact LP (k = 1) and a fine grid, with its certificate."""

from __future__ import annotations

import numpy as np
import oracle
import pytest
from helpers import random_instance, random_policy

import ualign as ua
from ualign.audit import audit_columns
from ualign.groups import group_levels

TIES = ("uniform", "half", "strict", "weak")


@pytest.mark.parametrize("seed", range(10))
def test_group_levels_equal_the_oracle_on_each_group(seed: int) -> None:
    rng, ranks, weights = random_instance(seed, n_max=6, m_max=4)
    n, m = ranks.shape
    labels = rng.choice(np.array(["a", "b", "c"]), size=n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    present = [g for g in np.unique(labels) if w[labels == g].sum() > 0]
    if len(present) < len(np.unique(labels)):
        with pytest.raises(ValueError, match="^groups: group"):
            group_levels(ua.RankingPopulation(ranks, weights), random_policy(rng, m), 2, labels)
        return
    population = ua.RankingPopulation(ranks, weights)
    pi = random_policy(rng, m)
    ties = TIES[seed % 4]
    result = group_levels(population, pi, [1, 2, 3], labels, ties)
    assert list(result.groups) == sorted(present)
    for g, label in enumerate(result.groups):
        members = labels == label
        for j, k in enumerate([1, 2, 3]):
            expected = oracle.robust_level(ranks[members], w[members], pi, k, ties)
            assert result.levels[g, j] == pytest.approx(expected, abs=1e-12)
    assert np.array_equal(result.worst_level, result.levels.min(axis=0))


def test_group_levels_of_a_committee_and_of_plackett_luce_types() -> None:
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 3, size=(6, 4))
    labels = np.array([0, 0, 1, 1, 1, 0])
    rho = ua.MultisetPolicy([[0, 2], [1, 1]], [0.3, 0.7])
    result = group_levels(ua.RankingPopulation(ranks), rho, 2, labels, "weak")
    for g in (0, 1):
        expected = oracle.robust_level(ranks[labels == g], None, oracle.multi([[0, 2], [1, 1]], [0.3, 0.7]),
                                       None, "weak")
        assert result.levels[g, 0] == pytest.approx(expected, abs=1e-12)
    rewards = rng.normal(size=(3, 4))
    mixture = ua.PlackettLuceMixture(rewards, [0.2, 0.5, 0.3])
    pi = random_policy(rng, 4)
    result = group_levels(mixture, pi, 3, ["x", "y", "x"])
    alone = ua.PlackettLuceMixture(rewards[[0, 2]], [0.2, 0.3])
    assert result.levels[0, 0] == pytest.approx(ua.robust_level(alone, pi, 3), abs=1e-14)


def test_audit_many_worst_group_columns() -> None:
    rng = np.random.default_rng(5)
    models = [ua.RankingPopulation(rng.integers(0, 4, size=(12, 5))) for _ in range(2)]
    groups = [rng.integers(0, 3, size=12), None]
    columns, _ = audit_columns(models, None, [1, 3], ["uniform", "mpne"], ties="weak", groups=groups)
    for row in range(columns["k"].shape[0]):
        p, k, method = columns["prompt"][row], int(columns["k"][row]), columns["method"][row]
        if p == 1:
            assert columns["worst_group"][row] is None and np.isnan(columns["worst_group_level"][row])
            continue
        pi = (np.full(5, 0.2) if method == "uniform"
              else ua.solve_mpne(models[0], k, ties="strict").policy)
        result = group_levels(models[0], pi, k, groups[0], "weak")
        assert columns["worst_group"][row] == result.worst_group[0]
        assert columns["worst_group_level"][row] == pytest.approx(result.worst_level[0], abs=1e-9)
    with pytest.raises(ValueError, match=r"^groups\[0\]"):
        audit_columns(models, None, [1], groups=[np.zeros(3), None])


# -- the group-robust optimum ------------------------------------------------------------------------

def polarised(majority: int = 8, minority: int = 2) -> tuple:
    """A majority ranking 0 > 1 > 2 > 3 and a minority ranking 3 > 2 > 1 > 0."""
    ranks = np.array([[0, 1, 2, 3]] * majority + [[3, 2, 1, 0]] * minority)
    return ua.RankingPopulation(ranks), np.array(["majority"] * majority + ["minority"] * minority)


def grid_best(model, labels, k: int, ties: str, step: int) -> float:
    """max over a grid of the simplex (m = 3) of the worst group's level."""
    best = 0.0
    for a in range(step + 1):
        for b in range(step + 1 - a):
            pi = np.array([a, b, step - a - b]) / step
            best = max(best, float(group_levels(model, pi, k, labels, ties).worst_level[0]))
    return best


@pytest.mark.parametrize("ties", TIES)
def test_group_optimum_at_k1_is_the_exact_lp(ties: str) -> None:
    from scipy.optimize import linprog

    rng = np.random.default_rng(7)
    ranks = rng.integers(0, 3, size=(9, 4))
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    model = ua.RankingPopulation(ranks)
    result = ua.solve_optimal(model, 1, ties=ties, groups=labels, tol=1e-10)
    # max t s.t. sum_z pi_z P_g[z > y] >= t for every group g and response y
    rows = [oracle.pairwise(ranks[labels == g], None, ties).T for g in range(3)]
    A = np.vstack(rows)
    c = np.zeros(5)
    c[-1] = -1.0
    lp = linprog(c, A_ub=np.hstack([-A, np.ones((A.shape[0], 1))]), b_ub=np.zeros(A.shape[0]),
                 A_eq=[[1, 1, 1, 1, 0]], b_eq=[1], bounds=[(0, None)] * 4 + [(None, None)], method="highs")
    assert result.robust_level == pytest.approx(-lp.fun, abs=1e-9)
    assert result.upper_bound >= -lp.fun - 1e-12 and result.gap <= 1e-9


@pytest.mark.parametrize("ties", ["uniform", "weak"])
def test_group_optimum_beats_a_fine_grid_and_is_certified(ties: str) -> None:
    ranks = np.array([[0, 1, 2], [0, 1, 2], [0, 2, 1], [2, 1, 0], [1, 0, 2]])
    labels = np.array([0, 0, 0, 1, 1])
    model = ua.RankingPopulation(ranks)
    result = ua.solve_optimal(model, 2, ties=ties, groups=labels, tol=1e-9)
    best = grid_best(model, labels, 2, ties, step=60)
    assert result.robust_level >= best - 1e-12
    assert result.upper_bound >= result.robust_level and result.gap <= 1e-9
    # the reported level is the worst group's, re-checked by the exact kernels
    levels = group_levels(model, result.policy, 2, labels, ties)
    assert result.robust_level == levels.worst_level[0]
    assert np.array_equal(result.group_levels, levels.levels[:, 0])


def test_group_robust_policy_lifts_the_minority() -> None:
    model, labels = polarised()
    k = 2
    pooled = ua.solve_optimal(model, k, ties="weak")
    robust = ua.solve_optimal(model, k, ties="weak", groups=labels)
    before = group_levels(model, pooled.policy, k, labels, "weak")
    after = group_levels(model, robust.policy, k, labels, "weak")
    minority = list(before.groups).index("minority")
    assert before.levels[minority, 0] < 0.35  # far below k/(k+1) = 2/3
    assert after.levels[minority, 0] > before.levels[minority, 0] + 0.2
    assert robust.converged and robust.robust_level == after.worst_level[0]
