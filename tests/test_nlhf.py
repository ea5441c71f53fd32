"""The set of maximal lotteries and the range of NLHF's robust levels over it,
checked against brute force: the optimal face of the maxmin LP by enumerating
every basic solution of its constraints (pairwise matrix from the oracle), and
the levels at its vertices and on a grid over it computed by the oracle."""

from __future__ import annotations

import itertools
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest

import oracle
import ualign as ua
from helpers import random_ranks
from ualign.solvers import nlhf
from ualign.solvers.nlhf import nlhf_level_range
from ualign.solvers.results import MaximalLotterySet

TIES = oracle.TIES
#: Methods of solve_nlhf per convention: the interior point (whose crossover point is
#: usually strictly complementary) and HiGHS (a vertex: usually not).
METHODS = {"uniform": ("ipm", "lp"), "half": ("ipm", "lp"), "strict": ("lp",), "weak": ("lp",)}
KS = (1, 2, 3)


def distinct(points: List[np.ndarray], tol: float = 1e-9) -> List[np.ndarray]:
    kept: List[np.ndarray] = []
    for x in points:
        if not any(np.abs(x - y).max() <= tol for y in kept):
            kept.append(x)
    return kept


def brute_optimal_face(M: np.ndarray) -> Tuple[float, np.ndarray]:
    """``max v`` s.t. ``Mᵀp >= v``, ``p`` in the simplex: every basic solution of the
    constraints on ``(p, v)`` (m tight inequalities and ``sum p = 1``), the value, and the
    vertices of the optimal face (the basic solutions attaining it)."""
    m = M.shape[0]
    rows = [np.r_[np.eye(m)[y], 0.0] for y in range(m)] + [np.r_[M[:, z], -1.0] for z in range(m)]
    total = np.r_[np.ones(m), 0.0]
    rhs = np.r_[np.zeros(m), 1.0]
    basic = []
    for tight in itertools.combinations(range(2 * m), m):
        A = np.vstack([rows[i] for i in tight] + [total])
        if abs(np.linalg.det(A)) < 1e-12:
            continue
        w = np.linalg.solve(A, rhs)
        if all(row @ w >= -1e-12 for row in rows):
            basic.append(w)
    value = max(w[-1] for w in basic)
    return value, np.array(distinct([w[:m] for w in basic if w[-1] >= value - 1e-12]))


