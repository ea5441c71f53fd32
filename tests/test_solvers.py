"""Solvers with certificates (issue 4): NLHF, the MPNE, the optimal k-sample
policy, committees, RLHF and certify — each checked against an independent
computation (a grid over the simplex, enumeration of multisets, the brute-force
oracle, closed forms)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

import oracle
import ualign as ua
from helpers import outputs_by_thread_count, random_ranks, random_weights
from ualign import instances
from ualign._validate import tie_code
from ualign.solvers import bradley_terry, maximal_lottery
from ualign.solvers._common import Kernels

MIRROR = {"uniform": "uniform", "half": "half", "strict": "weak", "weak": "strict"}
SEEDS = range(10)


def random_population(seed: int, n_max: int = 10, m_max: int = 6) -> ua.RankingPopulation:
    """Rankings with ties (every rank style of the foundation's tests) and weights."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, n_max + 1))
    m = int(rng.integers(2, m_max + 1))
    style = ("strict", "weak", "nondense", "float", "weak")[seed % 5]
    return ua.RankingPopulation(random_ranks(rng, n, m, style), random_weights(rng, n))


def simplex_grid(steps: int) -> np.ndarray:
    """All points of the 3-simplex with coordinates in multiples of 1/steps."""
    a, b = np.meshgrid(np.arange(steps + 1), np.arange(steps + 1), indexing="ij")
    keep = a + b <= steps
    pts = np.stack([a[keep], b[keep], steps - a[keep] - b[keep]], axis=1)
    return pts / steps


def utilities_on_grid(model: ua.RankingPopulation, k: int, game: str, grid: np.ndarray) -> np.ndarray:
    kern = Kernels(model, k, game)
    return np.array([kern.u(np.ascontiguousarray(p)) for p in grid])


def max_utility_on_grid(model: ua.RankingPopulation, k: int, game: str, grid: np.ndarray) -> np.ndarray:
    return utilities_on_grid(model, k, game, grid).max(axis=1)


# ---------------------------------------------------------------------------
# MPNE
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_mpne_random_instances(seed: int, game: str) -> None:
    model = random_population(seed)
    for k in range(1, 9):
        result = ua.solve_mpne(model, k, game)
        pi = result.policy
        assert result.converged and result.exploitability <= 1e-8
        assert result.level_ties == MIRROR[game]
        # level >= k/(k+1) - 1e-8: uniform level for the uniform game, the paper's weak level for the strict game
        assert result.robust_level >= k / (k + 1) - 1e-8
        # the result's figures are the exact kernels' figures
        assert result.robust_level == pytest.approx(ua.robust_level(model, pi, k, MIRROR[game]), abs=1e-15)
        assert result.exploitability == pytest.approx(ua.exploitability(model, pi, k, game), abs=1e-15)
        assert result.certificate.verdict == "equilibrium"
        assert result.certificate.bound == pytest.approx(k / (k + 1) - result.exploitability)
        if game == "uniform":  # the level is exactly k/(k+1) - exploitability
            assert result.robust_level == pytest.approx(k / (k + 1) - result.exploitability, abs=1e-14)


def test_mpne_against_the_oracle() -> None:
    """The equilibrium conditions re-checked with the brute-force oracle (enumeration)."""
    model = random_population(3, n_max=5, m_max=4)
    ranks, weights = np.asarray(model.ranks), model.weights
    for game in ("uniform", "strict"):
        for k in (2, 3):
            pi = ua.solve_mpne(model, k, game).policy
            u = [oracle.win_rate(ranks, weights, y, oracle.prod(pi, k), game) for y in range(model.n_responses)]
            value = math.fsum(p * v for p, v in zip(pi, u))
            assert max(u) - value <= 1e-12


@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_mpne_grid_m3(game: str) -> None:
    """m = 3: no grid policy has a smaller max_y u_y than the MPNE allows, and the
    MPNE is (up to tol) an equilibrium."""
    grid = simplex_grid(60)
    for seed in (1, 6):
        model = ua.RankingPopulation(np.random.default_rng(seed).integers(0, 3, size=(7, 3)),
                                     np.random.default_rng(seed).random(7) + 0.1)
        for k in (2, 4):
            result = ua.solve_mpne(model, k, game)
            u = utilities_on_grid(model, k, game, grid)
            grid_expl = u.max(axis=1) - np.einsum("gy,gy->g", grid, u)
            if game == "uniform":
                # every policy has max_y u_y >= 1/(k+1); the MPNE attains it
                assert u.max(axis=1).min() >= 1 / (k + 1) - 1e-12
                assert 1 - result.robust_level <= 1 / (k + 1) + 1e-8
            # exploitability is >= 0 everywhere, and no grid policy is closer to an equilibrium
            assert grid_expl.min() >= -1e-15
            assert result.exploitability <= min(grid_expl.min(), 1e-8) + 1e-12


@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_newton_polish_reuses_its_jacobians(game: str) -> None:
    """The Newton polish reaches the target on every prompt with fewer Jacobians
    than steps (chord steps on an unchanged support), and each prompt's policy is
    then an equilibrium to 1e-13 by the oracle."""
    from ualign.batch import PromptBatch
    from ualign.solvers import mpne

    rng = np.random.default_rng(5)
    models = [ua.RankingPopulation(random_ranks(rng, 30, 8, ("strict", "weak")[p % 2])) for p in range(12)]
    batch = PromptBatch(models)
    jacobians = np.zeros(len(models), dtype=np.int64)
    compute = batch.jacobian

    def counted(pi, k, ties, rows, selected, square=False):  # type: ignore[no-untyped-def]
        jacobians[rows] += 1
        return compute(pi, k, ties, rows, selected, square)

    batch.jacobian = counted  # type: ignore[method-assign]
    k = 3
    search = mpne._Search(batch, k, tie_code(game), batch.uniform())
    mpne.adaptive_pga(search, batch.all, batch.uniform(), 1e-8, 500, stop=1e-4)
    before = search.iterations.copy()
    mpne.newton_polish(search, batch.all)
    steps = search.iterations - before - 1   # the last iteration finds the target met
    stepped = steps > 0
    assert stepped.sum() >= len(models) // 2 and (jacobians[stepped] < steps[stepped]).all()
    for p, model in enumerate(models):
        pi = search.best_x[p, :model.n_responses]
        assert oracle.exploitability(model.ranks, model.weights, pi, k, game) <= 1e-13


def test_slow_projected_gradient_hands_over_to_newton() -> None:
    """Mixtures of a few Plackett–Luce types contract slowly under projected gradient
    ascent: with a stop, prompts hand over to Newton once within 1e-2 when more than
    a few iterations would be left; without one they go on to the tolerance. The
    solves end certified either way."""
    from ualign.batch import PromptBatch
    from ualign.solvers import mpne

    rng = np.random.default_rng(8)
    models = [ua.PlackettLuceMixture(rng.normal(size=(10, 40)), rng.random(10) + 0.1) for _ in range(6)]
    code = tie_code("uniform")
    batch = PromptBatch(models)
    handed = mpne._Search(batch, 3, code, batch.uniform())
    mpne.adaptive_pga(handed, batch.all, batch.uniform(), 1e-8, 500, stop=1e-4)
    early = (handed.best_ex > 1e-4) & (handed.best_ex <= mpne._HANDOFF)
    assert early.any() and (handed.best_ex <= mpne._HANDOFF).all()
    full = mpne._Search(batch, 3, code, batch.uniform())
    mpne.adaptive_pga(full, batch.all, batch.uniform(), 1e-4, 500)
    assert (full.iterations[early] > handed.iterations[early]).all()
    for result in ua.solvers.solve_mpne_batch(models, 3):
        assert result.converged and result.certificate.exploitability <= 1e-8


def test_mpne_methods_of_the_paper() -> None:
    model = random_population(2)
    k = 3
    for method in ("pga", "extragradient"):
        result = ua.solve_mpne(model, k, method=method, tol=1e-9)
        assert result.converged and result.exploitability <= 1e-9 and result.method == method
    hedge = ua.solve_mpne(model, k, method="hedge", tol=1e-9, max_iter=300)
    sigma = hedge.policy
    assert isinstance(sigma, ua.ProductMixture) and sigma.policies.shape[0] == hedge.iterations
    # Prop. D.3: the average sigma_T reaches k/(k+1) - Reg_T/T; the level is the exact kernel's
    assert hedge.robust_level >= k / (k + 1) - hedge.exploitability - 1e-12
    assert hedge.robust_level == pytest.approx(ua.robust_level(model, sigma), abs=1e-12)
    assert hedge.exploitability < 0.05 and not hedge.converged
    assert hedge.history[-1] == pytest.approx(hedge.exploitability)


def test_pga_may_not_converge_on_the_zero_sum_game() -> None:
    """k = 1 under uniform ties is constant-sum: plain PGA cycles; extragradient converges."""
    model = ua.RankingPopulation.from_orders([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    pga = ua.solve_mpne(model, 1, method="pga", max_iter=200, step=0.5, init=[0.6, 0.3, 0.1])
    assert not pga.converged
    eg = ua.solve_mpne(model, 1, method="extragradient", init=[0.6, 0.3, 0.1])
    assert eg.converged and np.allclose(eg.policy, 1 / 3, atol=1e-8)


@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_the_game_is_monotone(game: str) -> None:
    """The documented structure behind the solvers: the symmetric part of the
    Jacobian of u is negative semidefinite on the simplex's tangent space."""
    for seed in range(6):
        model = random_population(seed)
        m = model.n_responses
        rng = np.random.default_rng(seed)
        P = np.eye(m) - 1.0 / m
        for k in (1, 2, 5):
            pi = rng.dirichlet(np.ones(m))
            _, J = Kernels(model, k, game).jacobian(pi, range(m))
            assert np.linalg.eigvalsh(P @ (J + J.T) @ P).max() <= 1e-12


# ---------------------------------------------------------------------------
# NLHF
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_nlhf_is_the_k1_mpne(seed: int) -> None:
    model = random_population(seed)
    result = ua.solve_nlhf(model)
    M = model.pairwise()
    pi = result.policy
    assert (pi @ M).min() >= 0.5 - 1e-10            # a maximal lottery
    assert result.robust_level >= 0.5 - 1e-10 and result.exploitability <= 1e-10
    assert result.value == pytest.approx(0.5, abs=1e-10) and result.upper_bound == 0.5
    mpne = ua.solve_mpne(model, 1)
    assert mpne.robust_level == pytest.approx(result.robust_level, abs=1e-10)
    assert mpne.exploitability <= 1e-10
    lp = ua.solve_nlhf(model, method="lp")     # HiGHS: an independent solver of the same LP
    assert lp.robust_level == pytest.approx(0.5, abs=1e-9) and (lp.policy @ M).min() >= 0.5 - 1e-9


def test_nlhf_strict_and_weak_conventions() -> None:
    model = random_population(4)
    for ties in ("strict", "weak"):
        result = ua.solve_nlhf(model, ties=ties)
        P = model.pairwise(ties)
        assert result.method == "lp" and result.converged
        assert result.value == pytest.approx((result.policy @ P).min(), abs=1e-12)
        assert result.upper_bound >= result.value - 1e-12
        assert result.upper_bound - result.value <= 1e-9


def test_maximal_lottery_ipm_matches_highs() -> None:
    rng = np.random.default_rng(0)
    m = 61
    orders = (np.arange(m)[None, :] + np.arange(m)[:, None]) % m   # the cyclic population of the benchmark
    model = ua.RankingPopulation.from_orders(orders, weights=rng.uniform(0.5, 1.5, m))
    M = model.pairwise()
    pi, expl, _, converged, _ = maximal_lottery(M, tol=1e-12)
    assert converged and expl <= 1e-12 and abs(pi.sum() - 1) < 1e-12 and pi.min() >= 0
    lp = ua.solve_nlhf(model, method="lp")
    assert np.abs(lp.policy - pi).max() <= 1e-6


def test_prop_4_1_nlhf_stuck_while_mpne_scales() -> None:
    eps = 0.1
    model = instances.prop_4_1_instance(eps)
    nlhf = ua.solve_nlhf(model).policy
    assert np.allclose(nlhf, [1.0, 0.0])
    for k in range(1, 9):
        for ties in ("uniform", "weak"):
            assert ua.robust_level(model, nlhf, k, ties) <= 0.5 + eps + 1e-12
        mpne = ua.solve_mpne(model, k)
        assert mpne.robust_level >= k / (k + 1) - 1e-8
        assert mpne.robust_level > 0.5 + eps or k == 1


# ---------------------------------------------------------------------------
# The optimal k-sample policy
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_optimal_random_instances(seed: int) -> None:
    model = random_population(seed)
    for k in range(1, 9):
        mpne = ua.solve_mpne(model, k)
        for ties in ("uniform", "weak", "half", "strict"):
            result = ua.solve_optimal(model, k, ties)
            assert result.converged and 0 <= result.gap <= 1e-8
            assert result.robust_level == pytest.approx(ua.robust_level(model, result.policy, k, ties), abs=1e-15)
            assert result.upper_bound >= result.robust_level
            # at least the MPNE's level (up to the gap)
            assert result.robust_level >= ua.robust_level(model, mpne.policy, k, ties) - result.gap - 1e-12
            if ties == "uniform":  # exactly k/(k+1): the MPNE attains it
                assert result.robust_level == pytest.approx(k / (k + 1), abs=1e-8)
                assert result.upper_bound == pytest.approx(k / (k + 1))
            if ties == "weak":
                assert result.robust_level >= k / (k + 1) - 1e-8


@pytest.mark.parametrize("ties", ["weak", "half", "strict"])
def test_optimal_grid_m3(ties: str) -> None:
    """m = 3: no grid policy beats the certified upper bound, and the solver is at
    least as good as the best grid policy."""
    grid = simplex_grid(80)
    for seed in (2, 9):
        rng = np.random.default_rng(seed)
        model = ua.RankingPopulation(rng.integers(0, 3, size=(6, 3)), rng.random(6) + 0.1)
        for k in (2, 3):
            result = ua.solve_optimal(model, k, ties)
            levels = 1.0 - max_utility_on_grid(model, k, MIRROR[ties], grid)
            assert levels.max() <= result.upper_bound + 1e-12
            assert result.robust_level >= levels.max() - 1e-12


def test_optimal_weak_beats_the_mpne() -> None:
    """Prop. 4.1's population: under the paper's weak level the best policy equalises
    p (1 - pi_0)^k = (1 - p) pi_0^k (closed form), strictly above the MPNE."""
    p = 0.6
    model = instances.prop_4_1_instance(p - 0.5)
    for k in (2, 3, 4):
        result = ua.solve_optimal(model, k, "weak")
        ratio = (p / (1 - p)) ** (1 / k)
        pi0 = ratio / (1 + ratio)
        assert result.policy[0] == pytest.approx(pi0, abs=1e-8)
        assert result.robust_level == pytest.approx(1 - p * (1 - pi0) ** k, abs=1e-10)
        mpne_level = ua.robust_level(model, ua.solve_mpne(model, k).policy, k, "weak")
        assert result.robust_level > mpne_level + 0.03


def test_dual_system_certifies_the_equilibrium_without_an_lp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the strict game's MPNE is the weak level's optimum, its dual system
    alone certifies it (no LP runs), and no grid policy beats its bound."""
    import ualign.solvers.optimal as optimal

    def no_lp(*args: object) -> None:
        raise AssertionError("an LP ran")

    monkeypatch.setattr(optimal, "minimax_lp", no_lp)
    grid = simplex_grid(80)
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        model = ua.RankingPopulation(rng.integers(0, 3, size=(6, 3)), rng.random(6) + 0.1)
        for k in (2, 3):
            result = ua.solve_optimal(model, k, "weak")
            assert result.converged and result.gap <= 1e-8
            levels = 1.0 - max_utility_on_grid(model, k, "strict", grid)
            assert levels.max() <= result.upper_bound + 1e-12


def test_sqp_stops_on_a_dual_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the equilibrium is not optimal and SQP runs, the dual system at its
    iterates certifies the optimum even when every Kelley LP fails; the bound stays
    above the level the solver certifies with the LPs."""
    import ualign.solvers.optimal as optimal

    cases = [(0, 3), (3, 2), (9, 2)]
    models = [ua.RankingPopulation(np.random.default_rng(seed).integers(0, 6, size=(40, 16))) for seed, _ in cases]
    reference = [ua.solve_optimal(model, k, "weak") for model, (_, k) in zip(models, cases)]
    monkeypatch.setattr(optimal, "minimax_lp", lambda *args: (None, None))
    for model, (_, k), ref in zip(models, cases, reference):
        result = ua.solve_optimal(model, k, "weak")
        assert result.method.startswith("SQP")
        assert result.converged and result.gap <= 1e-8
        assert result.upper_bound >= ref.robust_level - 1e-12
        assert result.robust_level >= ref.robust_level - 1e-8


OPTIMAL_SCRIPT = """
import sys
import numpy as np
import ualign as ua
rng = np.random.default_rng(5)
models = [ua.RankingPopulation(rng.integers(0, 6, size=(100, 64))) for _ in range(4)]
out = {}
for ties in ("weak", "half"):
    out[ties] = np.concatenate([r.policy for k in (2, 3) for r in ua.solvers.solve_optimal_batch(models, k, ties)])
out["groups"] = ua.solve_optimal(models[0], 3, "weak", groups=np.arange(100) % 3).policy
n = 400  # the cyclic population: the interior point's dense solves are big enough for BLAS threads
cyclic = ua.RankingPopulation((np.arange(n)[None, :] - np.arange(n)[:, None]) % n, rng.uniform(0.5, 1.5, n))
out["nlhf"] = ua.solve_nlhf(cyclic).policy
np.savez(sys.argv[1], **out)
"""


def test_solver_bits_do_not_depend_on_blas_threads(tmp_path) -> None:
    """Every public solver runs with BLAS on one thread: scipy's SLSQP (it runs on
    every prompt here under "half" ties, and for the groups) and the interior
    point's LAPACK solves round differently with BLAS's thread count, which
    OMP_NUM_THREADS sets."""
    runs = outputs_by_thread_count(tmp_path, OPTIMAL_SCRIPT, [1, 2])
    for name, values in runs[1].items():
        assert values.tobytes() == runs[2][name].tobytes(), name


def test_kelley_bound_from_the_recent_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kelley's LP runs on the 2 m most recent cuts first and stops there once its
    bound is enough; either bound is valid (below every policy's max utility)."""
    import ualign.solvers.optimal as optimal

    sizes: list = []
    real = optimal.minimax_lp
    monkeypatch.setattr(optimal, "minimax_lp", lambda V, G, P: (sizes.append(len(V)), real(V, G, P))[1])
    rng = np.random.default_rng(4)
    model = ua.RankingPopulation(rng.integers(0, 3, size=(6, 3)), rng.random(6) + 0.1)
    kern = Kernels(model, 2, "strict")
    cuts = optimal._Cuts(3)
    for x in simplex_grid(6):
        u, J = kern.jacobian(x, range(3))
        cuts.add(x, u, J, range(3))
    floor = (1.0 - max_utility_on_grid(model, 2, "strict", simplex_grid(80))).max()
    bound, _ = cuts.lower_bound(enough=-math.inf)
    assert sizes == [6] and 1.0 - bound >= floor - 1e-12
    full, _ = cuts.lower_bound()
    assert sizes == [6, 6, 3 * len(simplex_grid(6))] and 1.0 - full >= floor - 1e-12
    assert full >= bound - 1e-12


# ---------------------------------------------------------------------------
# Committees
# ---------------------------------------------------------------------------
def committee_lp(model: ua.RankingPopulation, k: int, ties: str) -> float:
    """Independent: the LP over every k-multiset, each column from the oracle."""
    ranks, weights = np.asarray(model.ranks), model.weights
    m = model.n_responses
    sets = list(itertools.combinations_with_replacement(range(m), k))
    a = np.array([[oracle.win_rate(ranks, weights, list(S), y, ties) for y in range(m)] for S in sets])
    n = len(sets)
    res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.hstack([-a.T, np.ones((m, 1))]), b_ub=np.zeros(m),
                  A_eq=np.r_[np.ones(n), 0.0][None, :], b_eq=[1.0], bounds=[(0, None)] * n + [(None, None)])
    return float(res.x[-1])


@pytest.mark.parametrize("seed", range(6))
def test_committee_random_instances(seed: int) -> None:
    model = random_population(seed, n_max=6, m_max=4)
    for k in (1, 2, 3):
        for ties in ("uniform", "weak", "strict"):
            result = ua.solve_committee(model, k, ties)
            assert isinstance(result.policy, ua.MultisetPolicy) and result.exact
            assert all(len(S) == k for S in result.policy.multisets)
            best = committee_lp(model, k, ties)
            assert result.robust_level == pytest.approx(best, abs=1e-9)
            assert result.gap <= 1e-9 and result.upper_bound >= best - 1e-12
            if ties in ("uniform", "weak"):  # Theorem 3.1
                assert result.robust_level >= k / (k + 1) - 1e-9
            greedy = ua.solve_committee(model, k, ties, pricing="greedy")
            # k >= m outside uniform ties: all responses are optimal, no pricing at all
            assert greedy.exact == (ties != "uniform" and k >= model.n_responses)
            assert greedy.robust_level <= best + 1e-9 <= greedy.upper_bound + 2e-9


@pytest.mark.parametrize("k", [2, 3, 4])
def test_committee_beats_every_single_output_policy(k: int) -> None:
    model = instances.clustered_population(k, m=k + 2)
    committee = ua.solve_committee(model, k)
    assert committee.robust_level == pytest.approx(1 - 1 / (2 * k), abs=1e-9)
    assert committee.robust_level > k / (k + 1) + 0.02
    # no single-output policy can exceed k/(k+1) under uniform ties: the certified optimum
    single = ua.solve_optimal(model, k)
    assert single.upper_bound == pytest.approx(k / (k + 1)) and single.robust_level <= k / (k + 1) + 1e-12


def test_committee_greedy_on_a_larger_pool() -> None:
    rng = np.random.default_rng(7)
    model = ua.RankingPopulation.from_orders(np.argsort(rng.random((300, 40)), axis=1))
    result = ua.solve_committee(model, 3, pricing="greedy", max_iter=60)
    assert not result.exact
    assert 3 / 4 - 1e-9 <= result.robust_level <= result.upper_bound <= 1.0


def test_prop_3_3_bound_on_committees() -> None:
    m = 4
    model = instances.prop_3_3_instance(m)
    for k in (1, 2, 3):
        result = ua.solve_committee(model, k, "strict")
        assert result.robust_level <= instances.prop_3_3_bound(m, k) + 1e-9
        assert ua.solve_committee(model, k, "weak").robust_level >= k / (k + 1) - 1e-9


# ---------------------------------------------------------------------------
# RLHF and certify
# ---------------------------------------------------------------------------
def test_bradley_terry_recovers_rewards() -> None:
    r = np.array([0.0, 1.0, 2.5, -1.0, 0.3])
    P = 1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :])))
    fitted, _, _, converged = bradley_terry(P, ridge=1e-12)
    assert converged and np.allclose(fitted, r - r.mean(), atol=1e-8)


