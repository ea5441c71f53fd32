"""Invalid input raises ValueError or TypeError whose message starts with the name
of the offending argument: never a crash, hang or silently wrong answer."""

from __future__ import annotations

import re

import numpy as np
import pytest

import ualign as ua
from ualign._validate import K_MAX

RANKS = np.array([[0, 1, 2], [2, 1, 0], [1, 1, 0]])
M = RANKS.shape[1]
PI = [0.2, 0.3, 0.5]
INVALID = (ValueError, TypeError)


@pytest.fixture(scope="module")
def model():
    return ua.RankingPopulation(RANKS)


def raises(exc, name):
    """pytest.raises for `exc` whose message starts with the argument `name`."""
    return pytest.raises(exc, match=rf"^{re.escape(name)}\b")


# ---------------------------------------------------------------------------
# ranks / scores / orders
# ---------------------------------------------------------------------------
BAD_MATRIX_SHAPES = [
    pytest.param([0, 1, 2], id="1-d"),
    pytest.param([[[0, 1]], [[1, 0]]], id="3-d"),
    pytest.param(np.zeros((0, 3), dtype=int), id="no-voters"),
    pytest.param(np.zeros((3, 0), dtype=int), id="no-responses"),
    pytest.param(5, id="scalar"),
]
BAD_MATRIX_TYPES = [
    pytest.param([[True, False]], id="bool"),
    pytest.param([["a", "b"]], id="str"),
    pytest.param(np.array([[0, 1]], dtype=object), id="object"),
    pytest.param([[1 + 2j, 0]], id="complex"),
    pytest.param(None, id="None"),
]
NON_FINITE = [pytest.param(v, id=repr(v)) for v in (np.nan, np.inf, -np.inf)]


@pytest.mark.parametrize("value", BAD_MATRIX_SHAPES)
def test_ranks_shape(value):
    with raises(ValueError, "ranks"):
        ua.RankingPopulation(value)


@pytest.mark.parametrize("value", BAD_MATRIX_TYPES)
def test_ranks_dtype(value):
    with raises(TypeError, "ranks"):
        ua.RankingPopulation(value)


def test_ranks_ragged():
    with raises(INVALID, "ranks"):
        ua.RankingPopulation([[0, 1, 2], [0, 1]])


@pytest.mark.parametrize("bad", NON_FINITE)
def test_ranks_not_finite(bad):
    ranks = RANKS.astype(float)
    ranks[1, 2] = bad
    with raises(ValueError, "ranks"):
        ua.RankingPopulation(ranks)


@pytest.mark.parametrize("value", BAD_MATRIX_SHAPES)
def test_scores_shape(value):
    with raises(ValueError, "scores"):
        ua.RankingPopulation.from_scores(value)


@pytest.mark.parametrize("value", BAD_MATRIX_TYPES)
def test_scores_dtype(value):
    with raises(TypeError, "scores"):
        ua.RankingPopulation.from_scores(value)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_scores_not_finite(bad):
    scores = RANKS.astype(float)
    scores[0, 0] = bad
    with raises(ValueError, "scores"):
        ua.RankingPopulation.from_scores(scores)
    with raises(ValueError, "scores"):
        ua.RankingPopulation.from_scores(scores.astype(np.float32))


@pytest.mark.parametrize("value", BAD_MATRIX_SHAPES)
def test_orders_shape(value):
    with raises(ValueError, "orders"):
        ua.RankingPopulation.from_orders(value)


@pytest.mark.parametrize("value", BAD_MATRIX_TYPES + [pytest.param([[0.0, 1.0]], id="float")])
def test_orders_dtype(value):
    with raises(TypeError, "orders"):
        ua.RankingPopulation.from_orders(value)


@pytest.mark.parametrize("orders", [
    pytest.param([[0, 1, 2], [0, 0, 1]], id="duplicate"),
    pytest.param([[0, 1, 2], [0, 1, 3]], id="out-of-range"),
    pytest.param([[0, 1, 2], [0, -1, 1]], id="negative"),
    pytest.param([[0, 1, 2], [2, 1, 0], [0, 2, 2**40]], id="huge"),
    pytest.param(np.array([[0, 1, 2], [0, 1, 2**63 + 5]], dtype=np.uint64), id="uint64-huge"),
    pytest.param(np.array([[0, 1, 2], [0, 1, 200]], dtype=np.uint8), id="uint8-out-of-range"),
    pytest.param(np.array([[0, 1, 2], [0, 1, -1]], dtype=np.int8), id="int8-negative"),
])
def test_orders_not_permutations(orders):
    with raises(ValueError, "orders"):
        ua.RankingPopulation.from_orders(orders)