def same_points(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> bool:
    return (len(a) == len(b) and all(np.abs(b - x).max(axis=1).min() <= tol for x in a)
            and all(np.abs(a - y).max(axis=1).min() <= tol for y in b))


def hull_grid(vertices: np.ndarray, steps: int) -> np.ndarray:
    """Points of the convex hull with barycentric coordinates in multiples of 1/steps."""
    n = vertices.shape[0]
    points = [np.array(c, dtype=np.float64) / steps @ vertices
              for c in itertools.product(range(steps + 1), repeat=n) if sum(c) == steps]
    return np.array([p / p.sum() for p in points])


def oracle_level(ranks: Any, weights: Any, policy: np.ndarray, k: int, ties: str) -> float:
    return oracle.robust_level(ranks, weights, [float(x) for x in policy], k, ties)


def check_against_brute_force(ranks: np.ndarray, weights: Optional[np.ndarray], ties: str,
                              grid_steps: int = 4) -> bool:
    """Every claim of solve_nlhf's set and of nlhf_level_range against brute force;
    returns whether the maximal lottery is unique."""
    model = ua.RankingPopulation(ranks, weights)
    M = oracle.pairwise(ranks, weights, ties)
    value, vertices = brute_optimal_face(M)
    unique = len(vertices) == 1
    sets = []
    for method in METHODS[ties]:
        result = ua.solve_nlhf(model, ties=ties, method=method)
        lotteries = result.lotteries
        assert isinstance(lotteries, MaximalLotterySet) and lotteries.ties == ties
        assert result.unique is lotteries.unique is unique
        assert lotteries.dimension == np.linalg.matrix_rank(vertices[1:] - vertices[0]) if not unique \
            else lotteries.dimension == 0
        assert lotteries.complete
        assert same_points(lotteries.vertices, vertices)
        np.testing.assert_allclose(lotteries.lower, vertices.min(axis=0), rtol=0, atol=1e-9)
        np.testing.assert_allclose(lotteries.upper, vertices.max(axis=0), rtol=0, atol=1e-9)
        assert set(lotteries.support) == set(np.flatnonzero(vertices.max(axis=0) > 1e-9))
        assert lotteries.value == pytest.approx(value, abs=1e-9)
        assert lotteries.rank_gap[0] <= nlhf.RANK_TOLERANCE < lotteries.rank_gap[1]
        sets.append(lotteries)
        for k in KS:
            span = nlhf_level_range(model, k, ties, lotteries=lotteries)
            assert span.unique is unique and span.exact and span.k == k and span.ties == ties
            at_vertices = [oracle_level(ranks, weights, v, k, ties) for v in vertices]
            # the minimum of a concave function over a polytope: at a vertex
            assert span.min_level == pytest.approx(min(at_vertices), abs=1e-12)
            assert oracle_level(ranks, weights, span.min_policy, k, ties) == pytest.approx(span.min_level, abs=1e-12)
            assert oracle_level(ranks, weights, span.max_policy, k, ties) == pytest.approx(span.max_level, abs=1e-12)
            assert (M.T @ span.max_policy).min() >= value - 1e-9   # a maximal lottery
            assert span.min_level <= span.max_level <= span.max_level_bound
            assert span.max_level_bound - span.max_level <= 1e-9
            own = oracle_level(ranks, weights, result.policy, k, ties)
            assert span.min_level - 1e-12 <= own <= span.max_level_bound + 1e-12
            if unique:
                assert span.min_level == span.max_level == span.max_level_bound
                assert span.min_level == pytest.approx(own, abs=1e-12)
            else:
                grid = [oracle_level(ranks, weights, p, k, ties) for p in hull_grid(vertices, grid_steps)]
                assert min(grid) >= span.min_level - 1e-12
                assert max(grid) <= span.max_level_bound + 1e-12
            if k == 1:  # every maximal lottery has the game's value as its k = 1 level
                assert span.min_level == pytest.approx(value, abs=1e-9)
                assert span.max_level_bound == pytest.approx(value, abs=1e-9)
    # the strictly complementary pair of the interior point and HiGHS's vertex agree
    assert all(same_points(s.vertices, sets[0].vertices) and s.dimension == sets[0].dimension for s in sets)
    return unique


# ---------------------------------------------------------------------------
# unique maximal lotteries
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ties", ["uniform", "half"])
def test_odd_strict_populations_have_a_unique_maximal_lottery(seed: int, ties: str) -> None:
    """Laffond, Laslier and Le Breton: an odd number of voters with strict orders
    gives a margin matrix with odd off-diagonal entries, hence one maximal lottery."""
    rng = np.random.default_rng(seed)
    n, m = 2 * int(rng.integers(1, 8)) + 1, int(rng.integers(2, 9))
    model = ua.RankingPopulation.from_orders(np.array([rng.permutation(m) for _ in range(n)]))
    for method in METHODS[ties]:
        result = ua.solve_nlhf(model, ties=ties, method=method)
        assert result.unique is True and result.lotteries is not None
        assert result.lotteries.dimension == 0 and result.lotteries.vertices.shape == (1, m)
        np.testing.assert_array_equal(result.lotteries.lower, result.policy)
        for k in range(1, 9):
            span = nlhf_level_range(model, k, ties, lotteries=result.lotteries)
            level = ua.robust_level(model, result.policy, k, ties)
            assert span.exact and span.unique
            assert abs(span.min_level - level) <= 1e-12 and abs(span.max_level - level) <= 1e-12
            assert span.max_level_bound == span.max_level


@pytest.mark.parametrize("seed", range(6))
def test_odd_strict_populations_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m = 2 * int(rng.integers(1, 4)) + 1, int(rng.integers(3, 5))
    ranks = oracle.ranks_from_orders(np.array([rng.permutation(m) for _ in range(n)]))
    for ties in TIES:
        unique = check_against_brute_force(ranks, None, ties)
        assert unique or ties in ("strict", "weak")


# ---------------------------------------------------------------------------
# non-unique maximal lotteries
# ---------------------------------------------------------------------------
CONSTRUCTED = {
    # two voters split on the pair (0, 1), both above 2: the segment [e_0, e_1]
    "condorcet tie": (oracle.ranks_from_orders([[0, 1, 2], [1, 0, 2]]), None),
    # opposite orders: every pair ties, every policy is a maximal lottery
    "opposite orders": (oracle.ranks_from_orders([[0, 1, 2, 3], [3, 2, 1, 0]]), None),
    # a Condorcet cycle with a clone of response 0 (tied with it by every voter)
    "cloned response": (np.array([[0, 1, 2, 0], [2, 0, 1, 2], [1, 2, 0, 1]]), None),
    # four weighted voters, two of them tied on a pair
    "weighted even": (np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 2, 0, 1], [3, 1, 1, 0]]),
                      np.array([1.0, 1.0, 2.0, 2.0])),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
