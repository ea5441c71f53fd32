"""PlackettLuceMixture (docs/concepts.md, "Plackett–Luce products"): against 30-digit mpmath integrals and
brute-force enumeration, Property 1 and the §3 identities (hypothesis),
invariances, bad input, thread determinism, the vector-Jacobian product, and
fitting to rankings."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import oracle
import pl_oracle
import pl_reference
import ualign as ua
from helpers import OPERAND_KINDS, random_operand, random_policy, random_weights, to_ua

PL = ua.PlackettLuceMixture
ATOL = 1e-12


# ---------------------------------------------------------------------------
# 30-digit mpmath integrals: rewards over [-20, 20], k up to 64
# ---------------------------------------------------------------------------
TABLE = json.loads(pl_reference.TABLE.read_text())


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda c: f"seed{c['seed']}-m{c['m']}-k{c['k']}-l{c['l']}")
def test_against_mpmath_table(case):
    rewards, pi, sigma = pl_reference.instance(case["seed"], case["m"])
    model = PL(rewards[None, :])
    k, l = case["k"], case["l"]
    exact = np.array([float(mp.mpf(v)) for v in case["utilities"]])
    for ties in ua.TIES:
        np.testing.assert_allclose(model.utilities(pi, k, ties), exact, rtol=0, atol=ATOL)
    u, _ = model.utilities_vjp(pi, k, np.ones(case["m"]))
    np.testing.assert_allclose(u, exact, rtol=0, atol=ATOL)
    for y in range(case["m"]):
        assert abs(model.win_rate(y, ua.Product(pi, k)) - exact[y]) <= ATOL
        assert abs(model.win_rate(ua.Product(pi, k), y) - (1 - exact[y])) <= ATOL
    win = float(mp.mpf(case["product_win"]))
    assert abs(model.win_rate(ua.Product(pi, k), ua.Product(sigma, l)) - win) <= ATOL
    assert abs(model.win_rate(ua.Product(sigma, l), ua.Product(pi, k)) - (1 - win)) <= ATOL


def test_mpmath_table_is_reproducible_live():
    """Recompute two entries of the table with mpmath now (the table is not trusted blindly)."""
    for index, y in ((3, 1), (7, 5)):
        case = TABLE["cases"][index]
        rewards, pi, sigma = pl_reference.instance(case["seed"], case["m"])
        live = pl_reference.utility(rewards, pi, case["k"], y)
        with mp.workdps(pl_reference.DIGITS):
            assert abs(live - mp.mpf(case["utilities"][y])) < mp.mpf(10) ** -25
        assert abs(PL(rewards[None, :]).utilities(pi, case["k"])[y] - float(live)) <= ATOL


@pytest.mark.parametrize("k", [1, 64])
def test_many_responses_wide_spread(k):
    """m = 16 responses over [-20, 20]: the best and the worst response against
    mpmath, and the exact identity; then the same type inside a 3-type mixture."""
    rng = np.random.default_rng(k)
    rewards = rng.uniform(-20, 20, size=(3, 16))
    pi = random_policy(rng, 16)
    u = PL(rewards[:1]).utilities(pi, k)
    assert abs(float(pi @ u) - 1 / (k + 1)) <= ATOL
    for y in (int(np.argmax(rewards[0])), int(np.argmin(rewards[0]))):
        assert abs(u[y] - float(pl_reference.utility(rewards[0], pi, k, y))) <= ATOL
    weights = np.array([0.5, 0.2, 0.3])
    mixed = PL(rewards, weights).utilities(pi, k)
    parts = [PL(rewards[i:i + 1]).utilities(pi, k) for i in range(3)]
    np.testing.assert_allclose(mixed, sum(w * p for w, p in zip(weights, parts)), rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------
# brute-force enumeration (small k, m), every operand kind
# ---------------------------------------------------------------------------
def _instance(seed, n_max=3, m_max=4, spread=6.0):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, n_max + 1))
    m = int(rng.integers(1, m_max + 1))
    rewards = rng.uniform(-spread, spread, size=(n, m))
    if seed % 3 == 0 and m > 1:
        rewards[:, 1] = rewards[:, 0]  # equal rewards: still no ties in this model
    return rng, rewards, random_weights(rng, n)


@pytest.mark.parametrize("seed", range(16))
def test_against_enumeration(seed):
    rng, rewards, weights = _instance(seed)
    m = rewards.shape[1]
    model = PL(rewards, weights)
    pi = random_policy(rng, m)  # zero-probability responses included
    for k in (1, 2, 3):
        np.testing.assert_allclose(model.utilities(pi, k), pl_oracle.utilities(rewards, weights, pi, k),
                                   rtol=0, atol=ATOL)
    np.testing.assert_allclose(model.pairwise(), pl_oracle.pairwise(rewards, weights), rtol=0, atol=ATOL)
    for kind_a in OPERAND_KINDS:
        a = random_operand(rng, m, kind_a, budget=40)
        np.testing.assert_allclose(model.beats(to_ua(a)), pl_oracle.beats(rewards, weights, a), rtol=0, atol=ATOL)
        for kind_b in OPERAND_KINDS:
            b = random_operand(rng, m, kind_b, budget=40)
            expected = pl_oracle.win_rate(rewards, weights, a, b)
            assert abs(model.win_rate(to_ua(a), to_ua(b)) - expected) <= ATOL, (kind_a, kind_b)


def test_repeated_members_and_empty_multisets():
    rewards = np.array([[0.0, 1.0, -2.0], [3.0, -1.0, 0.5]])
    model = PL(rewards, [0.3, 0.7])
    for s, t in [([1, 1, 1], [0]), ([2, 2], [2]), ([0, 1, 1], [1, 2, 2, 2]), ([], [0]), ([0], []), ([], [])]:
        assert abs(model.win_rate(s, t) - pl_oracle.win_rate(rewards, [0.3, 0.7], s, t)) <= ATOL
    assert model.win_rate([], []) == 0.5
    assert model.win_rate([], ua.Product([0.2, 0.3, 0.5], 2)) == 0.0
    assert model.win_rate(ua.Product([0.2, 0.3, 0.5], 2), []) == 1.0
    np.testing.assert_array_equal(model.beats([]), np.ones(3))
    # a multiset of copies of y is y with e(y) times its multiplicity
    e = np.exp(rewards)
    expected = 0.3 * 3 * e[0, 1] / (3 * e[0, 1] + e[0, 0]) + 0.7 * 3 * e[1, 1] / (3 * e[1, 1] + e[1, 0])
    assert abs(model.win_rate([1, 1, 1], 0) - expected) <= 1e-15


@pytest.mark.parametrize("seed", range(4))
def test_gradient_against_enumeration_and_finite_differences(seed):
    rng, rewards, weights = _instance(100 + seed, n_max=3, m_max=4)
    m = rewards.shape[1]
    model = PL(rewards, weights)
    pi = random_policy(rng, m, zeros=seed % 2 == 0)
    q = rng.normal(size=m)
    for k in (1, 2, 3):
        u, g = model.utilities_vjp(pi, k, q)
        np.testing.assert_allclose(u, model.utilities(pi, k), rtol=0, atol=ATOL)
        np.testing.assert_allclose(g, pl_oracle.utilities_gradient(rewards, weights, pi, k, q), rtol=0, atol=1e-12)


def test_gradient_finite_differences_large():
    """k = 8 on 30 responses over [-20, 20]: central differences of q . u(pi) along
    every direction e_z - pi (which keeps pi a distribution) against g . (e_z - pi)."""
    rng = np.random.default_rng(5)
    rewards = rng.uniform(-20, 20, size=(4, 30))
    model = PL(rewards, rng.random(4))
    pi = random_policy(rng, 30, zeros=False)
    q = rng.normal(size=30)
    k = 8
    _, g = model.utilities_vjp(pi, k, q)
    h = 1e-5
    assert pi.min() > h
    for z in range(30):
        direction = -pi
        direction[z] += 1.0
        up = model.utilities(pi + h * direction, k)
        down = model.utilities(pi - h * direction, k)
        exact = g[z] - g @ pi
        assert abs((q @ up - q @ down) / (2 * h) - exact) <= 1e-8 * max(1.0, abs(exact))


# ---------------------------------------------------------------------------
# hypothesis: Property 1 (1)-(4), the identities of docs/concepts.md, invariances
# ---------------------------------------------------------------------------
@st.composite
def models(draw, max_n=3, max_m=5):
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    values = st.floats(-20, 20, allow_nan=False, allow_infinity=False)
    rewards = np.array([[draw(values) for _ in range(m)] for _ in range(n)])
    weights = draw(st.none() | st.lists(st.integers(0, 4), min_size=n, max_size=n).map(np.array))
    if weights is not None and weights.sum() == 0:
        weights[draw(st.integers(0, n - 1))] = 1
    return rewards, weights


@st.composite
def distributions(draw, size):
    raw = np.array(draw(st.lists(st.integers(0, 8), min_size=size, max_size=size)), dtype=np.float64)
    if raw.sum() == 0:
        raw[draw(st.integers(0, size - 1))] = 1.0
    return raw / raw.sum()


def multisets(m, min_size=0, max_size=4):
    return st.lists(st.integers(0, m - 1), min_size=min_size, max_size=max_size)


@st.composite
def operands(draw, m, max_k=8):
    kind = draw(st.sampled_from(["int", "multiset", "product", "multiset_policy", "mixture"]))
    if kind == "int":
        return draw(st.integers(0, m - 1))
    if kind == "multiset":
        return draw(multisets(m))
    if kind == "product":
        return ua.Product(draw(distributions(m)), draw(st.integers(1, max_k)))
    if kind == "mixture":
        t = draw(st.integers(1, 3))
        return ua.ProductMixture(np.stack([draw(distributions(m)) for _ in range(t)]), draw(distributions(t)),
                                 draw(st.integers(1, max_k)))
    count = draw(st.integers(1, 3))
    return ua.MultisetPolicy([draw(multisets(m)) for _ in range(count)], draw(distributions(count)))


@st.composite
def model_and(draw, *extra):
    rewards, weights = draw(models())
    m = rewards.shape[1]
    return (PL(rewards, weights), rewards, weights, *[draw(e(m)) for e in extra])


ks = st.integers(1, 12)


@given(model_and(operands, operands))
def test_antisymmetry_and_ties_are_irrelevant(case):
    """Property 1(1): P[A > B] + P[B > A] = 1; every tie convention gives the same bits."""
    model, _, _, a, b = case
    note(f"a={a!r} b={b!r}")
    values = {t: model.win_rate(a, b, t) for t in ua.TIES}
    assert len(set(values.values())) == 1
    assert -ATOL <= values["uniform"] <= 1 + ATOL
    assert abs(values["uniform"] + model.win_rate(b, a) - 1.0) <= ATOL
    beats = [model.beats(a, t) for t in ua.TIES]
    for other in beats[1:]:
        np.testing.assert_array_equal(other, beats[0])
    pairwise = [model.pairwise(t) for t in ua.TIES]
    for other in pairwise[1:]:
        np.testing.assert_array_equal(other, pairwise[0])


@given(model_and(distributions), ks)
def test_many_copies_beat_one(case, k):
    """Property 1(2): P[pi^k > pi] = k / (k + 1), exactly for this model."""
    model, _, _, pi = case
    assert abs(model.win_rate(ua.Product(pi, k), ua.Product(pi, 1)) - k / (k + 1)) <= ATOL
    singles = ua.MultisetPolicy([[y] for y in range(len(pi))], pi)
    assert abs(model.win_rate(ua.Product(pi, k), singles) - k / (k + 1)) <= ATOL


@given(model_and(multisets, multisets, multisets))
def test_subadditivity(case):
    """Property 1(3): P[S1 + S2 > S] <= P[S1 > S] + P[S2 > S]."""
    model, _, _, s1, s2, s = case
    assert model.win_rate(s1 + s2, s) <= model.win_rate(s1, s) + model.win_rate(s2, s) + ATOL


def _counts(m):
    return st.lists(st.integers(0, 2), min_size=m, max_size=m)


def _multiset(counts):
    return [y for y, c in enumerate(counts) for _ in range(c)]


def _empty_mass(x):
    if isinstance(x, ua.MultisetPolicy):
        return float(sum(p for p, s in zip(x.probabilities, x.multisets) if len(s) == 0))
    return 1.0 if isinstance(x, list) and not x else 0.0


@given(model_and(_counts, _counts, lambda m: st.integers(0, m - 1), operands))
def test_dr_submodularity(case):
    """Property 1(4): F(S) = P[S > X] is normalised, monotone and DR-submodular in
    the multiplicities (X any operand, here also a product or a committee)."""
    model, _, _, small, extra, z, x = case
    large = [a + b for a, b in zip(small, extra)]
    add_z = [int(j == z) for j in range(len(small))]

    def F(counts):
        return model.win_rate(_multiset(counts), x)

    assert F([0] * len(small)) == 0.5 * _empty_mass(x)  # the empty multiset only ties the empty one
    assert F(small) <= F(large) + ATOL
    gain_small = F([a + b for a, b in zip(small, add_z)]) - F(small)
    gain_large = F([a + b for a, b in zip(large, add_z)]) - F(large)
    assert gain_small >= -ATOL and gain_large >= -ATOL
    assert gain_small >= gain_large - ATOL


@given(model_and(distributions), ks)
def test_average_utility_is_exact(case, k):
    """sum_y pi(y) u_y(pi) = 1/(k+1) for every pi (no ties), hence the certificate
    robust_level = k/(k+1) - exploitability, for every convention."""
    model, _, _, pi = case
    for ties in ua.TIES:
        u = model.utilities(pi, k, ties)
        assert abs(float(pi @ u) - 1 / (k + 1)) <= ATOL
        level = ua.robust_level(model, pi, k, ties)
        assert abs(level - (k / (k + 1) - ua.exploitability(model, pi, k, ties))) <= ATOL
        y, value = ua.best_response(model, pi, k, ties)
        assert value == u.max() and y == int(np.argmax(u))


@given(model_and(distributions))
def test_k1_utilities_are_pairwise_times_policy(case):
    model, _, _, pi = case
    np.testing.assert_allclose(model.utilities(pi, 1), model.pairwise() @ pi, rtol=0, atol=ATOL)
    p = model.pairwise()
    np.testing.assert_allclose(p + p.T, 1.0, rtol=0, atol=ATOL)


@given(model_and(distributions, operands, operands), ks, st.randoms(use_true_random=False))
def test_relabelling_responses(case, k, random):
    model, rewards, weights, pi, a, b = case
    m = rewards.shape[1]
    perm = list(range(m))
    random.shuffle(perm)
    perm = np.array(perm)
    new_label = np.argsort(perm)
    relabelled = PL(rewards[:, perm], weights)

    def relabel(x):
        if isinstance(x, ua.Product):
            return ua.Product(x.policy[perm], x.k)
        if isinstance(x, ua.ProductMixture):
            return ua.ProductMixture(x.policies[:, perm], x.probabilities, x.k)
        if isinstance(x, ua.MultisetPolicy):
            return ua.MultisetPolicy([new_label[s] for s in x.multisets], x.probabilities)
        if isinstance(x, int):
            return int(new_label[x])
        return [int(new_label[s]) for s in x]

    np.testing.assert_allclose(relabelled.utilities(pi[perm], k), model.utilities(pi, k)[perm], rtol=0, atol=ATOL)
    np.testing.assert_allclose(relabelled.pairwise(), model.pairwise()[np.ix_(perm, perm)], rtol=0, atol=ATOL)
    np.testing.assert_allclose(relabelled.beats(relabel(a)), model.beats(a)[perm], rtol=0, atol=ATOL)
    assert abs(relabelled.win_rate(relabel(a), relabel(b)) - model.win_rate(a, b)) <= ATOL


@given(model_and(distributions, operands, operands), ks, st.floats(-50, 50))
def test_duplicate_types_and_shifted_rewards(case, k, shift):
    """Splitting a type into two copies, or adding a constant to a type's rewards,
    changes nothing."""
    model, rewards, weights, pi, a, b = case
    n = rewards.shape[0]
    w = np.ones(n) if weights is None else weights.astype(np.float64)
    doubled = PL(np.concatenate([rewards, rewards]), np.concatenate([w, w]) / 2)
    shifted = PL(rewards + shift * np.arange(1, n + 1)[:, None], weights)
    for other in (doubled, shifted):
        np.testing.assert_allclose(other.utilities(pi, k), model.utilities(pi, k), rtol=0, atol=ATOL)
        np.testing.assert_allclose(other.pairwise(), model.pairwise(), rtol=0, atol=ATOL)
        np.testing.assert_allclose(other.beats(a), model.beats(a), rtol=0, atol=ATOL)
        assert abs(other.win_rate(a, b) - model.win_rate(a, b)) <= ATOL


@given(model_and(distributions, distributions), ks, st.floats(0, 1))
def test_mixture_is_linear(case, k, q):
    model, _, _, p1, p2 = case
    mixture = ua.ProductMixture(np.stack([p1, p2]), [q, 1 - q], k)
    expected = q * model.beats(ua.Product(p1, k)) + (1 - q) * model.beats(ua.Product(p2, k))
    np.testing.assert_allclose(model.beats(mixture), expected, rtol=0, atol=ATOL)
    assert abs(model.win_rate(mixture, 0) - (q * model.win_rate(ua.Product(p1, k), 0)
                                             + (1 - q) * model.win_rate(ua.Product(p2, k), 0))) <= ATOL


# ---------------------------------------------------------------------------
# extreme but finite rewards
# ---------------------------------------------------------------------------
def test_extreme_spreads_are_safe_and_exact():
    # two clusters 10^6 apart, plus a pair a unit apart at the very bottom
    rewards = np.array([[0.0, -0.5, -1e6, -1e6 - 1.0], [1e308, -1e308, 5.0, 5.0]])
    model = PL(rewards)
    assert np.isfinite(model.rewards).all()
    pi = np.array([0.0, 0.0, 0.5, 0.5])
    u = model.utilities(pi, 3)
    assert np.isfinite(u).all() and (u >= 0).all() and (u <= 1).all()
    assert abs(float(pi @ u) - 0.25) <= ATOL
    # type 0: responses 0 and 1 beat the bottom pair surely; 2 vs 3 is a logistic race
    s = 1 / (1 + math.exp(-1.0))
    sub = PL(np.array([[0.0, -1.0]]))
    expected_type0 = np.array([1.0, 1.0, *sub.utilities([0.5, 0.5], 3)])
    # type 1: response 0 beats everything, 1 never wins, 2 and 3 are equal
    expected_type1 = np.array([1.0, 0.0, 0.25, 0.25])
    np.testing.assert_allclose(u, 0.5 * (expected_type0 + expected_type1), rtol=0, atol=ATOL)
    assert abs(model.win_rate(2, 3) - 0.5 * (s + 0.5)) <= ATOL
    p = model.pairwise()
    assert np.isfinite(p).all()
    assert abs(p[2, 3] - 0.5 * (s + 0.5)) <= ATOL
    _, g = model.utilities_vjp(pi, 3, np.ones(4))
    assert np.isfinite(g).all()


def test_separated_clusters_against_mpmath():
    """Rewards in groups ~60 apart get separate node clusters (each evaluated in its
    own frame): still exact, and a 30-digit check of a response in each group."""
    rewards = np.array([0.0, -0.7, -60.0, -61.5, -125.0, -124.0])
    pi = np.array([0.05, 0.1, 0.2, 0.15, 0.3, 0.2])
    model = PL(rewards[None, :])
    for k in (1, 3):
        u = model.utilities(pi, k)
        assert abs(float(pi @ u) - 1 / (k + 1)) <= ATOL
        for y in (1, 3, 5):
            assert abs(u[y] - float(pl_reference.utility(rewards, pi, k, y))) <= ATOL
    # the bottom group against itself is a plain logistic race, whatever sits above it
    assert abs(model.win_rate(5, 4) - 1 / (1 + math.exp(-1.0))) <= 1e-15


def test_from_scores():
    scores = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    model = PL.from_scores(scores, temperature=0.5, weights=[1, 3])
    np.testing.assert_allclose(model.pairwise(), PL(scores / 0.5, [1, 3]).pairwise(), rtol=0, atol=0)
    cold = PL.from_scores(scores, temperature=1e-3)
    assert cold.win_rate(2, 0) == 1.0
    with pytest.raises(ValueError, match="temperature"):
        PL.from_scores([[1e300, 0.0]], temperature=1e-10)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("rewards, error, match", [
    ([[0.0, np.nan]], ValueError, "rewards"),
    ([[0.0, np.inf]], ValueError, "rewards"),
    ([[-np.inf, 0.0]], ValueError, "rewards"),
    ([0.0, 1.0], ValueError, "rewards"),
    ([[[0.0]]], ValueError, "rewards"),
    (np.zeros((0, 3)), ValueError, "rewards"),
    (np.zeros((2, 0)), ValueError, "rewards"),
    ([[True, False]], TypeError, "rewards"),
    ([["a", "b"]], TypeError, "rewards"),
    ([[0.0, 1.0], [2.0]], ValueError, "rewards"),
])
def test_bad_rewards(rewards, error, match):
    with pytest.raises(error, match=match):
        PL(rewards)


def test_bad_arguments():
    model = PL([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="weights"):
        PL([[0.0, 1.0]], weights=[-1.0])
    with pytest.raises(ValueError, match="weights"):
        PL([[0.0, 1.0], [1.0, 0.0]], weights=[0.0, 0.0])
    with pytest.raises(ValueError, match="weights"):
        PL([[0.0, 1.0]], weights=[1.0, 2.0])
    for temperature, error in ((0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError), (True, TypeError),
                               ("1", TypeError)):
        with pytest.raises(error, match="temperature"):
            PL.from_scores([[0.0, 1.0]], temperature)
    with pytest.raises(ValueError, match="scores"):
        PL.from_scores([[0.0, np.nan]])
    with pytest.raises(ValueError, match="ties"):
        model.utilities([1 / 3] * 3, 2, ties="random")
    with pytest.raises(TypeError, match="ties"):
        model.pairwise(ties=1)
    with pytest.raises(ValueError, match="ties"):
        model.win_rate(0, 1, ties="")
    with pytest.raises(ValueError, match="ties"):
        model.beats([0], ties="Uniform")
    with pytest.raises(ValueError, match="policy"):
        model.utilities([0.5, 0.5], 2)
    with pytest.raises(ValueError, match="policy"):
        model.utilities([0.5, 0.6, -0.1], 2)
    with pytest.raises(ValueError, match="k"):
        model.utilities([1 / 3] * 3, 0)
    with pytest.raises(ValueError, match="multiset"):
        model.beats([0, 3])
    with pytest.raises(ValueError, match="a"):
        model.win_rate(ua.Product([0.5, 0.5], 1), 0)
    with pytest.raises(ValueError, match="q"):
        model.utilities_vjp([1 / 3] * 3, 2, [1.0, np.inf, 0.0])
    with pytest.raises(ValueError, match="ties"):
        model._store.beat_probabilities(ua.operands.as_operand(0, 3, "x").parts(), 7)
    with pytest.raises(ValueError, match="rewards"):
        ua._core.PLStore.from_rewards(np.array([[0.0, np.nan]]))


# ---------------------------------------------------------------------------
# threads: bitwise identical for 1 and 2 OpenMP threads
# ---------------------------------------------------------------------------
THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import ualign as ua

    rng = np.random.default_rng(7)
    n, m = 300, 40
    rewards = rng.uniform(-20, 20, size=(n, m))
    weights = rng.random(n) ** 2
    weights[rng.random(n) < 0.1] = 0.0
    model = ua.PlackettLuceMixture(rewards, weights)
    pi = rng.random(m) * (rng.random(m) < 0.6)
    pi /= pi.sum()
    sigma = rng.random(m)
    sigma /= sigma.sum()
    policies = rng.random((2, m))
    policies /= policies.sum(axis=1, keepdims=True)
    mixture = ua.ProductMixture(policies, [0.3, 0.7], 3)
    committee = ua.MultisetPolicy([[0, 1], [], [5, 5, 7], [2]], [0.4, 0.1, 0.3, 0.2])
    q = rng.normal(size=m)
    u, g = model.utilities_vjp(pi, 8, q)
    out = {
        "utilities": model.utilities(pi, 8), "vjp_u": u, "vjp_g": g,
        "beats_mixture": model.beats(mixture), "beats_committee": model.beats(committee),
        "pairwise": model.pairwise(),
        "win": np.array([model.win_rate(ua.Product(pi, 5), ua.Product(sigma, 2)),
                         model.win_rate(committee, mixture), model.win_rate(mixture, [3, 4]),
                         model.win_rate([1, 2], committee)]),
        "threads": np.array([ua._core.max_threads()]),
    }
    np.savez(sys.argv[1], **out)
""")