def test_orders_message_names_the_row():
    with pytest.raises(ValueError, match=r"^orders\b.*row 1\b"):
        ua.RankingPopulation.from_orders([[0, 1, 2], [1, 1, 0], [2, 2, 2]])


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("constructor", ["ranks", "orders", "scores"])
@pytest.mark.parametrize("weights, exc", [
    pytest.param([1.0, 2.0], ValueError, id="too-short"),
    pytest.param([1.0, 2.0, 3.0, 4.0], ValueError, id="too-long"),
    pytest.param([[1.0, 2.0, 3.0]], ValueError, id="2-d"),
    pytest.param(1.0, ValueError, id="scalar"),
    pytest.param([1.0, np.nan, 1.0], ValueError, id="nan"),
    pytest.param([1.0, np.inf, 1.0], ValueError, id="inf"),
    pytest.param([1.0, -0.5, 1.0], ValueError, id="negative"),
    pytest.param([1.0, -1e-300, 1.0], ValueError, id="tiny-negative"),
    pytest.param([0.0, 0.0, 0.0], ValueError, id="all-zero"),
    pytest.param([True, False, True], TypeError, id="bool"),
    pytest.param(["1", "2", "3"], TypeError, id="str"),
    pytest.param([1.0, "a", 2], TypeError, id="mixed"),
    pytest.param([1 + 1j, 1, 1], TypeError, id="complex"),
])
def test_weights(constructor, weights, exc):
    build = {"ranks": ua.RankingPopulation, "orders": ua.RankingPopulation.from_orders,
             "scores": ua.RankingPopulation.from_scores}[constructor]
    data = np.argsort(RANKS, axis=1) if constructor == "orders" else RANKS
    with raises(exc, "weights"):
        build(data, weights)


# ---------------------------------------------------------------------------
# policies (utilities, game functions, Product)
# ---------------------------------------------------------------------------
BAD_POLICIES = [
    pytest.param([0.2, 0.3, 0.4], ValueError, id="sum-0.9"),
    pytest.param([0.2, 0.3, 0.5 + 2e-9], ValueError, id="sum-1+2e-9"),
    pytest.param([1.1, -0.1, 0.0], ValueError, id="negative"),
    pytest.param([np.nan, 0.5, 0.5], ValueError, id="nan"),
    pytest.param([np.inf, 0.0, 0.0], ValueError, id="inf"),
    pytest.param([0.5, 0.5], ValueError, id="too-short"),
    pytest.param([0.25] * 4, ValueError, id="too-long"),
    pytest.param([[0.2, 0.3, 0.5]], ValueError, id="2-d"),
    pytest.param([], ValueError, id="empty"),
    pytest.param(1.0, ValueError, id="scalar"),
    pytest.param([True, False, False], TypeError, id="bool"),
    pytest.param(["0.2", "0.3", "0.5"], TypeError, id="str"),
    pytest.param([0.2, None, 0.8], TypeError, id="None-entry"),
    pytest.param(None, TypeError, id="None"),
]


@pytest.mark.parametrize("policy, exc", BAD_POLICIES)
@pytest.mark.parametrize("function", ["utilities", "robust_level", "best_response", "exploitability",
                                      "worst_case_opponent"])
def test_policy(model, function, policy, exc):
    with raises(exc, "policy"):
        if function == "utilities":
            model.utilities(policy, 2)
        else:
            getattr(ua, function)(model, policy, 2)


@pytest.mark.parametrize("policy, exc", [p for p in BAD_POLICIES if "short" not in p.id and "long" not in p.id])
def test_product_policy(policy, exc):
    with raises(exc, "policy"):
        ua.Product(policy, 2)


@pytest.mark.parametrize("operand_name, call", [
    pytest.param("a", lambda m, x: m.win_rate(x, 0), id="win_rate-a"),
    pytest.param("b", lambda m, x: m.win_rate(0, x), id="win_rate-b"),
    pytest.param("multiset", lambda m, x: m.beats(x), id="beats"),
])
def test_product_of_wrong_size(model, operand_name, call):
    for product in (ua.Product([0.5, 0.5], 2), ua.Product([0.25] * 4, 1),
                    ua.ProductMixture([[0.5, 0.5]], [1.0], 2)):
        with raises(ValueError, operand_name):
            call(model, product)