@pytest.mark.parametrize("ties", TIES)
def test_constructed_instances_brute_force(name: str, ties: str) -> None:
    ranks, weights = CONSTRUCTED[name]
    unique = check_against_brute_force(ranks, weights, ties, grid_steps=6)
    if ties in ("uniform", "half"):
        assert not unique


def test_condorcet_tie_levels() -> None:
    """Two voters split on (0, 1): the maximal lotteries are ``(a, 1 - a, 0)``. The
    vertices stay at 1/2 for every k (the other voter's favourite always wins); the
    even mix reaches ``k/(k+1)`` (by symmetry ``u_0 = u_1``, and under uniform ties
    ``sum_y pi(y) u_y = 1/(k+1)``), the most any policy can."""
    model = ua.RankingPopulation.from_orders([[0, 1, 2], [1, 0, 2]])
    for method in ("ipm", "lp"):
        lotteries = ua.solve_nlhf(model, method=method).lotteries
        assert lotteries is not None and lotteries.dimension == 1
        np.testing.assert_array_equal(lotteries.support, [0, 1])
        for k in range(1, 9):
            span = nlhf_level_range(model, k, lotteries=lotteries)
            assert span.min_level == pytest.approx(0.5, abs=1e-15)
            assert k / (k + 1) - 1e-9 <= span.max_level <= k / (k + 1) + 1e-12 <= span.max_level_bound + 2e-12
            if k > 1:  # at k = 1 every maximal lottery has level 1/2
                np.testing.assert_allclose(span.max_policy, [0.5, 0.5, 0.0], atol=1e-7)


@pytest.mark.parametrize("seed", range(12))
def test_random_small_populations_brute_force(seed: int) -> None:
    """Even voter counts, weak orders and integer weights: unique and non-unique sets."""
    rng = np.random.default_rng(200 + seed)
    n, m = 2 * int(rng.integers(1, 4)), int(rng.integers(3, 5))
    style = ("strict", "weak")[seed % 2]
    ranks = random_ranks(rng, n, m, style)
    weights = None if seed % 3 else rng.integers(1, 3, size=n).astype(np.float64)
    for ties in TIES:
        check_against_brute_force(ranks, weights, ties)


def test_random_populations_include_non_unique_sets() -> None:
    """The random brute-force instances above are not all unique (the test can fail)."""
    found = 0
    for seed in range(12):
        rng = np.random.default_rng(200 + seed)
        n, m = 2 * int(rng.integers(1, 4)), int(rng.integers(3, 5))
        ranks = random_ranks(rng, n, m, ("strict", "weak")[seed % 2])
        found += not ua.solve_nlhf(ua.RankingPopulation(ranks)).unique
    assert found >= 2


