"""Summation over ~10^6 voters stays accurate to 1e-12 (exact answers known from a
few voter types whose weights are summed with math.fsum)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oracle
import ualign as ua

ATOL = 1e-12
N = 1_000_000
TYPES = np.array([[0, 1, 1, 2, 3, 3],
                  [3, 3, 2, 1, 0, 0],
                  [0, 0, 0, 0, 0, 0],
                  [5, 4, 3, 2, 1, 0],
                  [1, 0, 1, 0, 1, 0]], dtype=np.uint8)
PI = np.array([0.05, 0.25, 0.1, 0.3, 0.0, 0.3])
SIGMA = np.array([0.4, 0.0, 0.2, 0.1, 0.2, 0.1])


@pytest.fixture(scope="module")
def population():
    """10^6 voters of the 5 types, in random order, with weights over 12 orders of magnitude."""
    rng = np.random.default_rng(123)
    types = rng.integers(0, len(TYPES), size=N)
    weights = 10.0 ** rng.uniform(-6, 6, size=N)
    weights[rng.random(N) < 0.01] = 0.0
    # exact mixture weight of each type (math.fsum is correctly rounded)
    total = math.fsum(weights)
    type_weights = np.array([math.fsum(weights[types == t]) / total for t in range(len(TYPES))])
    return ua.RankingPopulation(TYPES[types], weights), type_weights


def _expected(type_weights, per_type):
    return np.array([math.fsum(w * v for w, v in zip(type_weights, column)) for column in np.array(per_type).T])


@pytest.mark.parametrize("ties", ua.TIES)
def test_many_weighted_voters(population, ties):
    model, type_weights = population
    assert model.n_voters == N

    def check(actual, per_type):
        np.testing.assert_allclose(actual, _expected(type_weights, per_type), rtol=0, atol=ATOL)

    check(model.utilities(PI, 3, ties), [oracle.utilities(row[None], None, PI, 3, ties) for row in TYPES])
    check(model.beats([1, 3, 3], ties), [oracle.beats(row[None], None, [1, 3, 3], ties) for row in TYPES])
    check(model.pairwise(ties).ravel(), [oracle.pairwise(row[None], None, ties).ravel() for row in TYPES])
    check([model.win_rate(ua.Product(PI, 2), ua.Product(SIGMA, 2), ties)],
          [[oracle.win_rate(row[None], None, oracle.prod(PI, 2), oracle.prod(SIGMA, 2), ties)] for row in TYPES])


@pytest.fixture(scope="module")
def identical():
    return ua.RankingPopulation(np.broadcast_to(TYPES[0], (N, TYPES.shape[1])))


@pytest.mark.parametrize("ties", ua.TIES)
def test_many_identical_voters(identical, ties):
    """10^6 copies of one voter with uniform weights give the one-voter value. (Adding
    10^6 equal terms 1e-6 * v one after the other is off by up to ~1e-11 here: this
    fails a plain running sum.)"""
    model = identical
    expected = oracle.utilities(TYPES[:1], None, PI, 4, ties)
    np.testing.assert_allclose(model.utilities(PI, 4, ties), expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(model.pairwise(ties), oracle.pairwise(TYPES[:1], None, ties), rtol=0, atol=ATOL)
    assert math.isclose(model.win_rate([0, 2], ua.Product(SIGMA, 3), ties),
                        oracle.win_rate(TYPES[:1], None, [0, 2], oracle.prod(SIGMA, 3), ties),
                        rel_tol=0, abs_tol=ATOL)


def test_uniform_identities_at_scale(population):
    model, _ = population
    for k in (1, 2, 7):
        assert math.isclose(float(np.dot(PI, model.utilities(PI, k))), 1 / (k + 1), rel_tol=0, abs_tol=ATOL)
        assert math.isclose(model.win_rate(ua.Product(SIGMA, k), ua.Product(SIGMA, 1)), k / (k + 1),
                            rel_tol=0, abs_tol=ATOL)
    p = model.pairwise()
    np.testing.assert_allclose(p + p.T, 1.0, rtol=0, atol=ATOL)


LARGE_K_SCRIPT = """
import numpy as np, ualign as ua
model = ua.RankingPopulation([[0, 1, 1], [2, 0, 1], [0, 0, 0]], [1.0, 2.0, 0.5])
pi = [0.2, 0.3, 0.5]
print(repr(model.win_rate(ua.Product(pi, {k_pair}), ua.Product(pi, 1))))
print(repr(float(np.dot(pi, model.utilities(pi, {k})))))
"""


@pytest.mark.parametrize("k", [10**5, 10**7])
def test_large_k_is_fast_and_exact(tmp_path, k):
    """P[pi^k > pi] = k/(k+1) and sum_y pi(y) u_y(pi) = 1/(k+1) (uniform ties) for
    large k, computed in seconds: large k must not hang. Uniform-tie win rates
    between two multi-draw operands are exact up to 10,000 draws in total (their
    quadrature grows with the draws), so the pair is checked at 9,999 + 1 draws;
    utilities take any k. Run in a subprocess so a slow kernel cannot stall the suite."""
    import subprocess
    import sys

    k_pair = 9999
    try:
        result = subprocess.run([sys.executable, "-c", LARGE_K_SCRIPT.format(k=k, k_pair=k_pair)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=20, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"win_rate / utilities with large k on a 3 x 3 population took more than 20 s")
    win, average = (float(line) for line in result.stdout.split())
    assert math.isclose(win, k_pair / (k_pair + 1), rel_tol=0, abs_tol=ATOL)
    assert math.isclose(average, 1 / (k + 1), rel_tol=0, abs_tol=ATOL)


def test_uniform_win_rate_beyond_exact_quadrature_is_refused():
    model = ua.RankingPopulation([[0, 1, 1], [2, 0, 1]])
    pi = [0.2, 0.3, 0.5]
    with pytest.raises(ValueError, match=r"^a, b: .*10000 draws"):
        model.win_rate(ua.Product(pi, 10**4), ua.Product(pi, 1))
    # Other conventions need no counts and take any k.
    assert 0.0 <= model.win_rate(ua.Product(pi, 10**6), ua.Product(pi, 10**6), ties="half") <= 1.0