def test_thread_count_does_not_change_any_bit(tmp_path):
    script = tmp_path / "compute.py"
    script.write_text(THREAD_SCRIPT)
    results = {}
    for threads in (1, 2):
        target = tmp_path / f"out_{threads}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, str(script), str(target)], cwd=tmp_path, env=env, check=True, timeout=300)
        with np.load(target) as data:
            results[threads] = {key: data[key] for key in data.files}
    if ua.has_openmp:
        assert int(results[2]["threads"][0]) == 2
    for key in results[1]:
        if key != "threads":
            assert results[1][key].tobytes() == results[2][key].tobytes(), key


# ---------------------------------------------------------------------------
# the model behind the common interface
# ---------------------------------------------------------------------------
def test_works_with_the_game_functions():
    rng = np.random.default_rng(3)
    model = PL(rng.normal(size=(5, 6)), rng.random(5))
    assert isinstance(model, ua.PreferenceModel)
    assert (model.n_voters, model.n_responses, model.n_types) == (5, 6, 5)
    assert "PlackettLuceMixture" in repr(model)
    assert model.rewards.max(axis=1).tolist() == [0.0] * 5
    assert not model.rewards.flags.writeable
    assert abs(model.weights.sum() - 1) < 1e-15
    pi = random_policy(rng, 6)
    for k in (1, 4):
        y, value = ua.best_response(model, pi, k)
        assert value == model.utilities(pi, k).max()
        assert ua.exploitability(model, pi, k) >= 0
        assert abs(ua.robust_level(model, pi, k) - min(model.win_rate(ua.Product(pi, k), z) for z in range(6))) <= ATOL
    committee = ua.MultisetPolicy([[0, 1], [2, 3, 3]], [0.5, 0.5])
    assert abs(ua.robust_level(model, committee) - min(model.win_rate(committee, z) for z in range(6))) <= ATOL
    try:
        from ualign import solvers
    except ImportError:  # pragma: no cover - the solvers land separately
        return
    assert abs(solvers.solve_nlhf(model).robust_level - 0.5) <= 1e-9  # k = 1: constant-sum, value 1/2
    mpne = solvers.solve_mpne(model, 3)
    assert abs(mpne.robust_level - 3 / 4) <= 1e-6  # sum_y pi u_y = 1/(k+1) for every pi: level <= k/(k+1)
    assert solvers.solve_committee(model, 3).robust_level >= 3 / 4 - 1e-6


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------
def _sample_orders(rng, rewards, count):
    """Plackett–Luce rankings (best first) by sorting Gumbel-perturbed rewards."""
    noisy = rewards[None, :] + rng.gumbel(size=(count, rewards.shape[0]))
    return np.argsort(-noisy, axis=1)