def test_partial_vertices_when_enumeration_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the enumeration budget the vertices are the LP extremes of each
    coordinate: a subset, flagged incomplete, with exact coordinate ranges."""
    ranks, weights = CONSTRUCTED["opposite orders"]
    model = ua.RankingPopulation(ranks, weights)
    _, vertices = brute_optimal_face(oracle.pairwise(ranks, weights, "uniform"))
    monkeypatch.setattr(nlhf, "_VERTEX_BUDGET", 0)
    lotteries = ua.solve_nlhf(model).lotteries
    assert lotteries is not None and not lotteries.complete and not lotteries.unique
    assert all(np.abs(vertices - v).max(axis=1).min() <= 1e-9 for v in lotteries.vertices)
    np.testing.assert_allclose(lotteries.lower, vertices.min(axis=0), atol=1e-9)
    np.testing.assert_allclose(lotteries.upper, vertices.max(axis=0), atol=1e-9)
    for k in KS:
        span = nlhf_level_range(model, k, lotteries=lotteries)
        assert not span.exact
        assert span.min_level >= min(oracle_level(ranks, weights, v, k, "uniform") for v in vertices) - 1e-12


def test_lotteries_computed_when_omitted() -> None:
    ranks, weights = CONSTRUCTED["condorcet tie"]
    model = ua.RankingPopulation(ranks, weights)
    given = nlhf_level_range(model, 3, "half", lotteries=ua.solve_nlhf(model, ties="half").lotteries)
    computed = nlhf_level_range(model, 3, "half")
    assert not computed.unique
    assert (computed.min_level, computed.max_level, computed.max_level_bound) == \
        (given.min_level, given.max_level, given.max_level_bound)


def test_result_repr_reports_uniqueness() -> None:
    ranks, weights = CONSTRUCTED["condorcet tie"]
    assert "unique=False" in repr(ua.solve_nlhf(ua.RankingPopulation(ranks, weights)))


def test_level_range_validation() -> None:
    ranks, weights = CONSTRUCTED["condorcet tie"]
    model = ua.RankingPopulation(ranks, weights)
    lotteries = ua.solve_nlhf(model).lotteries
    with pytest.raises(ValueError, match="^k:"):
        nlhf_level_range(model, 0, lotteries=lotteries)
    with pytest.raises(TypeError, match="^k:"):
        nlhf_level_range(model, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^ties:"):
        nlhf_level_range(model, 2, "loose")
    with pytest.raises(ValueError, match="^lotteries:"):
        nlhf_level_range(model, 2, "strict", lotteries=lotteries)
    with pytest.raises(TypeError, match="^lotteries:"):
        nlhf_level_range(model, 2, lotteries=np.array([0.5, 0.5, 0.0]))  # type: ignore[arg-type]
    other = ua.RankingPopulation.from_orders([[0, 1, 2, 3], [3, 2, 1, 0]])
    with pytest.raises(ValueError, match="^lotteries:"):
        nlhf_level_range(other, 2, lotteries=lotteries)
    with pytest.raises(ValueError, match="^tol:"):
        nlhf_level_range(model, 2, lotteries=lotteries, tol=0.0)


# ---------------------------------------------------------------------------
# segments (dimension 1): interpolated utilities, certified by tangents
# ---------------------------------------------------------------------------
def segment_instances() -> List[Tuple[np.ndarray, Optional[np.ndarray], str]]:
    """Small populations whose maximal lotteries form a segment, under each convention."""
    found = []
    for seed in range(2, 62):
        rng = np.random.default_rng(500 + seed)
        n, m = 2 * int(rng.integers(1, 4)), int(rng.integers(3, 6))
        ranks = random_ranks(rng, n, m, ("strict", "weak")[seed % 2])
        weights = None if seed % 3 else rng.integers(1, 3, size=n).astype(np.float64)
        for ties in TIES:
            lotteries = ua.solve_nlhf(ua.RankingPopulation(ranks, weights), ties=ties).lotteries
            if lotteries is not None and lotteries.dimension == 1:
                found.append((ranks, weights, ties))
    return found


SEGMENTS = segment_instances()


def check_segment_against_grid(ranks: np.ndarray, weights: Optional[np.ndarray], ties: str, k: int,
                               steps: int = 100) -> None:
    model = ua.RankingPopulation(ranks, weights)
    lotteries = ua.solve_nlhf(model, ties=ties).lotteries
    assert lotteries is not None and lotteries.vertices.shape[0] == 2
    V0, V1 = lotteries.vertices
    span = nlhf_level_range(model, k, ties, lotteries=lotteries)
    grid = [oracle_level(ranks, weights, (1 - t) * V0 + t * V1, k, ties) for t in np.linspace(0.0, 1.0, steps + 1)]
    assert span.exact and not span.unique
    assert span.min_level == pytest.approx(min(grid[0], grid[-1]), abs=1e-12)
    assert min(grid) >= span.min_level - 1e-12
    assert max(grid) <= span.max_level_bound + 1e-12
    assert span.max_level_bound - span.max_level <= 1e-9
    assert oracle_level(ranks, weights, span.max_policy, k, ties) == pytest.approx(span.max_level, abs=1e-12)
    assert oracle_level(ranks, weights, span.min_policy, k, ties) == pytest.approx(span.min_level, abs=1e-12)
    # the policy attaining max_level lies on the segment
    t = float((span.max_policy - V0) @ (V1 - V0) / ((V1 - V0) @ (V1 - V0)))
    assert -1e-12 <= t <= 1 + 1e-12
    np.testing.assert_allclose(span.max_policy, V0 + t * (V1 - V0), rtol=0, atol=1e-12)


def test_segment_instances_cover_every_convention() -> None:
    assert {ties for _, _, ties in SEGMENTS} == set(TIES)
    assert len(SEGMENTS) >= 12


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize("k", (1, 2, 4))
def test_segment_levels_against_a_fine_grid(case: int, k: int) -> None:
    ranks, weights, ties = SEGMENTS[case * len(SEGMENTS) // 12]
    check_segment_against_grid(ranks, weights, ties, k)


def test_segment_interior_maximum_against_a_fine_grid() -> None:
    """The condorcet tie (a segment under uniform/half ties): the largest level is inside it."""
    ranks, weights = CONSTRUCTED["condorcet tie"]
    for ties in ("uniform", "half"):
        for k in (2, 3, 7):
            check_segment_against_grid(ranks, weights, ties, k)
    span = nlhf_level_range(ua.RankingPopulation(ranks, weights), 3)
    assert span.max_level > span.min_level + 0.1


def test_segment_search_on_the_population_when_interpolants_mislead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interpolants that locate nothing (all coefficients zero) leave the certificate
    open: the tangent search on the population itself closes it."""
    chebyshev = nlhf._chebyshev_nodes

    def misleading(k: int) -> Tuple[np.ndarray, np.ndarray]:
        nodes, from_values = chebyshev(k)
        return nodes, np.zeros_like(from_values)

    monkeypatch.setattr(nlhf, "_chebyshev_nodes", misleading)
    ranks, weights = CONSTRUCTED["condorcet tie"]
    for ties in ("uniform", "half"):
        for k in (2, 5):
            check_segment_against_grid(ranks, weights, ties, k)
    span = nlhf_level_range(ua.RankingPopulation(ranks, weights), 4)
    assert span.iterations > 0