def test_bradley_terry_batch_is_each_fit_alone() -> None:
    """More matrices than one chunk, of ragged sizes: every fit is its matrix's fit
    alone (the same reward bits, iterations and verdict; the mean log-likelihood to
    rounding, as a sum over a padded array)."""
    from ualign.solvers import bradley_terry_batch
    from ualign.solvers.rlhf import _BT_CHUNK

    rng = np.random.default_rng(5)
    matrices = []
    for _ in range(_BT_CHUNK + 7):
        r = rng.normal(size=int(rng.integers(1, 6)))
        matrices.append(1.0 / (1.0 + np.exp(-(r[:, None] - r[None, :]))))
    for together, M in zip(bradley_terry_batch(matrices), matrices):
        alone = bradley_terry(M)
        assert np.array_equal(together[0], alone[0]) and together[2:] == alone[2:]
        assert together[1] == pytest.approx(alone[1], rel=1e-14)


def test_rlhf_policy() -> None:
    eps = 0.1
    model = instances.prop_4_1_instance(eps)
    result = ua.rlhf_policy(model, beta=0.5)
    gap = math.log((0.5 + eps) / (0.5 - eps))
    assert result.reward[0] - result.reward[1] == pytest.approx(gap, abs=1e-6)
    assert result.policy[0] / result.policy[1] == pytest.approx(math.exp(gap / 0.5), rel=1e-6)
    ref = ua.rlhf_policy(model, beta=0.5, reference=[0.2, 0.8])
    assert ref.policy[0] / ref.policy[1] == pytest.approx(0.25 * math.exp(gap / 0.5), rel=1e-6)
    # RLHF collapses on the majority as beta -> 0, like NLHF: stuck at 1/2 + eps for every k
    sharp = ua.rlhf_policy(model, beta=1e-3).policy
    assert all(ua.robust_level(model, sharp, k) <= 0.5 + eps + 1e-9 for k in (1, 4, 8))