def test_fit_single_model_recovers_rewards():
    rng = np.random.default_rng(11)
    truth = np.array([1.5, 0.5, 0.0, -0.5, -1.5])
    orders = _sample_orders(rng, truth, 3000)
    fit = ua.fit_plackett_luce(ua.RankingPopulation.from_orders(orders), prior=0.01)
    assert fit.converged
    rewards = fit.model.rewards[0] - fit.model.rewards[0].mean()
    np.testing.assert_allclose(rewards, truth - truth.mean(), atol=0.1)
    assert fit.responsibilities.shape == (3000, 1)
    # partial rankings: top-2 lists, the rest tied at the bottom
    ranks = np.full_like(orders, 2)
    rows = np.arange(len(orders))
    ranks[rows, orders[:, 0]] = 0
    ranks[rows, orders[:, 1]] = 1
    partial = ua.fit_plackett_luce(ua.RankingPopulation(ranks), prior=0.01).model.rewards[0]
    np.testing.assert_allclose(partial - partial.mean(), truth - truth.mean(), atol=0.15)
    # log_likelihood is the mean log-probability of the orders under the fitted model
    e = np.exp(fit.model.rewards[0])
    direct = np.mean([sum(math.log(e[o[j]] / e[o[j:]].sum()) for j in range(4)) for o in orders])
    assert abs(fit.log_likelihood - direct) < 1e-9