def test_level_ranges_of_many_prompts_equal_one_at_a_time() -> None:
    """The batched search (segments of several prompts, and a larger set) returns each
    prompt's nlhf_level_range."""
    cases = SEGMENTS[:6] + [(*CONSTRUCTED["opposite orders"], "uniform")]
    by_ties = {}
    for ranks, weights, ties in cases:
        by_ties.setdefault(ties, []).append(ua.RankingPopulation(ranks, weights))
    for ties, models in by_ties.items():
        sets = [ua.solve_nlhf(model, ties=ties).lotteries for model in models]
        for k in (1, 3):
            together = nlhf.level_ranges(models, sets, k, ties)
            for model, lotteries, span in zip(models, sets, together):
                alone = nlhf_level_range(model, k, ties, lotteries=lotteries)
                assert (span.min_level, span.max_level, span.max_level_bound) == \
                    (alone.min_level, alone.max_level, alone.max_level_bound)


def test_audit_level_range_columns_equal_nlhf_level_range() -> None:
    models = [ua.RankingPopulation(ranks, weights) for ranks, weights, ties in SEGMENTS if ties == "uniform"][:5]
    models += [ua.RankingPopulation(*CONSTRUCTED["opposite orders"]),
               ua.RankingPopulation.from_orders([[0, 1, 2], [1, 2, 0], [0, 2, 1]])]
    ks = [1, 2, 4]
    frame = ua.audit_many(models, ks=ks, methods=["nlhf"])
    for row in frame.itertuples(index=False):
        result = ua.solve_nlhf(models[row.prompt])
        span = nlhf_level_range(models[row.prompt], row.k, lotteries=result.lotteries)
        assert (row.level_low, row.level_high) == (span.min_level, span.max_level)
    assert (frame.level_high > frame.level_low + 1e-6).any()


