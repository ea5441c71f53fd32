"""Every public function of RankingPopulation and ualign.game against the
brute-force oracle (tests/oracle.py) on many random small instances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import oracle
import ualign as ua
from helpers import OPERAND_KINDS, max_k, random_instance, random_operand, random_policy, to_ua

ATOL = 1e-12
TIES = ("uniform", "half", "strict", "weak")
SEEDS = range(40)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------
# utilities, beats, pairwise
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_utilities(seed):
    rng, ranks, weights = random_instance(seed)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        k = int(rng.integers(1, 7))
        pi = random_policy(rng, m)
        u = model.utilities(pi, k, ties)
        assert u.shape == (m,) and u.dtype == np.float64
        close(u, oracle.utilities(ranks, weights, pi, k, ties))
    # default convention is "uniform"
    pi = random_policy(rng, m)
    close(model.utilities(pi, 2), oracle.utilities(ranks, weights, pi, 2, "uniform"))


@pytest.mark.parametrize("kind", OPERAND_KINDS)
@pytest.mark.parametrize("seed", range(12))
def test_beats(seed, kind):
    rng, ranks, weights = random_instance(1000 + seed)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        operand = random_operand(rng, m, kind, budget=250)
        b = model.beats(to_ua(operand), ties)
        assert b.shape == (m,)
        close(b, oracle.beats(ranks, weights, operand, ties))


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise(seed):
    _, ranks, weights = random_instance(2000 + seed)
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        p = model.pairwise(ties)
        assert p.shape == (ranks.shape[1],) * 2
        close(p, oracle.pairwise(ranks, weights, ties))
    close(model.pairwise(), oracle.pairwise(ranks, weights, "uniform"))


# ---------------------------------------------------------------------------
# win_rate: every operand kind on each side
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind_b", OPERAND_KINDS)
@pytest.mark.parametrize("kind_a", OPERAND_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_win_rate_every_kind(seed, kind_a, kind_b):
    rng, ranks, weights = random_instance(3000 + 97 * seed + 7 * OPERAND_KINDS.index(kind_a)
                                          + OPERAND_KINDS.index(kind_b))
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        a = random_operand(rng, m, kind_a)
        b = random_operand(rng, m, kind_b)
        value = model.win_rate(to_ua(a), to_ua(b), ties)
        assert isinstance(value, float)
        close(value, oracle.win_rate(ranks, weights, a, b, ties))


@pytest.mark.parametrize("seed", range(30))
def test_win_rate_products_and_mixtures(seed):
    """Products of different k against each other and against mixtures."""
    rng, ranks, weights = random_instance(4000 + seed, m_max=4)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        ka, kb = (int(v) for v in rng.integers(1, max_k(m, 40) + 1, size=2))
        a = oracle.prod(random_policy(rng, m), ka)
        b = oracle.mix([random_policy(rng, m) for _ in range(2)], random_policy(rng, 2), kb)
        close(model.win_rate(to_ua(a), to_ua(b), ties), oracle.win_rate(ranks, weights, a, b, ties))
        close(model.win_rate(to_ua(b), to_ua(a), ties), oracle.win_rate(ranks, weights, b, a, ties))


def test_win_rate_numpy_scalars_and_arrays():
    ranks = np.array([[0, 1, 1], [2, 0, 1], [1, 1, 0]])
    model = ua.RankingPopulation(ranks, [1, 2, 3])
    for ties in TIES:
        close(model.win_rate(np.int64(2), np.array([0, 0, 1]), ties),
              oracle.win_rate(ranks, [1, 2, 3], 2, [0, 0, 1], ties))
        close(model.win_rate(np.array(1), (0,), ties), oracle.win_rate(ranks, [1, 2, 3], 1, [0], ties))
        close(model.win_rate(np.array([], dtype=np.int64), [], ties),
              oracle.win_rate(ranks, [1, 2, 3], [], [], ties))


def test_empty_multisets():
    ranks = np.array([[0, 1], [1, 0], [0, 0]])
    model = ua.RankingPopulation(ranks)
    expected_empty_vs_empty = {"uniform": 0.5, "half": 0.5, "strict": 0.0, "weak": 1.0}
    for ties in TIES:
        assert model.win_rate([], [], ties) == expected_empty_vs_empty[ties]
        assert model.win_rate([], 0, ties) == 0.0
        assert model.win_rate([0], [], ties) == 1.0
        np.testing.assert_array_equal(model.beats([], ties), [1.0, 1.0])
        # a policy that is empty with probability 1/2
        policy = ua.MultisetPolicy([[], [1, 1]], [0.5, 0.5])
        close(model.win_rate(policy, [], ties),
              oracle.win_rate(ranks, None, oracle.multi([[], [1, 1]], [0.5, 0.5]), [], ties))


# ---------------------------------------------------------------------------
# game quantities
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_robust_level_vector(seed):
    rng, ranks, weights = random_instance(5000 + seed)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        k = int(rng.integers(1, max_k(m, 200) + 1))
        pi = random_policy(rng, m)
        expected = oracle.robust_level(ranks, weights, pi, k, ties)
        close(ua.robust_level(model, pi, k, ties), expected)
        close(ua.robust_level(model, ua.Product(pi, k), None, ties), expected)
        close(ua.robust_level(model, ua.Product(pi, k), k, ties), expected)
        y, value = ua.worst_case_opponent(model, pi, k, ties)
        close(value, expected)
        close(oracle.win_rate(ranks, weights, oracle.prod(pi, k), y, ties), expected)


@pytest.mark.parametrize("kind", ("multiset_policy", "mixture"))
@pytest.mark.parametrize("seed", range(15))
def test_robust_level_multi_output(seed, kind):
    rng, ranks, weights = random_instance(6000 + seed)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        operand = random_operand(rng, m, kind, budget=200)
        expected = oracle.robust_level(ranks, weights, operand, None, ties)
        close(ua.robust_level(model, to_ua(operand), None, ties), expected)
        y, value = ua.worst_case_opponent(model, to_ua(operand), None, ties)
        close(value, expected)
        close(oracle.win_rate(ranks, weights, operand, y, ties), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_best_response_and_exploitability(seed):
    rng, ranks, weights = random_instance(7000 + seed)
    m = ranks.shape[1]
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        k = int(rng.integers(1, 7))
        pi = random_policy(rng, m)
        u = oracle.utilities(ranks, weights, pi, k, ties)
        y, value = ua.best_response(model, pi, k, ties)
        assert isinstance(y, int) and 0 <= y < m
        close(value, u.max())
        close(u[y], u.max())
        close(ua.exploitability(model, pi, k, ties), oracle.exploitability(ranks, weights, pi, k, ties))
        assert ua.exploitability(model, pi, k, ties) >= -ATOL


def test_best_response_smallest_index_on_exact_ties():
    # responses 1 and 3 are identical for every voter, and both are the best deviation
    ranks = np.array([[2, 0, 3, 0], [1, 0, 2, 0], [0, 1, 1, 1]])
    model = ua.RankingPopulation(ranks, [1.0, 2.0, 0.5])
    for ties in TIES:
        y, value = ua.best_response(model, [0.7, 0.0, 0.3, 0.0], 3, ties)
        u = oracle.utilities(ranks, [1.0, 2.0, 0.5], [0.7, 0.0, 0.3, 0.0], 3, ties)
        assert y == int(np.flatnonzero(np.isclose(u, u.max(), rtol=0, atol=1e-13))[0])
        close(value, u.max())


# ---------------------------------------------------------------------------
# larger k against exact closed forms (the oracle would enumerate m^k tuples)
# ---------------------------------------------------------------------------
def _best_count_law(row, policy, k):
    """{(best rank, count at best): probability} for k draws, by the multinomial law."""
    law = {}
    for r in sorted(set(row)):
        E = math.fsum(p for p, v in zip(policy, row) if v == r)
        L = math.fsum(p for p, v in zip(policy, row) if v > r)
        for c in range(1, k + 1):
            value = math.comb(k, c) * E ** c * L ** (k - c)
            if value:
                law[(r, c)] = value
    return law


def _product_vs_product(ranks, weights, pa, ka, pb, kb, ties):
    w = np.full(len(ranks), 1.0 / len(ranks)) if weights is None else np.asarray(weights, float) / np.sum(weights)
    total = []
    for wi, row in zip(w, np.asarray(ranks).tolist()):
        la, lb = _best_count_law(row, pa, ka), _best_count_law(row, pb, kb)
        for (ra, ca), qa in la.items():
            for (rb, cb), qb in lb.items():
                v = 1.0 if ra < rb else 0.0 if ra > rb else oracle.tie_value(ca, cb, ties)
                total.append(wi * qa * qb * v)
    return math.fsum(total)


@pytest.mark.parametrize("k", [7, 12, 25, 60])
def test_large_k_against_multinomial_law(k):
    rng = np.random.default_rng(k)
    ranks = np.array([[0, 1, 1, 2], [3, 3, 0, 1], [0, 0, 0, 0], [5, 1, 9, 1]])
    weights = rng.random(4)
    model = ua.RankingPopulation(ranks, weights)
    for ties in TIES:
        pa, pb = random_policy(rng, 4, zeros=False), random_policy(rng, 4)
        kb = int(rng.integers(1, k + 1))
        expected = _product_vs_product(ranks, weights, pa, k, pb, kb, ties)
        close(model.win_rate(ua.Product(pa, k), ua.Product(pb, kb), ties), expected)
        # utilities: y against pi^k is the k = 1 point mass against a product
        u = model.utilities(pb, k, ties)
        for y in range(4):
            e_y = np.eye(4)[y]
            close(u[y], _product_vs_product(ranks, weights, e_y, 1, pb, k, ties))


def test_large_k_sanity_against_small_enumeration():
    """The multinomial-law helper itself agrees with the enumerating oracle."""
    rng = np.random.default_rng(0)
    ranks = np.array([[0, 1, 1], [2, 2, 0]])
    for ties in TIES:
        pa, pb = random_policy(rng, 3), random_policy(rng, 3)
        close(_product_vs_product(ranks, [1, 3], pa, 3, pb, 2, ties),
              oracle.win_rate(ranks, [1, 3], oracle.prod(pa, 3), oracle.prod(pb, 2), ties))


# ---------------------------------------------------------------------------
# constructors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_from_orders(seed):
    rng = np.random.default_rng(8000 + seed)
    n, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    dtype = ["int64", "int32", "uint8", "uint16", "uint32", "int16"][seed % 6]
    orders = np.stack([rng.permutation(m) for _ in range(n)]).astype(dtype)
    weights = [None, rng.random(n)][seed % 2]
    model = ua.RankingPopulation.from_orders(orders, weights)
    ranks = oracle.ranks_from_orders(orders)
    assert model.n_voters == n and model.n_responses == m
    np.testing.assert_array_equal(model.ranks, ranks)
    close(model.pairwise(), oracle.pairwise(ranks, weights))
    pi = random_policy(rng, m)
    for ties in TIES:
        close(model.utilities(pi, 2, ties), oracle.utilities(ranks, weights, pi, 2, ties))
    # nested lists are accepted as well
    np.testing.assert_array_equal(ua.RankingPopulation.from_orders(orders.tolist()).ranks, ranks)


@pytest.mark.parametrize("seed", range(20))
def test_from_scores(seed):
    rng = np.random.default_rng(9000 + seed)
    n, m = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    scores = rng.choice(np.array([-2.5, 0.0, 1.0, 3.75, 1e12, -7.0]), size=(n, m))
    if seed % 3 == 1:
        scores = scores.astype(np.float32)
    elif seed % 3 == 2:
        scores = rng.integers(-3, 3, size=(n, m))  # integer scores with ties
    weights = [None, rng.random(n) + 0.1][seed % 2]
    model = ua.RankingPopulation.from_scores(scores, weights)
    # higher score is better: the oracle's ranks are the negated scores
    ranks = -np.asarray(scores, dtype=np.float64)
    np.testing.assert_array_equal(model.ranks, oracle.dense_levels(scores, higher_is_better=True))
    for ties in TIES:
        close(model.pairwise(ties), oracle.pairwise(ranks, weights, ties))
        pi = random_policy(rng, m)
        close(model.utilities(pi, 3, ties), oracle.utilities(ranks, weights, pi, 3, ties))


@pytest.mark.parametrize("seed", range(10))
def test_ranks_are_dense_levels(seed):
    _, ranks, weights = random_instance(9500 + seed)
    model = ua.RankingPopulation(ranks, weights)
    np.testing.assert_array_equal(model.ranks, oracle.dense_levels(ranks))
    assert model.n_voters == ranks.shape[0] and model.n_responses == ranks.shape[1]


def test_signed_zero_and_extreme_integer_ranks():
    ranks = np.array([[0.0, -0.0, 1.0], [np.finfo(float).max, -np.finfo(float).max, 0.0]])
    model = ua.RankingPopulation(ranks)
    np.testing.assert_array_equal(model.ranks, [[0, 0, 1], [2, 0, 1]])
    big = np.array([[np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0]])
    np.testing.assert_array_equal(ua.RankingPopulation(big).ranks, [[0, 2, 1]])
    for ties in TIES:
        close(ua.RankingPopulation(big).pairwise(ties), oracle.pairwise(big, None, ties))


def test_integer_scores_beyond_float_precision_do_not_tie():
    """Distinct integer scores must not be merged into a tie (2**53 and 2**53 + 1
    are equal as float64)."""
    scores = np.array([[2**53, 2**53 + 1, 0]], dtype=np.int64)
    model = ua.RankingPopulation.from_scores(scores)
    np.testing.assert_array_equal(model.ranks, [[1, 0, 2]])


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-300, 1e-10, 1.0, 1e10, 1e300])
def test_weight_scale_invariance(scale):
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 3, size=(6, 4))
    w = rng.random(6)
    reference = ua.RankingPopulation(ranks, w)
    scaled = ua.RankingPopulation(ranks, w * scale)
    pi = random_policy(rng, 4)
    for ties in TIES:
        close(scaled.utilities(pi, 3, ties), reference.utilities(pi, 3, ties))
        close(scaled.pairwise(ties), reference.pairwise(ties))
        close(scaled.utilities(pi, 3, ties), oracle.utilities(ranks, w, pi, 3, ties))


def test_huge_finite_weights_are_accepted():
    """Finite weights whose sum overflows float64 are still a valid distribution."""
    ranks = np.array([[0, 1], [1, 0], [0, 0]])
    big = np.finfo(np.float64).max / 2
    model = ua.RankingPopulation(ranks, [big, big, big])
    np.testing.assert_allclose(model.weights, [1 / 3] * 3, rtol=0, atol=1e-15)
    for ties in TIES:
        close(model.pairwise(ties), oracle.pairwise(ranks, None, ties))


def test_zero_weight_voters_are_ignored():
    ranks = np.array([[0, 1, 2], [2, 1, 0], [1, 0, 2]])
    full = ua.RankingPopulation(ranks, [1.0, 0.0, 2.0])
    dropped = ua.RankingPopulation(ranks[[0, 2]], [1.0, 2.0])
    pi = [0.2, 0.3, 0.5]
    for ties in TIES:
        close(full.utilities(pi, 4, ties), dropped.utilities(pi, 4, ties))
        close(full.pairwise(ties), dropped.pairwise(ties))


# ---------------------------------------------------------------------------
# degenerate sizes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("ties", TIES)
def test_single_response(ties):
    model = ua.RankingPopulation([[3], [3]])
    tie = oracle.tie_value(1, 4, ties)
    close(model.utilities([1.0], 4, ties), [tie])
    close(model.pairwise(ties), [[oracle.tie_value(1, 1, ties)]])
    close(ua.robust_level(model, [1.0], 4, ties), oracle.tie_value(4, 1, ties))
    assert ua.best_response(model, [1.0], 4, ties)[0] == 0
    close(ua.exploitability(model, [1.0], 4, ties), 0.0)


@pytest.mark.parametrize("ties", TIES)
def test_single_voter_product_against_itself(ties):
    ranks = np.array([[0, 1, 1, 2]])
    pi = [0.1, 0.2, 0.3, 0.4]
    for ka, kb in itertools.product([1, 2, 3], repeat=2):
        close(ua.RankingPopulation(ranks).win_rate(ua.Product(pi, ka), ua.Product(pi, kb), ties),
              oracle.win_rate(ranks, None, oracle.prod(pi, ka), oracle.prod(pi, kb), ties))


# ---------------------------------------------------------------------------
# wide populations (uint16 / uint32 level storage) against the closed forms of
# docs/concepts.md ("Tie conventions": L^k, (L+E)^k, ...), evaluated independently with numpy
# ---------------------------------------------------------------------------
def _closed_form_utilities(ranks, weights, pi, k, ties):
    ranks = np.asarray(ranks)
    w = np.ones(len(ranks)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    total = np.zeros(ranks.shape[1])
    for wi, row in zip(w, ranks):
        order = np.argsort(row, kind="stable")
        sorted_rows, sorted_pi = row[order], np.asarray(pi)[order]
        first = np.searchsorted(sorted_rows, row, side="left")
        last = np.searchsorted(sorted_rows, row, side="right")
        cumulative = np.concatenate([[0.0], np.cumsum(sorted_pi)])
        L = cumulative[-1] - cumulative[last]          # mass strictly worse than y
        E = cumulative[last] - cumulative[first]        # mass tied with y
        if ties == "strict":
            v = L ** k
        elif ties == "weak":
            v = (L + E) ** k
        elif ties == "half":
            v = (L ** k + (L + E) ** k) / 2
        else:
            v = sum((L + E) ** j * L ** (k - j) for j in range(k + 1)) / (k + 1)
        total += wi * v
    return total


@pytest.mark.parametrize("m", [257, 300, 70_000])
def test_wide_populations(m):
    rng = np.random.default_rng(m)
    ranks = np.stack([rng.permutation(m), rng.integers(0, 5, size=m), rng.integers(0, m // 2, size=m)])
    weights = [1.0, 2.5, 0.5]
    model = ua.RankingPopulation(ranks, weights)
    pi = random_policy(rng, m)
    for ties in TIES:
        close(model.utilities(pi, 3, ties), _closed_form_utilities(ranks, weights, pi, 3, ties))
    members = [int(v) for v in rng.integers(0, m, size=3)]
    if m <= 300:
        for ties in TIES:
            close(model.beats(members, ties), oracle.beats(ranks, weights, members, ties))
            less = np.einsum("i,iyz->yz", np.array(weights) / 4.0, (ranks[:, :, None] < ranks[:, None, :]) * 1.0)
            tied = 1.0 - less - less.T
            expected = {"strict": less, "weak": less + tied, "half": less + tied / 2, "uniform": less + tied / 2}
            close(model.pairwise(ties), expected[ties])
    order = np.argsort(ranks, axis=1, kind="stable")
    np.testing.assert_array_equal(ua.RankingPopulation.from_orders(order[:1]).ranks[0], np.argsort(order[0]))


@pytest.mark.parametrize("seed", range(5))
def test_closed_form_reference_agrees_with_oracle(seed):
    rng, ranks, weights = random_instance(9900 + seed)
    pi = random_policy(rng, ranks.shape[1])
    for ties in TIES:
        close(_closed_form_utilities(ranks, weights, pi, 4, ties), oracle.utilities(ranks, weights, pi, 4, ties))


@pytest.mark.parametrize("m", list(range(6, 41)) + [63, 64, 65, 127, 128, 129])
def test_many_levels(m):
    """Every number of levels around the kernels' block sizes (16 levels, 8 segments),
    with and without ties, against the closed forms and the oracle."""
    rng = np.random.default_rng(10_000 + m)
    ranks = np.stack([rng.permutation(m),                       # m levels, no ties
                      rng.integers(0, max(1, m - 1), size=m),   # ties
                      rng.integers(0, 3, size=m) * 7,           # few levels
                      np.arange(m)[::-1]])
    weights = rng.random(4) + 0.1
    model = ua.RankingPopulation(ranks, weights)
    for k in (1, 2, 5):
        pi = random_policy(rng, m)
        for ties in TIES:
            close(model.utilities(pi, k, ties), _closed_form_utilities(ranks, weights, pi, k, ties))
    members = [int(v) for v in rng.integers(0, m, size=4)]
    policy = oracle.multi([members[:2], members, [], members[1:3]], [0.25, 0.25, 0.25, 0.25])
    for ties in TIES:
        close(model.beats(members, ties), oracle.beats(ranks, weights, members, ties))
        close(model.beats(to_ua(policy), ties), oracle.beats(ranks, weights, policy, ties))
        close(model.win_rate(to_ua(policy), members[0], ties),
              oracle.win_rate(ranks, weights, policy, members[0], ties))


@pytest.mark.parametrize("m", [9, 17, 33])
def test_many_levels_products(m):
    rng = np.random.default_rng(11_000 + m)
    ranks = np.stack([rng.permutation(m), rng.integers(0, m // 2, size=m)])
    model = ua.RankingPopulation(ranks, [0.3, 0.7])
    for ties in TIES:
        pa, pb = random_policy(rng, m), random_policy(rng, m)
        ka, kb = (int(v) for v in rng.integers(1, 5, size=2))
        close(model.win_rate(ua.Product(pa, ka), ua.Product(pb, kb), ties),
              _product_vs_product(ranks, [0.3, 0.7], pa, ka, pb, kb, ties))