def test_fit_weights_equal_repetition():
    rng = np.random.default_rng(2)
    orders = _sample_orders(rng, np.array([0.3, 0.0, -0.2, 0.9]), 40)
    counts = rng.multinomial(40, np.full(40, 1 / 40))  # as many copies in total as voters
    weighted = ua.fit_plackett_luce(ua.RankingPopulation.from_orders(orders, weights=counts), tol=1e-15)
    repeated = ua.fit_plackett_luce(ua.RankingPopulation.from_orders(np.repeat(orders, counts, axis=0)), tol=1e-15)
    np.testing.assert_allclose(weighted.model.rewards, repeated.model.rewards, atol=1e-7)
    assert abs(weighted.log_likelihood - repeated.log_likelihood) < 1e-9


def test_fit_matches_choix():
    choix = pytest.importorskip("choix")
    rng = np.random.default_rng(4)
    orders = _sample_orders(rng, np.array([1.0, 0.2, -0.3, 0.0, -1.0, 0.5]), 150)
    ours = ua.fit_plackett_luce(ua.RankingPopulation.from_orders(orders), prior=0.5, tol=1e-14).model.rewards[0]
    theirs = choix.mm_rankings(6, [list(o) for o in orders], alpha=0.5, tol=1e-12)
    np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-6)
    # top-2 partial rankings as choix top-1 choices (winner, everything ranked below)
    data = [(o[0], list(o[1:])) for o in orders] + [(o[1], list(o[2:])) for o in orders]
    ranks = np.full_like(orders, 2)
    rows = np.arange(len(orders))
    ranks[rows, orders[:, 0]] = 0
    ranks[rows, orders[:, 1]] = 1
    ours = ua.fit_plackett_luce(ua.RankingPopulation(ranks), prior=0.5, tol=1e-14).model.rewards[0]
    theirs = choix.mm_top1(6, data, alpha=0.5, tol=1e-12)
    np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-6)