def test_support_program_of_a_degenerate_weak_population() -> None:
    # HiGHS ended this support LP in "numerical difficulties" under its tight
    # tolerances; the solvers rerun it with the default ones.
    model = ua.RankingPopulation([[1, 1, 1, 0, 1], [2, 2, 1, 2, 0], [0, 0, 2, 1, 0], [0, 2, 2, 1, 2],
                                  [2, 1, 0, 1, 1], [2, 0, 1, 1, 0]])
    for ties in ("uniform", "half", "strict", "weak"):
        result = ua.solve_nlhf(model, ties=ties)
        assert result.lotteries is not None and result.unique == (result.lotteries.dimension == 0)
        value = (model.pairwise(ties).T @ result.policy).min()
        assert value >= result.upper_bound - 1e-9


# ---------------------------------------------------------------------------
# larger sets: Kelley's program solved by the dense simplex, warm-started
# ---------------------------------------------------------------------------
def test_cut_models_match_highs_as_cuts_arrive() -> None:
    """The simplex of _CutModels, warm-started as rounds of cuts arrive (some repeated,
    some nearly parallel) to programs of different sizes solved together, solves
    Kelley's program of each every round: the maximum of the cuts at its point
    equals its certified bound (so both are the optimum), which is also HiGHS's (to
    HiGHS's tolerance)."""
    from ualign.solvers._common import cut_lower_bound, minimax_lp

    rng = np.random.default_rng(900)
    dims = np.array([2, 3, 6, 4, 5, 3], dtype=np.int64)
    programs = nlhf._CutModels(dims)
    cuts: List[List[np.ndarray]] = [[np.zeros(0), np.zeros((0, d)), np.zeros((0, d))] for d in dims]
    for _ in range(8):
        rows = np.flatnonzero(rng.random(dims.size) < 0.8)
        for j in rows.tolist():
            d, (values, grads, points) = int(dims[j]), cuts[j]
            c = int(rng.integers(1, 12))
            g = rng.normal(size=(c, d))
            if values.size and rng.random() < 0.5:  # a repeat of an earlier cut, and a near-copy
                g[0] = grads[0]
                g[-1] = grads[-1] + 1e-13 * rng.normal(size=d)
            lam = rng.dirichlet(np.ones(d))
            v = rng.random(c)
            programs.add(j, v - g @ lam, g)
            cuts[j] = [np.concatenate([values, v]), np.vstack([grads, g]),
                       np.vstack([points, np.broadcast_to(lam, (c, d))])]
        started = rows[programs.started[rows]]
        found, bounds = programs.solve(started)
        for j, lam, bound in zip(started.tolist(), found, bounds):
            d, (values, grads, points) = int(dims[j]), cuts[j]
            assert (lam[d:] == 0).all() and lam.min() >= -1e-12 and abs(lam.sum() - 1.0) <= 1e-12
            offsets = values - np.einsum("cz,cz->c", grads, points)
            upper = float((offsets + grads @ np.maximum(lam[:d], 0.0)).max())
            assert abs(upper - bound) <= 1e-12
            reference, weights = minimax_lp(values, grads, points)
            assert reference is not None and weights is not None
            assert bound == pytest.approx(cut_lower_bound(values, grads, points, weights), abs=1e-9)


def test_central_supports_equal_the_support_programs() -> None:
    """Where a solver's maximal lottery is not strictly complementary (HiGHS's vertex),
    the analytic centres of the restricted games give the supports the linear
    programs give, including where the first restriction admits equilibria outside
    the set (its centre loses to a response outside, which then joins)."""
    checked = grown = 0
    for seed in range(60):
        rng = np.random.default_rng(700 + seed)
        n, m = 2 * int(rng.integers(1, 5)), int(rng.integers(3, 9))
        model = ua.RankingPopulation(random_ranks(rng, n, m, ("strict", "weak")[seed % 2]))
        P = model.pairwise("uniform")
        p = nlhf._maxmin_lp(P)[0]
        if nlhf._supports_of_pair(P, p, p, 0.5, 0.5) is not None:
            continue
        pair = nlhf._central_supports([P], [p])[0]
        assert pair is not None
        played = nlhf._largest_support(P, 0.5)
        np.testing.assert_array_equal(pair[0], played)
        np.testing.assert_array_equal(pair[1], played)
        checked += 1
        candidates = P @ p - 0.5 >= -nlhf._JOIN_MARGIN
        A = (P - 0.5)[np.ix_(candidates, candidates)]
        centre = np.zeros(m)
        centre[candidates] = nlhf._interior_point(A[None], np.array([A.shape[0]]), 1e-13, 200, crossover=False)[0][0]
        grown += nlhf._supports_of_pair(P, centre, centre, 0.5, 0.5) is None
    assert checked >= 10 and grown >= 1