def test_certify_every_policy_kind() -> None:
    model = random_population(5)
    k = 3
    mpne = ua.solve_mpne(model, k).policy
    cert = ua.certify(model, mpne, k)
    assert cert.verdict == "equilibrium" and cert.meets_target
    assert cert.robust_level == pytest.approx(ua.robust_level(model, mpne, k))
    assert (cert.best_response, cert.best_response_utility) == ua.best_response(model, mpne, k)
    assert ua.certify(model, ua.Product(mpne, k)).robust_level == cert.robust_level
    m = model.n_responses
    bad = np.zeros(m)
    bad[0] = 1.0
    worse = ua.certify(model, bad, k)
    assert worse.verdict in ("not robust", "equilibrium")
    assert worse.bound == pytest.approx(worse.target - worse.exploitability)
    assert worse.robust_level >= worse.bound - 1e-15          # the certificate is a true lower bound
    mixture = ua.ProductMixture([mpne, bad], [0.5, 0.5], k)
    mc = ua.certify(model, mixture)
    assert mc.exploitability is None and mc.k == k
    committee = ua.solve_committee(model, 2).policy
    cc = ua.certify(model, committee)
    assert cc.k == 2 and cc.robust_level >= 2 / 3 - 1e-9 and cc.verdict == "robust"
    weak = ua.certify(model, ua.solve_mpne(model, k, "strict").policy, k, ties="weak")
    assert weak.game_ties == "strict" and weak.verdict == "equilibrium"
    assert "certificate" in str(cert)