# ---------------------------------------------------------------------------
# k
# ---------------------------------------------------------------------------
BAD_K = [
    pytest.param(0, ValueError, id="0"),
    pytest.param(-1, ValueError, id="-1"),
    pytest.param(2.0, TypeError, id="2.0"),
    pytest.param(np.float64(2.0), TypeError, id="np.float64"),
    pytest.param(True, TypeError, id="True"),
    pytest.param(np.bool_(True), TypeError, id="np.bool_"),
    pytest.param("2", TypeError, id="str"),
    pytest.param([2], TypeError, id="list"),
    pytest.param(None, TypeError, id="None"),
    pytest.param(K_MAX + 1, ValueError, id="K_MAX+1"),
    pytest.param(2**63, ValueError, id="2**63"),
    pytest.param(np.uint64(2**63), ValueError, id="np.uint64(2**63)"),
    pytest.param(2**70, ValueError, id="2**70"),
]


@pytest.mark.parametrize("k, exc", BAD_K)
@pytest.mark.parametrize("function", ["utilities", "robust_level", "best_response", "exploitability",
                                      "worst_case_opponent", "Product", "ProductMixture"])
def test_k(model, function, k, exc):
    with raises(exc, "k"):
        if function == "utilities":
            model.utilities(PI, k)
        elif function == "Product":
            ua.Product(PI, k)
        elif function == "ProductMixture":
            ua.ProductMixture([PI], [1.0], k)
        else:
            getattr(ua, function)(model, PI, k)


def test_numpy_integer_k_is_accepted(model):
    np.testing.assert_array_equal(model.utilities(PI, np.int64(3)), model.utilities(PI, 3))
    np.testing.assert_array_equal(model.utilities(PI, np.uint8(3)), model.utilities(PI, 3))


def test_k_must_agree_with_the_policy(model):
    with raises(ValueError, "k"):
        ua.robust_level(model, ua.Product(PI, 2), 3)
    with raises(ValueError, "k"):
        ua.robust_level(model, ua.ProductMixture([PI], [1.0], 2), 3)
    with raises(ValueError, "k"):
        ua.robust_level(model, ua.MultisetPolicy([[0, 1]], [1.0]), 2)
    with raises(TypeError, "k"):
        ua.robust_level(model, PI)


# ---------------------------------------------------------------------------
# ties
# ---------------------------------------------------------------------------
BAD_TIES = [
    pytest.param("Uniform", ValueError, id="capitalised"),
    pytest.param("", ValueError, id="empty"),
    pytest.param("best", ValueError, id="unknown"),
    pytest.param(" weak", ValueError, id="space"),
    pytest.param(None, TypeError, id="None"),
    pytest.param(0, TypeError, id="int"),
    pytest.param(b"weak", TypeError, id="bytes"),
    pytest.param(["weak"], TypeError, id="list"),
]
TIE_CALLS = {
    "utilities": lambda m, t: m.utilities(PI, 2, t),
    "beats": lambda m, t: m.beats([0, 1], t),
    "win_rate": lambda m, t: m.win_rate(0, 1, t),
    "pairwise": lambda m, t: m.pairwise(t),
    "robust_level": lambda m, t: ua.robust_level(m, PI, 2, t),
    "worst_case_opponent": lambda m, t: ua.worst_case_opponent(m, PI, 2, t),
    "best_response": lambda m, t: ua.best_response(m, PI, 2, t),
    "exploitability": lambda m, t: ua.exploitability(m, PI, 2, t),
}


@pytest.mark.parametrize("ties, exc", BAD_TIES)
@pytest.mark.parametrize("function", sorted(TIE_CALLS))
def test_ties(model, function, ties, exc):
    with raises(exc, "ties"):
        TIE_CALLS[function](model, ties)


@pytest.mark.parametrize("function", sorted(TIE_CALLS))
def test_ties_keyword(model, function):
    for ties in ua.TIES:
        TIE_CALLS[function](model, ties)