def _nearly_degenerate_game(rng: np.random.Generator, s: int = 7, extra: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """A pairwise matrix ``M`` (``M + Mᵀ = 1``) whose unique maximal lottery plays one
    of its ``s`` responses with probability 3e-9; the ``extra`` others lose to it by
    about 1e-5. Returns ``M`` and that support."""
    m = s + extra
    p = rng.dirichlet(np.ones(s))
    p[0] = 3e-9
    p /= p.sum()
    C = rng.normal(size=(s, s))
    Q = np.eye(s) - np.outer(p, p) / (p @ p)   # kernel of Q (C - Cᵀ) Q: p (odd s, generic C)
    A = np.zeros((m, m))
    A[:s, :s] = Q @ (C - C.T) @ Q
    for z in range(s, m):
        r = rng.normal(size=s)
        r -= (r @ p + 2e-4 * (1 + z - s)) / (p @ p) * p   # r·p < 0: z loses to the lottery
        A[z, :s], A[:s, z] = r, -r
    D = rng.normal(size=(extra, extra))
    A[s:, s:] = D - D.T
    support = np.zeros(m, dtype=bool)
    support[:s] = True
    return A * (0.4 / np.abs(A).max()) + 0.5, support


def test_central_supports_settle_a_nearly_degenerate_lottery() -> None:
    """When the centre of the restricted game is within the margin of ambiguous (a
    response played with probability 3e-9), the exact equilibrium on what the centre
    plays settles the supports (the constructed ones); the centre alone did not. (The
    support program cannot: at its scale a member played with 3e-9 counts as unplayed.)"""
    for seed in range(6):
        M, support = _nearly_degenerate_game(np.random.default_rng(seed))
        p = nlhf.maximal_lottery(M, tol=1e-12)[0]
        candidates = M @ p - 0.5 >= -nlhf._JOIN_MARGIN
        A = (M - 0.5)[np.ix_(candidates, candidates)]
        centre = np.zeros(M.shape[0])
        centre[candidates] = nlhf._interior_point(A[None], np.array([A.shape[0]]), 1e-13, 200, crossover=False)[0][0]
        assert nlhf._supports_of_pair(M, centre, centre, 0.5, 0.5) is None
        pair = nlhf._central_supports([M], [p])[0]
        assert pair is not None
        np.testing.assert_array_equal(pair[0], support)
        np.testing.assert_array_equal(pair[1], support)


def test_double_oracle_batch_matches_highs() -> None:
    """maximal_lotteries on games of different sizes together: each result is the
    unique maximal lottery (odd voter counts), as HiGHS finds it, with its
    exploitability evaluated on the whole matrix; the double oracle took several
    rounds on some."""
    rng = np.random.default_rng(41)
    matrices = []
    for _ in range(12):
        n, m = 2 * int(rng.integers(2, 12)) + 1, int(rng.integers(2, 31))
        model = ua.RankingPopulation.from_orders(np.array([rng.permutation(m) for _ in range(n)]))
        matrices.append(model.pairwise())
    found = nlhf.maximal_lotteries(matrices, tol=1e-12)
    for M, (pi, expl, _, converged, history) in zip(matrices, found):
        assert converged and expl <= 1e-12 and pi.min() >= 0 and abs(pi.sum() - 1.0) <= 1e-12
        assert expl == pytest.approx(((M - 0.5) @ pi).max(), abs=1e-15)
        assert history[-1] == expl
        np.testing.assert_allclose(pi, nlhf._maxmin_lp(M)[0], rtol=0, atol=1e-8)
    assert max(len(history) for *_, history in found) >= 3
