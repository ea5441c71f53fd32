"""The paper's instances and the checks of its statements (ualign.instances),
and the Monte Carlo cross-check of the exact kernels."""

from __future__ import annotations

import numpy as np
import pytest

import ualign as ua
from ualign import instances


def weak_orders(seed: int, n: int = 25, m: int = 6) -> ua.RankingPopulation:
    rng = np.random.default_rng(seed)
    return ua.RankingPopulation(rng.integers(0, 4, size=(n, m)), rng.random(n) + 0.05)


@pytest.mark.parametrize("ties", ["uniform", "weak"])
def test_property_1_on_rankings(ties: str) -> None:
    """Prop. 2.2: a population of rankings satisfies Property 1 (the paper's ≿ and
    ualign's default convention)."""
    for seed in range(3):
        reports = instances.check_property_1(weak_orders(seed), ties, samples=25, seed=seed)
        assert all(report.holds for report in reports.values()), [str(r) for r in reports.values()]
        if ties == "uniform":  # P[pi^k ≻ pi] = k/(k+1) exactly
            assert abs(reports["multi vs single copy"].worst_slack) <= 1e-12


def test_property_1_2_fails_under_strict_ties() -> None:
    """With ties in the rankings, P[pi^k ≻ pi] >= k/(k+1) needs the tie to count:
    strictly better fails (why the paper's level is the weak one)."""
    reports = instances.check_property_1(weak_orders(1), "strict", samples=25)
    assert not reports["multi vs single copy"].holds
    assert reports["subadditivity"].holds and reports["DR-submodularity"].holds


def test_property_1_on_plackett_luce() -> None:
    rng = np.random.default_rng(3)
    model = ua.PlackettLuceMixture(rng.normal(size=(4, 5)), rng.random(4) + 0.1)
    reports = instances.check_property_1(model, samples=20)
    assert all(report.holds for report in reports.values())
    assert abs(reports["multi vs single copy"].worst_slack) <= 1e-12


@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_theorems_on_the_mpne(game: str) -> None:
    level_ties = "uniform" if game == "uniform" else "weak"
    for seed in range(2):
        model = weak_orders(10 + seed)
        for k in (1, 3, 5):
            report = instances.check_theorem_4_3(model, k, game)
            assert report.holds, str(report)
            pi = report.details["policy"]
            thm45 = instances.check_theorem_4_5(model, pi, k, ties=level_ties)
            assert thm45.holds and thm45.details["theorem_slack"] >= -1e-8
            d6 = instances.check_theorem_d6(model, pi, k, ells=(1, 2), ties=level_ties)
            assert d6.holds and d6.details["rate_slack"] >= -2e-8


def test_theorem_4_5_needs_nothing_but_lemma_d1() -> None:
    """The exact form f(pi, l) >= min(k,l)/k f(pi, k) holds for any policy."""
    model = weak_orders(4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        pi = rng.dirichlet(np.ones(model.n_responses))
        assert instances.check_theorem_4_5(model, pi, 3, ells=range(1, 7)).holds


def test_instances() -> None:
    eps = 0.2
    model = instances.prop_4_1_instance(eps)
    assert model.pairwise()[0, 1] == pytest.approx(0.5 + eps)
    perms = instances.prop_3_3_instance(4)
    assert perms.n_voters == 24 and perms.n_responses == 4
    assert instances.prop_3_3_bound(4, 3) == pytest.approx(0.75 * 1.25)
    clustered = instances.clustered_population(3, m=5, per_group=2)
    assert clustered.n_voters == 6 and clustered.n_responses == 5
    assert ua.robust_level(clustered, ua.MultisetPolicy([[0, 1, 2]], [1.0])) == pytest.approx(1 - 1 / 6)
    with pytest.raises(ValueError, match="eps"):
        instances.prop_4_1_instance(0.5)
    with pytest.raises(ValueError, match="m"):
        instances.prop_3_3_instance(9)
    with pytest.raises(ValueError, match="m"):
        instances.clustered_population(4, m=3)


def test_prop_3_2_instance() -> None:
    model = instances.prop_3_2_instance(3)
    assert model.n_responses == 4
    for S in ([0, 1, 2], [1, 1, 3], [2, 2, 2], [0, 0, 0]):   # W(S) = 3 W(y) for every 3-multiset S
        assert model.win_rate(S, 0) == pytest.approx(0.75, abs=1e-12)


def test_monte_carlo_covers_the_exact_kernels() -> None:
    model = weak_orders(7)
    m = model.n_responses
    rng = np.random.default_rng(2)
    pi, sigma = rng.dirichlet(np.ones(m)), rng.dirichlet(np.ones(m))
    pairs = [(ua.Product(pi, 3), 0), (ua.Product(pi, 2), ua.Product(sigma, 3)),
             (ua.MultisetPolicy([[0, 1], [2]], [0.3, 0.7]), ua.ProductMixture([pi, sigma], [0.5, 0.5], 2)),
             ([1, 1, 4], [2, 3])]
    for j, (a, b) in enumerate(pairs):
        for ties in ua.TIES:
            estimate = instances.monte_carlo_win_rate(model, a, b, ties, samples=40_000, seed=j)
            exact = model.win_rate(a, b, ties)
            assert estimate.covers(exact), (j, ties, estimate, exact)
            assert estimate.stderr < 0.01


def test_monte_carlo_on_plackett_luce() -> None:
    rng = np.random.default_rng(5)
    model = ua.PlackettLuceMixture(rng.normal(scale=3.0, size=(3, 5)), [0.2, 0.5, 0.3])
    pi = rng.dirichlet(np.ones(5))
    estimate = instances.monte_carlo_win_rate(model, ua.Product(pi, 3), [1, 2], samples=40_000, seed=1)
    assert estimate.covers(model.win_rate(ua.Product(pi, 3), [1, 2]))


def test_check_input() -> None:
    model = weak_orders(0)
    with pytest.raises(TypeError, match="model"):
        instances.check_property_1("population")
    with pytest.raises(ValueError, match="ells"):
        instances.check_theorem_d6(model, np.ones(6) / 6, 2, ells=(6,), limit=10)
    with pytest.raises(ValueError, match="samples"):
        instances.monte_carlo_win_rate(model, 0, 1, samples=0)