# ---------------------------------------------------------------------------
# responses and multisets as operands
# ---------------------------------------------------------------------------
BAD_OPERANDS = [
    pytest.param(-1, ValueError, id="negative"),
    pytest.param(M, ValueError, id="m"),
    pytest.param(2**70, ValueError, id="huge-int"),
    pytest.param(np.int64(-2), ValueError, id="np-negative"),
    pytest.param(1.0, TypeError, id="float"),
    pytest.param(np.float64(1.0), TypeError, id="np.float64"),
    pytest.param(np.array(1.0), TypeError, id="0-d-float-array"),
    pytest.param(True, TypeError, id="bool"),
    pytest.param(np.bool_(False), TypeError, id="np.bool_"),
    pytest.param("0", TypeError, id="str"),
    pytest.param(b"0", TypeError, id="bytes"),
    pytest.param(None, TypeError, id="None"),
    pytest.param([0, M], ValueError, id="member-m"),
    pytest.param([-1, 0], ValueError, id="member-negative"),
    pytest.param([0.0, 1.0], TypeError, id="member-float"),
    pytest.param([0, 1.5], TypeError, id="member-fraction"),
    pytest.param([True, False], TypeError, id="member-bool"),
    pytest.param([0, "a"], TypeError, id="member-str"),
    pytest.param([0, None], TypeError, id="member-None"),
    pytest.param([2**70], INVALID, id="member-huge"),
    pytest.param(np.array([0, 2**63 + 1], dtype=np.uint64), ValueError, id="member-uint64-huge"),
    pytest.param([[0, 1]], ValueError, id="nested"),
    pytest.param([[0], [1, 2]], INVALID, id="nested-ragged"),
    pytest.param([[]], ValueError, id="nested-empty"),
    pytest.param(np.zeros((2, 0), dtype=int), ValueError, id="2-d-empty-array"),
    pytest.param({0, 1}, TypeError, id="set"),
    pytest.param(object(), TypeError, id="object"),
]


@pytest.mark.parametrize("value, exc", BAD_OPERANDS)
@pytest.mark.parametrize("operand_name, call", [
    pytest.param("a", lambda m, x: m.win_rate(x, 0), id="win_rate-a"),
    pytest.param("b", lambda m, x: m.win_rate(0, x), id="win_rate-b"),
    pytest.param("multiset", lambda m, x: m.beats(x), id="beats"),
])
def test_operands(model, operand_name, call, value, exc):
    with raises(exc, operand_name):
        call(model, value)


# ---------------------------------------------------------------------------
# MultisetPolicy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("multisets, probabilities, exc, name", [
    pytest.param([[0], [1, 2]], [1.0], ValueError, "probabilities", id="probabilities-too-short"),
    pytest.param([[0], [1, 2]], [0.5, 0.25, 0.25], ValueError, "probabilities", id="probabilities-too-long"),
    pytest.param([[0], [1, 2]], [0.5, 0.4], ValueError, "probabilities", id="sum-0.9"),
    pytest.param([[0], [1, 2]], [1.5, -0.5], ValueError, "probabilities", id="negative"),
    pytest.param([[0], [1, 2]], [np.nan, 1.0], ValueError, "probabilities", id="nan"),
    pytest.param([[0], [1, 2]], [[0.5, 0.5]], ValueError, "probabilities", id="probabilities-2-d"),
    pytest.param([[0], [1, 2]], [True, False], TypeError, "probabilities", id="probabilities-bool"),
    pytest.param([], [], ValueError, "probabilities", id="no-multisets"),
    pytest.param([[[0, 1]], [2]], [0.5, 0.5], ValueError, "multisets", id="nested-too-deep"),
    pytest.param([[[]]], [1.0], ValueError, "multisets", id="nested-too-deep-empty"),
    pytest.param([0, 1], [0.5, 0.5], ValueError, "multisets", id="not-nested"),
    pytest.param([[0.5], [1]], [0.5, 0.5], TypeError, "multisets", id="float-member"),
    pytest.param([[0], [True]], [0.5, 0.5], TypeError, "multisets", id="bool-member"),
    pytest.param([[0], [-1]], [0.5, 0.5], ValueError, "multisets", id="negative-member"),
    pytest.param([[0], "ab"], [0.5, 0.5], TypeError, "multisets", id="str-member"),
    pytest.param([[0], [[1], [2, 3]]], [0.5, 0.5], INVALID, "multisets", id="ragged-member"),
    pytest.param("ab", [0.5, 0.5], TypeError, "multisets", id="str"),
    pytest.param(5, [1.0], TypeError, "multisets", id="int"),
    pytest.param(None, [1.0], TypeError, "multisets", id="None"),
    pytest.param(([0], [1]), None, TypeError, "probabilities", id="probabilities-None"),
])
def test_multiset_policy(multisets, probabilities, exc, name):
    with raises(exc, name):
        ua.MultisetPolicy(multisets, probabilities)


