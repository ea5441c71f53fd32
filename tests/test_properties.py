"""Property tests (hypothesis): Property 1 (1)-(4) of the paper for populations
of rankings, the identities of docs/concepts.md, and invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import ualign as ua

ATOL = 1e-12
TIES = ("uniform", "half", "strict", "weak")


# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------
@st.composite
def populations(draw, max_n=5, max_m=5):
    """(ranks, weights): weak orders with non-dense integer values, or strict orders."""
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    values = draw(st.lists(st.integers(-1000, 1000), min_size=1, max_size=m, unique=True))
    if draw(st.booleans()) and len(values) == m:  # strict orders
        ranks = [draw(st.permutations(values)) for _ in range(n)]
    else:
        ranks = [draw(st.lists(st.sampled_from(values), min_size=m, max_size=m)) for _ in range(n)]
    ranks = np.array(ranks, dtype=np.int64)
    weights = draw(st.none() | st.lists(st.integers(0, 5), min_size=n, max_size=n).map(np.array))
    if weights is not None and weights.sum() == 0:
        weights[draw(st.integers(0, n - 1))] = 1
    return ranks, weights


@st.composite
def distributions(draw, size):
    """A probability vector of the given size, zeros allowed, summing to 1 up to rounding."""
    raw = np.array(draw(st.lists(st.integers(0, 8), min_size=size, max_size=size)), dtype=np.float64)
    if raw.sum() == 0:
        raw[draw(st.integers(0, size - 1))] = 1.0
    return raw / raw.sum()


def multisets(m, min_size=0, max_size=4):
    return st.lists(st.integers(0, m - 1), min_size=min_size, max_size=max_size)


@st.composite
def operands(draw, m, max_k=3):
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
    count = draw(st.integers(1, 4))
    return ua.MultisetPolicy([draw(multisets(m)) for _ in range(count)], draw(distributions(count)))


@st.composite
def model_and(draw, *extra):
    """(model, ranks, weights, *values drawn from extra(m))."""
    ranks, weights = draw(populations())
    m = ranks.shape[1]
    return (ua.RankingPopulation(ranks, weights), ranks, weights, *[draw(e(m)) for e in extra])


ks = st.integers(1, 6)


# ---------------------------------------------------------------------------
# Property 1
# ---------------------------------------------------------------------------
@given(model_and(operands, operands), st.sampled_from(["uniform", "half"]))
def test_antisymmetry(case, ties):
    model, _, _, a, b = case
    note(f"a={a!r} b={b!r}")
    assert math.isclose(model.win_rate(a, b, ties) + model.win_rate(b, a, ties), 1.0, rel_tol=0, abs_tol=ATOL)


@given(model_and(operands, operands))
def test_strict_weak_duality(case):
    model, _, _, a, b = case
    assert math.isclose(model.win_rate(a, b, "strict") + model.win_rate(b, a, "weak"), 1.0,
                        rel_tol=0, abs_tol=ATOL)


@given(model_and(operands, operands))
def test_convention_order_and_range(case):
    """strict <= uniform, half <= weak, and everything in [0, 1]."""
    model, _, _, a, b = case
    v = {t: model.win_rate(a, b, t) for t in TIES}
    assert all(-ATOL <= x <= 1 + ATOL for x in v.values())
    assert v["strict"] <= v["uniform"] + ATOL and v["uniform"] <= v["weak"] + ATOL
    assert v["strict"] <= v["half"] + ATOL and v["half"] <= v["weak"] + ATOL
    # half is the average of strict and weak
    assert math.isclose(v["half"], (v["strict"] + v["weak"]) / 2, rel_tol=0, abs_tol=ATOL)


@given(model_and(distributions), ks)
def test_many_copies_beat_one(case, k):
    """Property 1(2): P[pi^k > pi] = k/(k+1) exactly under uniform ties, >= under weak."""
    model, _, _, pi = case
    target = k / (k + 1)
    uniform = model.win_rate(ua.Product(pi, k), ua.Product(pi, 1), "uniform")
    assert math.isclose(uniform, target, rel_tol=0, abs_tol=ATOL)
    # a single copy written as a distribution over singletons
    singles = ua.MultisetPolicy([[y] for y in range(len(pi))], pi)
    assert math.isclose(model.win_rate(ua.Product(pi, k), singles), target, rel_tol=0, abs_tol=ATOL)
    assert model.win_rate(ua.Product(pi, k), ua.Product(pi, 1), "weak") >= target - ATOL


@given(model_and(multisets, multisets, multisets), st.sampled_from(TIES))
def test_subadditivity(case, ties):
    """Property 1(3): P[S1 + S2 > S] <= P[S1 > S] + P[S2 > S]."""
    model, _, _, s1, s2, s = case
    lhs = model.win_rate(s1 + s2, s, ties)
    assert lhs <= model.win_rate(s1, s, ties) + model.win_rate(s2, s, ties) + ATOL


def _counts(m):
    return st.lists(st.integers(0, 2), min_size=m, max_size=m)


def _multiset(counts):
    return [y for y, c in enumerate(counts) for _ in range(c)]


@given(model_and(_counts, _counts, lambda m: st.integers(0, m - 1), lambda m: st.integers(0, m - 1)),
       st.sampled_from(TIES))
def test_submodularity(case, ties):
    """Property 1(4): F(m) = P[S(m) > y] is normalised, monotone and DR-submodular."""
    model, _, _, small, extra, z, y = case
    large = [a + b for a, b in zip(small, extra)]
    e_z = [int(j == z) for j in range(len(small))]

    def F(counts):
        return model.win_rate(_multiset(counts), y, ties)

    assert F([0] * len(small)) == 0.0
    assert F(small) <= F(large) + ATOL
    gain_small = F([a + b for a, b in zip(small, e_z)]) - F(small)
    gain_large = F([a + b for a, b in zip(large, e_z)]) - F(large)
    assert gain_small >= -ATOL and gain_large >= -ATOL
    assert gain_small >= gain_large - ATOL


# ---------------------------------------------------------------------------
# identities of the game (docs/concepts.md, "Robust level, exploitability, best response")
# ---------------------------------------------------------------------------
@given(model_and(distributions), ks)
def test_average_utility(case, k):
    """sum_y pi(y) u_y(pi) = 1/(k+1) under uniform, <= under strict, >= under weak."""
    model, _, _, pi = case
    avg = {t: float(np.dot(pi, model.utilities(pi, k, t))) for t in TIES}
    assert math.isclose(avg["uniform"], 1 / (k + 1), rel_tol=0, abs_tol=ATOL)
    assert avg["strict"] <= 1 / (k + 1) + ATOL
    assert avg["weak"] >= 1 / (k + 1) - ATOL


@given(model_and(distributions), ks)
def test_robust_level_certificates(case, k):
    model, _, _, pi = case
    target = k / (k + 1)
    level = {t: ua.robust_level(model, pi, k, t) for t in TIES}
    # uniform: f = 1 - max_y u_y = k/(k+1) - exploitability, with equality
    assert math.isclose(level["uniform"], target - ua.exploitability(model, pi, k, "uniform"),
                        rel_tol=0, abs_tol=ATOL)
    # the paper's certificate: f with weak ties >= k/(k+1) - exploitability with strict utilities
    assert level["weak"] >= target - ua.exploitability(model, pi, k, "strict") - ATOL
    assert level["weak"] >= target - ua.exploitability(model, pi, k, "uniform") - ATOL
    # ordering of the conventions
    assert level["strict"] <= level["uniform"] + ATOL <= level["weak"] + 2 * ATOL
    assert level["strict"] <= level["half"] + ATOL <= level["weak"] + 2 * ATOL
    # no single-output policy beats k/(k+1) under uniform ties
    assert level["uniform"] <= target + ATOL


@given(model_and(distributions), ks, st.sampled_from(TIES))
def test_exploitability_and_best_response(case, k, ties):
    model, _, _, pi = case
    u = model.utilities(pi, k, ties)
    y, value = ua.best_response(model, pi, k, ties)
    assert value == u.max() and y == int(np.argmax(u))
    expl = ua.exploitability(model, pi, k, ties)
    assert expl >= -ATOL
    assert math.isclose(expl, u.max() - float(np.dot(pi, u)), rel_tol=0, abs_tol=ATOL)


@given(model_and(distributions), st.sampled_from(TIES))
def test_k1_utilities_are_pairwise_times_policy(case, ties):
    model, _, _, pi = case
    np.testing.assert_allclose(model.utilities(pi, 1, ties), model.pairwise(ties) @ pi, rtol=0, atol=ATOL)


@given(model_and(), st.sampled_from(TIES))
def test_pairwise_matches_win_rate(case, ties):
    model, *_ = case
    m = model.n_responses
    p = model.pairwise(ties)
    expected = np.array([[model.win_rate(y, z, ties) for z in range(m)] for y in range(m)])
    np.testing.assert_allclose(p, expected, rtol=0, atol=ATOL)
    if ties in ("uniform", "half"):  # constant-sum k = 1 game
        np.testing.assert_allclose(p + p.T, np.ones((m, m)), rtol=0, atol=ATOL)


@given(model_and(distributions), ks, st.sampled_from(TIES))
def test_utilities_equal_beats_of_product(case, k, ties):
    model, _, _, pi = case
    u = model.utilities(pi, k, ties)
    np.testing.assert_array_equal(u, model.beats(ua.Product(pi, k), ties))
    for y in range(model.n_responses):
        assert math.isclose(u[y], model.win_rate(y, ua.Product(pi, k), ties), rel_tol=0, abs_tol=ATOL)


@given(model_and(operands), st.sampled_from(TIES))
def test_beats_matches_win_rate(case, ties):
    model, _, _, x = case
    b = model.beats(x, ties)
    for y in range(model.n_responses):
        assert math.isclose(b[y], model.win_rate(y, x, ties), rel_tol=0, abs_tol=ATOL)
    r = ua.robust_level(model, x, None, ties) if isinstance(x, (ua.Product, ua.MultisetPolicy,
                                                                ua.ProductMixture)) else None
    if r is not None:
        assert math.isclose(r, min(model.win_rate(x, y, ties) for y in range(model.n_responses)),
                            rel_tol=0, abs_tol=ATOL)


# ---------------------------------------------------------------------------
# operand equivalences
# ---------------------------------------------------------------------------
@given(model_and(distributions, operands), st.integers(1, 3), st.sampled_from(TIES))
def test_product_equals_its_enumeration(case, k, ties):
    model, _, _, pi, other = case
    m = len(pi)
    grid = np.array(np.meshgrid(*[np.arange(m)] * k, indexing="ij")).reshape(k, -1).T
    probs = np.prod(pi[grid], axis=1)
    keep = probs > 0
    enumerated = ua.MultisetPolicy(grid[keep], probs[keep] / probs[keep].sum())
    product = ua.Product(pi, k)
    assert math.isclose(model.win_rate(product, other, ties), model.win_rate(enumerated, other, ties),
                        rel_tol=0, abs_tol=ATOL)
    assert math.isclose(model.win_rate(other, product, ties), model.win_rate(other, enumerated, ties),
                        rel_tol=0, abs_tol=ATOL)
    np.testing.assert_allclose(model.beats(product, ties), model.beats(enumerated, ties), rtol=0, atol=ATOL)


@given(model_and(distributions, distributions, operands), ks, st.floats(0, 1), st.sampled_from(TIES))
def test_mixture_is_linear(case, k, q, ties):
    model, _, _, p1, p2, other = case
    mixture = ua.ProductMixture(np.stack([p1, p2]), [q, 1 - q], k)
    expected = q * model.win_rate(ua.Product(p1, k), other, ties) + \
        (1 - q) * model.win_rate(ua.Product(p2, k), other, ties)
    assert math.isclose(model.win_rate(mixture, other, ties), expected, rel_tol=0, abs_tol=ATOL)
    expected_b = q * model.beats(ua.Product(p1, k), ties) + (1 - q) * model.beats(ua.Product(p2, k), ties)
    np.testing.assert_allclose(model.beats(mixture, ties), expected_b, rtol=0, atol=ATOL)
    single = ua.ProductMixture(p1[None, :], [1.0], k)
    assert model.win_rate(single, other, ties) == pytest.approx(
        model.win_rate(ua.Product(p1, k), other, ties), rel=0, abs=ATOL)


@given(model_and(multisets, operands), st.floats(0, 1), st.sampled_from(TIES))
def test_multiset_policy_split_entries(case, q, ties):
    """Listing a multiset twice with split probability, or permuting its members,
    changes nothing."""
    model, _, _, s, other = case
    whole = model.win_rate(s, other, ties)
    split = ua.MultisetPolicy([s, s[::-1]], [q, 1 - q])
    assert math.isclose(model.win_rate(split, other, ties), whole, rel_tol=0, abs_tol=ATOL)
    assert math.isclose(model.win_rate(other, split, ties), model.win_rate(other, s, ties), rel_tol=0, abs_tol=ATOL)


# ---------------------------------------------------------------------------
# invariances
# ---------------------------------------------------------------------------
@given(model_and(distributions, operands, operands), ks, st.randoms(use_true_random=False), st.sampled_from(TIES))
def test_relabelling_responses(case, k, random, ties):
    model, ranks, weights, pi, a, b = case
    m = ranks.shape[1]
    perm = list(range(m))
    random.shuffle(perm)
    perm = np.array(perm)        # new response j is old response perm[j]
    new_label = np.argsort(perm)  # old response o is new response new_label[o]
    relabelled = ua.RankingPopulation(ranks[:, perm], weights)

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

    np.testing.assert_allclose(relabelled.utilities(pi[perm], k, ties), model.utilities(pi, k, ties)[perm],
                               rtol=0, atol=ATOL)
    np.testing.assert_allclose(relabelled.pairwise(ties), model.pairwise(ties)[np.ix_(perm, perm)],
                               rtol=0, atol=ATOL)
    np.testing.assert_allclose(relabelled.beats(relabel(a), ties), model.beats(a, ties)[perm], rtol=0, atol=ATOL)
    assert math.isclose(relabelled.win_rate(relabel(a), relabel(b), ties), model.win_rate(a, b, ties),
                        rel_tol=0, abs_tol=ATOL)
    assert math.isclose(ua.robust_level(relabelled, pi[perm], k, ties), ua.robust_level(model, pi, k, ties),
                        rel_tol=0, abs_tol=ATOL)


@given(model_and(distributions, operands, operands), ks, st.sampled_from(TIES))
def test_duplicating_voters(case, k, ties):
    model, ranks, weights, pi, a, b = case
    n = ranks.shape[0]
    w = np.ones(n) if weights is None else weights.astype(np.float64)
    # every voter twice, weights split in half
    doubled = ua.RankingPopulation(np.concatenate([ranks, ranks]), np.concatenate([w, w]) / 2)
    # integer weights replaced by that many copies of the voter (weight 0: dropped)
    counts = np.ones(n, dtype=int) if weights is None else weights.astype(int)
    copies = ua.RankingPopulation(np.repeat(ranks, counts, axis=0))
    for other in (doubled, copies):
        np.testing.assert_allclose(other.utilities(pi, k, ties), model.utilities(pi, k, ties), rtol=0, atol=ATOL)
        np.testing.assert_allclose(other.pairwise(ties), model.pairwise(ties), rtol=0, atol=ATOL)
        np.testing.assert_allclose(other.beats(a, ties), model.beats(a, ties), rtol=0, atol=ATOL)
        assert math.isclose(other.win_rate(a, b, ties), model.win_rate(a, b, ties), rel_tol=0, abs_tol=ATOL)


@given(model_and(distributions, operands), ks, st.sampled_from(TIES))
def test_rank_values_only_matter_through_order(case, k, ties):
    """A strictly increasing transform of every voter's ranks (and scores = -ranks)
    changes nothing."""
    model, ranks, weights, pi, a = case
    transformed = ua.RankingPopulation(np.exp(ranks / 300.0) * 7 - 3, weights)
    scored = ua.RankingPopulation.from_scores(-ranks, weights)
    for other in (transformed, scored):
        np.testing.assert_array_equal(other.utilities(pi, k, ties), model.utilities(pi, k, ties))
        np.testing.assert_array_equal(other.beats(a, ties), model.beats(a, ties))
        np.testing.assert_array_equal(other.pairwise(ties), model.pairwise(ties))