# ---------------------------------------------------------------------------
# Plackett–Luce mixtures (the same solvers through the model interface)
# ---------------------------------------------------------------------------


def test_solvers_on_plackett_luce() -> None:
    rng = np.random.default_rng(11)
    model = ua.PlackettLuceMixture(rng.normal(scale=2.0, size=(4, 5)), rng.random(4) + 0.1)
    for k in (1, 2, 4):
        mpne = ua.solve_mpne(model, k)
        assert mpne.exploitability <= 1e-8 and mpne.robust_level >= k / (k + 1) - 1e-8
        optimal = ua.solve_optimal(model, k, "weak")   # no ties: every convention agrees
        assert optimal.robust_level == pytest.approx(k / (k + 1), abs=1e-8)
    assert ua.solve_nlhf(model).robust_level >= 0.5 - 1e-10
    assert ua.solve_committee(model, 2).robust_level >= 2 / 3 - 1e-9


def test_prop_3_2_rate_is_tight() -> None:
    for k in (1, 2, 3):
        model = instances.prop_3_2_instance(k)
        assert ua.solve_committee(model, k).robust_level == pytest.approx(k / (k + 1), abs=1e-9)
        assert ua.solve_committee(model, k).upper_bound == pytest.approx(k / (k + 1), abs=1e-9)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_bad_input() -> None:
    model = random_population(0)
    m = model.n_responses
    with pytest.raises(TypeError, match="model"):
        ua.solve_mpne(np.eye(3), 2)
    with pytest.raises(ValueError, match="k"):
        ua.solve_mpne(model, 0)
    with pytest.raises(TypeError, match="k"):
        ua.solve_optimal(model, 2.5)
    with pytest.raises(ValueError, match="ties"):
        ua.solve_mpne(model, 2, "weak")
    with pytest.raises(ValueError, match="ties"):
        ua.solve_optimal(model, 2, "sometimes")
    with pytest.raises(TypeError, match="ties"):
        ua.solve_committee(model, 2, ties=None)
    with pytest.raises(ValueError, match="method"):
        ua.solve_mpne(model, 2, method="magic")
    with pytest.raises(ValueError, match="method"):
        ua.solve_nlhf(model, ties="strict", method="ipm")
    with pytest.raises(ValueError, match="tol"):
        ua.solve_mpne(model, 2, tol=0.0)
    with pytest.raises(TypeError, match="tol"):
        ua.solve_optimal(model, 2, tol="small")
    with pytest.raises(ValueError, match="init"):
        ua.solve_mpne(model, 2, init=np.ones(m + 1) / (m + 1))
    with pytest.raises(ValueError, match="init"):
        ua.solve_mpne(model, 2, init=np.ones(m))
    with pytest.raises(ValueError, match="step"):
        ua.solve_mpne(model, 2, method="pga", step=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        ua.solve_mpne(model, 2, max_iter=0)
    with pytest.raises(ValueError, match="pricing"):
        ua.solve_committee(model, 2, pricing="random")
    with pytest.raises(ValueError, match="beta"):
        ua.rlhf_policy(model, 0.0)
    with pytest.raises(TypeError, match="beta"):
        ua.rlhf_policy(model, None)
    with pytest.raises(ValueError, match="reference"):
        ua.rlhf_policy(model, 1.0, reference=np.full(m, 0.5))
    with pytest.raises(ValueError, match="k"):
        ua.certify(model, ua.Product(np.ones(m) / m, 2), 3)
    with pytest.raises(TypeError, match="k"):
        ua.certify(model, np.ones(m) / m)
    with pytest.raises(ValueError, match="policy"):
        ua.certify(model, np.ones(m + 1) / (m + 1), 2)
    with pytest.raises(ValueError, match="tol"):
        ua.certify(model, np.ones(m) / m, 2, tol=2.0)