def test_multiset_policy_out_of_range_at_use(model):
    policy = ua.MultisetPolicy([[0], [1, M]], [0.5, 0.5])
    with raises(ValueError, "a"):
        model.win_rate(policy, 0)
    with raises(ValueError, "b"):
        model.win_rate(0, policy)
    with raises(ValueError, "multiset"):
        model.beats(policy)
    with pytest.raises(ValueError, match="multisets"):
        model.beats(policy)


def test_multiset_policy_accepts_ragged_and_empty(model):
    policy = ua.MultisetPolicy([[], [1, 1, 2], (0,), np.array([2, 0])], [0.1, 0.2, 0.3, 0.4])
    assert 0.0 <= model.win_rate(policy, 0) <= 1.0
    assert ua.MultisetPolicy(np.array([[0, 1], [1, 2]]), [0.5, 0.5]).multisets[1].tolist() == [1, 2]


# ---------------------------------------------------------------------------
# ProductMixture
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("policies, probabilities, exc, name", [
    pytest.param(PI, [1.0], ValueError, "policies", id="1-d"),
    pytest.param([[PI]], [1.0], ValueError, "policies", id="3-d"),
    pytest.param([PI, [0.5, 0.4, 0.0]], [0.5, 0.5], ValueError, "policies", id="row-sum-0.9"),
    pytest.param([PI, [1.5, -0.5, 0.0]], [0.5, 0.5], ValueError, "policies", id="row-negative"),
    pytest.param([PI, [np.nan, 0.5, 0.5]], [0.5, 0.5], ValueError, "policies", id="row-nan"),
    pytest.param([PI, [0.5, 0.5]], [0.5, 0.5], ValueError, "policies", id="ragged"),
    pytest.param(np.zeros((0, 3)), [], ValueError, "policies", id="no-components"),
    pytest.param([[True, False, False]], [1.0], INVALID, "policies", id="bool-list"),
    pytest.param(np.array([[True, False, False]]), [1.0], TypeError, "policies", id="bool-array"),
    pytest.param([["a", "b", "c"]], [1.0], INVALID, "policies", id="str"),
    pytest.param(None, [1.0], INVALID, "policies", id="None"),
    pytest.param([PI, PI], [1.0], ValueError, "probabilities", id="probabilities-too-short"),
    pytest.param([PI, PI], [0.5, 0.4], ValueError, "probabilities", id="probabilities-sum-0.9"),
    pytest.param([PI, PI], [1.5, -0.5], ValueError, "probabilities", id="probabilities-negative"),
    pytest.param([PI, PI], [[0.5, 0.5]], ValueError, "probabilities", id="probabilities-2-d"),
])
def test_product_mixture(policies, probabilities, exc, name):
    with raises(exc, name):
        ua.ProductMixture(policies, probabilities, 2)


# ---------------------------------------------------------------------------
# model argument of the game functions
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("function", ["robust_level", "best_response", "exploitability", "worst_case_opponent"])
@pytest.mark.parametrize("bad", [None, RANKS, "model"], ids=["None", "array", "str"])
def test_model_argument(function, bad):
    with raises(TypeError, "model"):
        getattr(ua, function)(bad, PI, 2)


# ---------------------------------------------------------------------------
# accepted edge cases (must not raise)
# ---------------------------------------------------------------------------
def test_policy_within_tolerance_is_accepted(model):
    pi = np.array([0.2, 0.3, 0.5 + 5e-10])
    model.utilities(pi, 2)
    ua.Product(pi, 2)


def test_k_up_to_K_MAX_is_accepted(model):
    assert ua.Product(PI, K_MAX).k == K_MAX
    assert 0.0 <= ua.robust_level(model, PI, K_MAX) <= 1.0


def test_array_likes_are_accepted():
    as_tuple = ua.RankingPopulation(tuple(tuple(r) for r in RANKS.tolist()), (1, 2, 3))
    as_array = ua.RankingPopulation(RANKS, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(as_tuple.pairwise(), as_array.pairwise())
    np.testing.assert_array_equal(as_tuple.utilities((0.2, 0.3, 0.5), 2), as_array.utilities(PI, 2))
    non_contiguous = np.asfortranarray(np.repeat(RANKS, 2, axis=1)[:, ::2])
    np.testing.assert_array_equal(ua.RankingPopulation(non_contiguous, (1, 2, 3)).pairwise(), as_array.pairwise())
