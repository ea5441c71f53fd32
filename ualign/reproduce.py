"""Numerical checks of the paper's propositions (``ualign reproduce``).

Each check builds the instance of the statement (or random instances of a
universal statement), computes the quantities with ualign's exact kernels and,
where the statement is about a solution concept (NLHF, MPNE, the committee
optimum), with ualign's solvers. A check whose solver this installation lacks is
reported as skipped. Tolerances are stated with the figures.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

#: Rounding allowance of an exact computation.
EXACT = 1e-12


@dataclass
class CheckResult:
    """One row of the report: ``passed`` is None when the check was skipped."""

    name: str
    claim: str
    figures: str
    passed: Optional[bool]
    seconds: float = 0.0
    details: List[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "skip" if self.passed is None else "pass" if self.passed else "FAIL"


def _instance(name: str, fallback: Callable[..., Any], *args: Any) -> Any:
    """The paper's instance from ualign.instances (the solvers' helpers), else ours."""
    try:
        from . import instances
    except ImportError:
        return fallback(*args)
    return getattr(instances, name, fallback)(*args)


def _solver(name: str) -> Optional[Callable[..., Any]]:
    import ualign

    return getattr(ualign, name, None)


def _policy(result: Any) -> Any:
    return getattr(result, "policy", result)


def _multisets(m: int, size: int) -> List[Tuple[int, ...]]:
    return list(itertools.combinations_with_replacement(range(m), size))


def _random_population(rng: np.random.Generator, n: int, m: int, ties: bool) -> Any:
    import ualign as ua

    if ties:
        return ua.RankingPopulation(rng.integers(0, max(2, m // 2), size=(n, m)), weights=rng.random(n) + 0.05)
    return ua.RankingPopulation.from_orders(np.argsort(rng.random((n, m)), axis=1), weights=rng.random(n) + 0.05)


def _instances(quick: bool) -> List[Tuple[str, Any]]:
    from .datasets import default_population

    rng = np.random.default_rng(20240601)
    instances = [("default population", default_population()),
                 ("random weak orders n=40 m=7", _random_population(rng, 40, 7, ties=True))]
    if not quick:
        instances.append(("random rankings n=200 m=10", _random_population(rng, 200, 10, ties=False)))
    return instances


# -- Property 1 ------------------------------------------------------------------------------------------

def check_property_1(quick: bool) -> List[CheckResult]:
    import ualign as ua

    rng = np.random.default_rng(1)
    models = [("rankings", _random_population(rng, 30, 6, ties=True)),
              ("strict rankings", _random_population(rng, 30, 6, ties=False))]
    mixture = _solver("PlackettLuceMixture")
    if mixture is not None:
        models.append(("Plackett-Luce mixture", mixture(rng.normal(0, 2, size=(5, 6)), rng.random(5) + 0.1)))
    trials = 20 if quick else 60
    results = []

    def random_policy(m: int) -> Any:
        kind = rng.integers(0, 3)
        if kind == 0:
            return ua.Product(rng.dirichlet(np.ones(m)), int(rng.integers(1, 5)))
        if kind == 1:
            sets = [list(rng.integers(0, m, size=int(rng.integers(1, 4)))) for _ in range(3)]
            return ua.MultisetPolicy(sets, rng.dirichlet(np.ones(3)))
        return int(rng.integers(0, m))

    start = time.perf_counter()
    worst = 0.0
    for _, model in models:
        for _ in range(trials):
            a, b = random_policy(model.n_responses), random_policy(model.n_responses)
            worst = max(worst, abs(model.win_rate(a, b) + model.win_rate(b, a) - 1.0))
    results.append(CheckResult("Property 1 (1)", "antisymmetry P[A≻B] + P[B≻A] = 1 (multi-output A, B)",
                               f"max |sum - 1| = {worst:.1e} over {trials * len(models)} pairs", worst <= EXACT,
                               time.perf_counter() - start))

    start = time.perf_counter()
    worst, low = 0.0, 1.0
    for _, model in models:
        for k in range(1, 9):
            for _ in range(max(2, trials // 8)):
                pi = rng.dirichlet(np.ones(model.n_responses) * 0.5)
                value = model.win_rate(ua.Product(pi, k), ua.Product(pi, 1))
                worst = max(worst, abs(value - k / (k + 1)))
                low = min(low, value - k / (k + 1))
    results.append(CheckResult("Property 1 (2)", "P[pi^⊗k ≻ pi] >= k/(k+1) (= under uniform ties), k = 1..8",
                               f"min P - k/(k+1) = {low:+.1e}; max |P - k/(k+1)| = {worst:.1e}",
                               low >= -EXACT, time.perf_counter() - start))

    start = time.perf_counter()
    slack = math.inf
    for _, model in models:
        m = model.n_responses
        for _ in range(trials):
            s1, s2, s = (list(rng.integers(0, m, size=int(rng.integers(1, 4)))) for _ in range(3))
            for ties in ("uniform", "strict", "weak"):
                lhs = model.win_rate(s1 + s2, s, ties)
                rhs = model.win_rate(s1, s, ties) + model.win_rate(s2, s, ties)
                slack = min(slack, rhs - lhs)
    results.append(CheckResult("Property 1 (3)", "subadditivity P[S1+S2 ≻ S] <= P[S1 ≻ S] + P[S2 ≻ S]",
                               f"min slack = {slack:+.1e} over {trials * len(models) * 3} triples (3 tie rules)",
                               slack >= -EXACT, time.perf_counter() - start))

    start = time.perf_counter()
    slack, zero = math.inf, 0.0
    for _, model in models:
        m = model.n_responses
        for _ in range(trials):
            small = list(rng.integers(0, m, size=int(rng.integers(0, 3))))
            large = small + list(rng.integers(0, m, size=int(rng.integers(1, 3))))
            z = int(rng.integers(0, m))
            for ties in ("uniform", "strict", "weak"):
                def f(multiset: List[Any], model: Any = model, ties: str = ties) -> Any:  # P[S ≻ y] for every y
                    return 1.0 - model.beats(multiset, _mirror(ties))

                gain_small = f(small + [z]) - f(small)
                gain_large = f(large + [z]) - f(large)
                slack = min(slack, float((gain_small - gain_large).min()),
                            float(gain_large.min()))  # DR-submodular and monotone
                zero = max(zero, float(np.abs(1.0 - model.beats([], _mirror(ties))).max()))
    results.append(CheckResult("Property 1 (4)", "F_y(S) = P[S ≻ y]: F(∅) = 0, monotone, DR-submodular",
                               f"max |F(∅)| = {zero:.1e}; min marginal slack = {slack:+.1e}",
                               slack >= -EXACT and zero <= EXACT, time.perf_counter() - start))
    return results


def _mirror(ties: str) -> str:
    from ._validate import mirror_ties

    return mirror_ties(ties)


# -- Section 3 ---------------------------------------------------------------------------------------------

def check_prop_3_2(quick: bool) -> CheckResult:
    start = time.perf_counter()
    mixture = _solver("PlackettLuceMixture")
    worst = 0.0
    ks = range(1, 4 if quick else 6)
    for k in ks:
        m = k + 1
        model = _instance("prop_3_2_instance", lambda k: mixture(np.zeros((1, k + 1))), k) \
            if mixture is not None else None
        for multiset in _multisets(m, k):
            if model is not None:
                value = model.win_rate(list(multiset), 0)
            else:  # the Plackett-Luce formula W(S) / (W(S) + W(y)) with equal rewards
                value = len(multiset) / (len(multiset) + 1.0)
            worst = max(worst, abs(value - k / (k + 1)))
    how = "ua.PlackettLuceMixture" if mixture is not None else "closed form (no PlackettLuceMixture here)"
    return CheckResult("Prop 3.2", "PL with equal rewards on k+1 responses: every S in Y^k has P[S ≻ y1] = k/(k+1)",
                       f"max |P - k/(k+1)| = {worst:.1e} over all S, k = 1..{max(ks)} ({how})", worst <= EXACT,
                       time.perf_counter() - start)


def _committee_value(model: Any, k: int, ties: str) -> Tuple[Optional[float], str]:
    """max over rho in Δ(Y^k) of min_y P[rho ≻ y] (ua.solve_committee), re-checked with the exact kernels."""
    import ualign as ua

    solve = _solver("solve_committee")
    if solve is None:
        return None, "needs ua.solve_committee"
    result = solve(model, k, ties=ties)
    if not result.converged:
        return None, f"ua.solve_committee did not certify its optimum (gap {result.gap:.1e})"
    return ua.robust_level(model, _policy(result), None, ties), "ua.solve_committee"


def check_prop_3_3(quick: bool) -> List[CheckResult]:
    import ualign as ua

    start = time.perf_counter()
    m = 4 if quick else 5
    population = _instance("prop_3_3_instance", lambda m: ua.RankingPopulation.from_orders(
        np.array(list(itertools.permutations(range(m))))), m)
    figures, upper_ok, lower_ok, how = [], True, True, ""
    lower = []
    for k in range(1, 4):
        value, how = _committee_value(population, k, "strict")
        weak, _ = _committee_value(population, k, "weak")
        if value is None or weak is None:
            return [CheckResult("Prop 3.3", "rankings: the best multi-output policy has level <= k/(k+1)(1+1/m)",
                                how, None, time.perf_counter() - start)]
        bound = k / (k + 1) * (1 + 1 / m)
        upper_ok &= value <= bound + 1e-9
        lower_ok &= weak >= k / (k + 1) - 1e-9
        figures.append(f"k={k}: {value:.4f} <= {bound:.4f}")
        lower.append(f"k={k}: {weak:.4f} >= {k / (k + 1):.4f}")
    seconds = time.perf_counter() - start
    return [CheckResult("Prop 3.3", f"all {math.factorial(m)} rankings of m={m}: max_rho min_y P[rho ≻ y] <= "
                        "k/(k+1)(1+1/m)", "; ".join(figures) + f" ({how})", upper_ok, seconds),
            CheckResult("Thm 3.1", "a k-output policy reaches min_y P[rho ≿ y] >= k/(k+1) (same population)",
                        "; ".join(lower), lower_ok, 0.0)]


# -- Section 4 ---------------------------------------------------------------------------------------------

def check_prop_4_1(quick: bool) -> CheckResult:
    import ualign as ua

    start = time.perf_counter()
    eps = 0.1
    population = _instance("prop_4_1_instance", lambda eps: ua.RankingPopulation.from_orders(
        [[0, 1], [1, 0]], weights=[0.5 + eps, 0.5 - eps]), eps)
    solve = _solver("solve_nlhf")
    if solve is not None:
        nlhf = np.asarray(_policy(solve(population)), dtype=float)
        how = "ua.solve_nlhf"
    else:  # y1 is a Condorcet winner: the maximal lottery is the point mass on it
        nlhf = np.array([1.0, 0.0])
        how = "maximal lottery checked by hand"
    pairwise = population.pairwise()
    maximal = bool((nlhf @ pairwise >= 0.5 - 1e-9).all())
    levels = [ua.robust_level(population, nlhf, k) for k in range(1, 9)]
    mpne = _solver("solve_mpne")
    contrast = ""
    if mpne is not None:
        level8 = ua.robust_level(population, _policy(mpne(population, 8)), 8)
        contrast = f"; MPNE_8 reaches {level8:.4f}"
    passed = maximal and max(levels) <= 0.5 + eps + EXACT and abs(nlhf[0] - 1.0) <= 1e-6
    return CheckResult("Prop 4.1", f"NLHF stuck: eps={eps}, f(pi_NLHF, k) <= 1/2 + eps for every k",
                       f"pi_NLHF = {np.round(nlhf, 6).tolist()} ({how}); f for k=1..8 = "
                       f"{min(levels):.4f}..{max(levels):.4f} <= {0.5 + eps}{contrast}", passed,
                       time.perf_counter() - start)


def _mpne_policies(model: Any, ks: Sequence[int]) -> Optional[List[Any]]:
    solve = _solver("solve_mpne")
    if solve is None:
        return None
    return [np.asarray(_policy(solve(model, k)), dtype=float) for k in ks]


def check_thm_4_3(quick: bool) -> List[CheckResult]:
    import ualign as ua

    start = time.perf_counter()
    ks = list(range(1, 9))
    figures, worst_gap, worst_expl = [], 0.0, 0.0
    mono_slack = math.inf
    for name, model in _instances(quick):
        policies = _mpne_policies(model, ks)
        if policies is None:
            skipped = "needs ua.solve_mpne"
            return [CheckResult("Thm 4.3/4.4", "MPNE_k reaches f(pi_k, k) = k/(k+1)", skipped, None),
                    CheckResult("Thm 4.5", "f(pi_k, l) >= min(k, l)/(k+1)", skipped, None)]
        for k, pi in zip(ks, policies):
            level = ua.robust_level(model, pi, k)
            worst_gap = max(worst_gap, k / (k + 1) - level)
            worst_expl = max(worst_expl, ua.exploitability(model, pi, k))
            for ell in range(1, 9):
                # Thm 4.5 relative to the level the solver reached: f(pi_k, l) >= min(k,l)/k * f(pi_k, k)
                mono_slack = min(mono_slack, ua.robust_level(model, pi, ell) - min(k, ell) / k * level)
        figures.append(name)
    tolerance = 1e-6
    seconds = time.perf_counter() - start
    return [CheckResult("Thm 4.3/4.4", "MPNE_k reaches f(pi_k, k) >= k/(k+1) (uniform ties: exactly), k = 1..8",
                        f"max k/(k+1) - f = {worst_gap:.1e}, max exploitability {worst_expl:.1e} (tol {tolerance:g}) "
                        f"on {len(figures)} instances", worst_gap <= tolerance, seconds),
            CheckResult("Thm 4.5", "f(pi_k, l) >= min(k, l)/(k+1) for the MPNE pi_k, k, l = 1..8",
                        f"min f(pi_k, l) - min(k,l)/k * f(pi_k, k) = {mono_slack:+.1e}; with f(pi_k, k) >= "
                        f"k/(k+1) - {max(worst_gap, 0):.1e}", mono_slack >= -EXACT and worst_gap <= tolerance, 0.0)]


def check_prop_d_3(quick: bool) -> CheckResult:
    """Hedge self-play: the average sigma_T of the (pi^t)^⊗k is (k, k/(k+1) - Reg_T/T)-robust."""
    import ualign as ua

    from .datasets import default_population

    start = time.perf_counter()
    model = default_population()
    m = model.n_responses
    horizon = 100 if quick else 400
    figures, passed = [], True
    for k in (1, 2, 4, 8):
        eta = math.sqrt(8 * math.log(m) / horizon)
        weights = np.zeros(m)
        iterates, earned, total = [], 0.0, np.zeros(m)
        for _ in range(horizon):
            pi = np.exp(weights - weights.max())
            pi /= pi.sum()
            pi[-1] = max(0.0, 1.0 - pi[:-1].sum())
            u = model.utilities(pi, k)
            iterates.append(pi)
            earned += math.fsum(pi * u)
            total += u
            weights += eta * u
        regret = float(total.max() - earned)
        sigma = ua.ProductMixture(np.array(iterates), np.full(horizon, 1.0 / horizon), k)
        level = ua.robust_level(model, sigma)
        bound = k / (k + 1) - regret / horizon
        passed &= level >= bound - EXACT
        figures.append(f"k={k}: {level:.4f} >= {bound:.4f} (Reg_T/T = {regret / horizon:.4f}, "
                       f"slack {level - bound:+.0e})")
    return CheckResult("Prop D.3", f"Hedge self-play, T={horizon}: f(sigma_T) >= k/(k+1) - Reg_T/T",
                       "; ".join(figures), passed, time.perf_counter() - start)


def check_thm_d_6(quick: bool) -> CheckResult:
    import ualign as ua

    from .datasets import default_population

    start = time.perf_counter()
    model = default_population()
    ks = [1, 2, 3, 4] if quick else [1, 2, 3, 4, 6]
    policies = _mpne_policies(model, ks)
    if policies is None:
        return CheckResult("Thm D.6", "MPNE_k vs l-sample opponents: >= (k+1-l)/(k+1)", "needs ua.solve_mpne", None)
    slack = math.inf
    figures = []
    for k, pi in zip(ks, policies):
        excess = max(0.0, float(model.utilities(pi, k).max()) - 1.0 / (k + 1))  # 0 for an exact MPNE
        for ell in range(1, min(k, 3) + 1):
            worst = min(model.win_rate(ua.Product(pi, k), list(s)) for s in _multisets(model.n_responses, ell))
            bound = (k + 1 - ell) / (k + 1) - ell * excess
            slack = min(slack, worst - bound)
            if ell == min(k, 3):
                figures.append(f"k={k},l={ell}: {worst:.4f} >= {(k + 1 - ell) / (k + 1):.4f}")
    return CheckResult("Thm D.6", "MPNE_k vs every l-sample opponent S in Y^l: P[pi^⊗k ≻ S] >= (k+1-l)/(k+1)",
                       "; ".join(figures) + f"; min slack {slack:+.1e}", slack >= -1e-9, time.perf_counter() - start)


def run_checks(quick: bool = False) -> List[CheckResult]:
    """Every check, in the paper's order."""
    results: List[CheckResult] = []
    results += check_property_1(quick)
    results.append(check_prop_3_2(quick))
    results += check_prop_3_3(quick)
    results.append(check_prop_4_1(quick))
    results += check_thm_4_3(quick)
    results.append(check_prop_d_3(quick))
    results.append(check_thm_d_6(quick))
    return results


def print_report(results: Sequence[CheckResult]) -> None:
    width = max(len(r.name) for r in results)
    print(f"{'check':<{width}}  result  claim / figures")
    for r in results:
        print(f"{r.name:<{width}}  {r.status:<6}  {r.claim}")
        print(f"{'':<{width}}  {'':<6}    {r.figures}  [{r.seconds:.2f} s]")
    counts = {status: sum(r.status == status for r in results) for status in ("pass", "FAIL", "skip")}
    print(f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['skip']} skipped")