def test_fit_mixture_recovers_two_types():
    rng = np.random.default_rng(8)
    a = np.array([2.0, 1.0, 0.0, -1.0, -2.0])
    orders = np.concatenate([_sample_orders(rng, a, 1400), _sample_orders(rng, -a, 600)])
    population = ua.RankingPopulation.from_orders(orders)
    fit = ua.fit_plackett_luce(population, n_types=2, seed=1)
    model = fit.model
    assert model.n_types == 2
    first = int(np.argmax(model.rewards[:, 0]))  # the type that prefers response 0
    np.testing.assert_allclose(model.weights[first], 0.7, atol=0.05)
    fitted = model.rewards[first] - model.rewards[first].mean()
    np.testing.assert_allclose(fitted, a, atol=0.25)
    np.testing.assert_allclose(model.rewards[1 - first] - model.rewards[1 - first].mean(), -a, atol=0.35)
    assert fit.log_likelihood > ua.fit_plackett_luce(population).log_likelihood + 0.5
    np.testing.assert_allclose(fit.responsibilities.sum(axis=1), 1.0, atol=1e-12)
    assert (fit.responsibilities[:1400, first] > 0.5).mean() > 0.9
    assert isinstance(PL.fit(population, 2, seed=1), PL)


def test_fit_bad_input():
    population = ua.RankingPopulation([[0, 1, 2]])
    with pytest.raises(TypeError, match="population"):
        ua.fit_plackett_luce(np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="n_types"):
        ua.fit_plackett_luce(population, 0)
    with pytest.raises(ValueError, match="prior"):
        ua.fit_plackett_luce(population, prior=0.0)
    # a single ranking and all-tied voters still give finite rewards
    assert np.isfinite(ua.fit_plackett_luce(population).model.rewards).all()
    tied = ua.fit_plackett_luce(ua.RankingPopulation([[0, 0, 0], [1, 0, 1]]))
    assert np.isfinite(tied.model.rewards).all()


def test_pickle_round_trip_is_bit_identical():
    import pickle

    rng = np.random.default_rng(9)
    model = PL(rng.normal(size=(4, 6)) * 7, rng.random(4))
    copy = pickle.loads(pickle.dumps(model))
    assert copy.rewards.tobytes() == model.rewards.tobytes()
    assert copy.weights.tobytes() == model.weights.tobytes()
    pi = random_policy(rng, 6)
    assert copy.utilities(pi, 5).tobytes() == model.utilities(pi, 5).tobytes()
