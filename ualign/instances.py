"""The paper's instances, numerical checks of its statements on any model, and a
Monte Carlo estimator used only to cross-check the exact kernels.

Constructors: :func:`prop_3_2_instance` (Plackett–Luce, the rate k/(k+1) is
tight), :func:`prop_3_3_instance` (all m! rankings), :func:`prop_4_1_instance`
(NLHF stuck at 1/2 + ε), :func:`clustered_population` (a committee beats
k/(k+1) where no single-output policy can).

Checks (each returns a small report with the figures and ``holds``):
:func:`check_property_1`, :func:`check_theorem_4_3`, :func:`check_theorem_4_5`,
:func:`check_theorem_d6`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from ._validate import as_count, as_distribution, as_positive_real, mirror_ties, tie_code
from .game import _check_model, robust_level
from .model import PreferenceModel
from .operands import KernelOperand, Operand, Product, as_operand
from .ranking import RankingPopulation

#: Rounding allowance of the exact kernels in the checks.
EXACT = 1e-12


# ---------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------
def prop_3_2_instance(k: int) -> PreferenceModel:
    """Prop. 3.2: one Plackett–Luce type with equal rewards over ``k + 1`` responses.

    Every k-multiset ``S`` has ``P[S ≻ y_1] = k/(k+1)``, so no k-output policy beats
    the rate. Needs :class:`ualign.PlackettLuceMixture`."""
    k = as_count(k, "k")
    import ualign

    mixture = getattr(ualign, "PlackettLuceMixture", None)
    if mixture is None:  # pragma: no cover - depends on the build
        raise ImportError("prop_3_2_instance needs ualign.PlackettLuceMixture (Plackett-Luce models)")
    return mixture(np.zeros((1, k + 1)))  # type: ignore[no-any-return]


def prop_3_3_instance(m: int) -> RankingPopulation:
    """Prop. 3.3: the uniform population over all ``m!`` rankings of ``m`` responses
    (``m <= 8``). No k-output policy has ``min_y P[rho ≻ y]`` above
    :func:`prop_3_3_bound`."""
    m = as_count(m, "m")
    if m > 8:
        raise ValueError(f"m: at most 8 (m! rankings), got {m}")
    return RankingPopulation.from_orders(np.array(list(itertools.permutations(range(m))), dtype=np.int64))


def prop_3_3_bound(m: int, k: int) -> float:
    """``k/(k+1) · (1 + 1/m)``: Prop. 3.3's bound on the best k-output policy."""
    m, k = as_count(m, "m"), as_count(k, "k")
    return k / (k + 1) * (1 + 1 / m)


def prop_4_1_instance(eps: float) -> RankingPopulation:
    """Prop. 4.1: two responses; ``y_0 ≻ y_1`` with probability ``1/2 + eps``, else
    ``y_1 ≻ y_0``. The maximal lottery is the point mass on ``y_0`` (a Condorcet
    winner), so its k-sample level is ``1/2 + eps`` for every k (under every tie
    convention), while the MPNE reaches k/(k+1)."""
    eps = as_positive_real(eps, "eps")
    if not eps < 0.5:
        raise ValueError(f"eps: must be in (0, 1/2), got {eps!r}")
    return RankingPopulation.from_orders([[0, 1], [1, 0]], weights=[0.5 + eps, 0.5 - eps])


def clustered_population(k: int, m: Optional[int] = None, per_group: int = 1) -> RankingPopulation:
    """``k`` equal groups with distinct favourites ``0..k-1`` (the rest of each ranking
    is the others in cyclic order), ``m >= k`` responses (default ``k + 1``).

    The committee ``{0, …, k-1}`` wins with probability ``1 - 1/(2k)`` against every
    response under ``"uniform"`` ties (it ties only with a group's own favourite),
    above ``k/(k+1)`` — which no single-output policy can exceed under
    ``"uniform"`` ties on any population."""
    k = as_count(k, "k")
    m = k + 1 if m is None else as_count(m, "m")
    per_group = as_count(per_group, "per_group")
    if m < k:
        raise ValueError(f"m: needs at least k = {k} responses, got {m}")
    orders = []
    for g in range(k):
        rest = [y for y in range(m) if y != g]
        shift = g % len(rest) if rest else 0
        order = [g] + rest[shift:] + rest[:shift]
        orders.extend([order] * per_group)
    return RankingPopulation.from_orders(np.array(orders, dtype=np.int64))


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    """Outcome of one check: the worst slack found (``>= -tol`` means it holds),
    the figures behind it, and ``holds``."""

    name: str
    worst_slack: float
    holds: bool
    details: Dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name}: {'holds' if self.holds else 'VIOLATED'} (worst slack {self.worst_slack:.3e})"


def _random_policy(rng: np.random.Generator, m: int) -> NDArray[np.float64]:
    p = rng.random(m) * (rng.random(m) < 0.8)
    if not p.sum() > 0:
        p[int(rng.integers(0, m))] = 1.0
    return p / p.sum()  # type: ignore[no-any-return]


def _random_multiset(rng: np.random.Generator, m: int, low: int, high: int) -> List[int]:
    return [int(v) for v in rng.integers(0, m, size=int(rng.integers(low, high + 1)))]


def check_property_1(model: Any, ties: str = "uniform", k_max: int = 6, samples: int = 40,
                     seed: int = 0, tol: float = EXACT) -> Dict[str, CheckReport]:
    """Property 1 (1)–(4) on random policies and multisets, with the exact kernels.

    1. antisymmetry: ``P[A ≻ B] + P[B ≻' A] = 1`` (``≻'`` mirrored; with equality
       of conventions under ``"uniform"``/``"half"``);
    2. ``P[pi^{⊗k} ≻ pi] >= k/(k+1)`` (equality under ``"uniform"``);
    3. subadditivity ``P[S1 + S2 ≻ S] <= P[S1 ≻ S] + P[S2 ≻ S]``;
    4. ``F_y(S) = P[S ≻ y]`` normalised, monotone and DR-submodular.

    Returns one :class:`CheckReport` per item (slack >= -tol everywhere means it
    holds; under ``"strict"`` ties (2) can fail on populations with ties)."""
    model = _check_model(model)
    tie_code(ties)
    k_max = as_count(k_max, "k_max")
    samples = as_count(samples, "samples")
    mirror = mirror_ties(ties)
    rng = np.random.default_rng(seed)
    m = model.n_responses
    anti, copies, sub, dr = [], [], [], []
    for _ in range(samples):
        pi = _random_policy(rng, m)
        sigma = _random_policy(rng, m)
        k = int(rng.integers(1, k_max + 1))
        a, b = Product(pi, k), Product(sigma, int(rng.integers(1, k_max + 1)))
        anti.append(-abs(model.win_rate(a, b, ties) + model.win_rate(b, a, mirror) - 1.0))
        copies.append(model.win_rate(a, Product(pi, 1), ties) - k / (k + 1))
        S1, S2, S = (_random_multiset(rng, m, 1, 3) for _ in range(3))
        sub.append(model.win_rate(S1, S, ties) + model.win_rate(S2, S, ties) - model.win_rate(S1 + S2, S, ties))
        small = _random_multiset(rng, m, 0, 3)
        large = small + _random_multiset(rng, m, 0, 3)
        z = int(rng.integers(0, m))
        f = {name: 1.0 - model.beats(members, mirror) for name, members in
             (("small", small), ("small+z", small + [z]), ("large", large), ("large+z", large + [z]))}
        dr.append(float(np.min((f["small+z"] - f["small"]) - (f["large+z"] - f["large"]))))
        dr.append(float(np.min(f["large"] - f["small"])))           # monotone
    empty = 1.0 - model.beats([], mirror)
    dr.append(-float(np.abs(empty).max()))                           # normalised
    reports = {}
    for name, values in (("antisymmetry", anti), ("multi vs single copy", copies), ("subadditivity", sub),
                         ("DR-submodularity", dr)):
        worst = float(min(values))
        reports[name] = CheckReport(f"Property 1: {name} ({ties})", worst, worst >= -tol)
    return reports


def check_theorem_4_3(model: Any, k: int, ties: str = "uniform", tol: float = 1e-8) -> CheckReport:
    """Thm 4.3: the MPNE's k-sample level is ``>= k/(k+1)`` (up to its exploitability;
    ``ties``: the game, ``"uniform"`` or ``"strict"``, whose level is the mirror)."""
    from .solvers import solve_mpne

    result = solve_mpne(model, k, ties, tol=tol)
    expl = float(result.exploitability if result.exploitability is not None else math.inf)
    slack = result.robust_level - (k / (k + 1) - expl)   # the certificate, exact
    rate = result.robust_level - k / (k + 1)
    return CheckReport(f"Thm 4.3 (k={k}, {ties} game, {result.level_ties} level)", min(slack, rate + tol),
                       slack >= -EXACT and rate >= -tol - EXACT,
                       {"level": result.robust_level, "exploitability": result.exploitability,
                        "policy": result.policy})


def check_theorem_4_5(model: Any, policy: Any, k: int, ells: Sequence[int] = (), ties: str = "uniform"
                      ) -> CheckReport:
    """Thm 4.5 for ``policy`` (robust at ``k``): ``f(pi, l) >= min(k, l)/(k+1)``.

    Checked in the exact form of Lemma D.1, ``f(pi, l) >= min(k, l)/k · f(pi, k)``,
    which holds for any policy (it needs no equilibrium) and implies the theorem
    when ``f(pi, k) >= k/(k+1)``. ``ells`` defaults to ``1..2k``."""
    model = _check_model(model)
    k = as_count(k, "k")
    pi = as_distribution(policy, "policy", size=model.n_responses)
    ells = list(ells) or list(range(1, 2 * k + 1))
    f_k = robust_level(model, pi, k, ties)
    levels = {int(ell): robust_level(model, pi, as_count(ell, "ells"), ties) for ell in ells}
    lemma = min(levels[ell] - min(k, ell) / k * f_k for ell in levels)
    theorem = min(levels[ell] - min(k, ell) / (k + 1) for ell in levels)
    return CheckReport(f"Thm 4.5 (k={k}, {ties})", lemma, lemma >= -EXACT,
                       {"f_k": f_k, "levels": levels, "theorem_slack": theorem})


def check_theorem_d6(model: Any, policy: Any, k: int, ells: Sequence[int] = (1, 2), ties: str = "uniform",
                     limit: int = 20000) -> CheckReport:
    """Thm D.6 for ``policy``: against every ``l``-sample opponent (all multisets of
    size ``l``, enumerated), ``min_S P[pi^{⊗k} ≻ S] >= (k+1-l)/(k+1)``; checked in the
    exact form of its proof, ``>= 1 - l · max_y P[y ≻' pi^{⊗k}]``."""
    model = _check_model(model)
    k = as_count(k, "k")
    pi = as_distribution(policy, "policy", size=model.n_responses)
    m = model.n_responses
    mirror = mirror_ties(ties)
    worst_u = float(model.utilities(pi, k, mirror).max())
    product = Product(pi, k)
    figures, slack, rate = {}, math.inf, math.inf
    for ell in ells:
        ell = as_count(ell, "ells")
        if math.comb(m + ell - 1, ell) > limit:
            raise ValueError(f"ells: {math.comb(m + ell - 1, ell)} multisets of size {ell} exceed limit={limit}")
        value = min(model.win_rate(product, list(S), ties)
                    for S in itertools.combinations_with_replacement(range(m), ell))
        figures[ell] = value
        slack = min(slack, value - (1.0 - ell * worst_u))
        rate = min(rate, value - (k + 1 - ell) / (k + 1))
    return CheckReport(f"Thm D.6 (k={k}, {ties})", slack, slack >= -EXACT,
                       {"min_win_rate": figures, "rate_slack": rate})


# ---------------------------------------------------------------------------
# Monte Carlo (a cross-check of the exact kernels, never a main path)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo estimate with its standard error and a normal confidence interval."""

    mean: float
    stderr: float
    low: float
    high: float
    samples: int

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def _sample_members(op: KernelOperand, count: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """``count`` draws of a multiset from an operand, as rows padded with -1."""
    probs = np.concatenate([op.product_probs, op.multiset_probs])
    which = rng.choice(probs.size, size=count, p=probs / probs.sum())
    width = max(op.max_draws, 1)
    out = np.full((count, width), -1, dtype=np.int64)
    T = op.product_probs.size
    for t in range(T):
        rows = np.flatnonzero(which == t)
        if rows.size:
            k = int(op.ks[t])
            policy = op.policies[t]
            out[rows, :k] = rng.choice(policy.size, size=(rows.size, k), p=policy / policy.sum())
    for s in range(op.multiset_probs.size):
        rows = np.flatnonzero(which == T + s)
        members = op.items[op.offsets[s]:op.offsets[s + 1]]
        if rows.size and members.size:
            out[np.ix_(rows, np.arange(members.size))] = members
    return out


def _ranking_outcomes(levels: NDArray[Any], voters: NDArray[np.int64], S: NDArray[np.int64],
                      T: NDArray[np.int64], ties: str) -> NDArray[np.float64]:
    big = np.iinfo(np.int64).max

    def best(members: NDArray[np.int64]) -> Tuple[NDArray[np.int64], NDArray[np.int64]]:
        lv = np.where(members >= 0, levels[voters[:, None], np.maximum(members, 0)].astype(np.int64), big)
        b = lv.min(axis=1)
        return b, ((lv == b[:, None]) & (members >= 0)).sum(axis=1)

    bs, cs = best(S)
    bt, ct = best(T)
    tie = {"uniform": np.where(cs + ct > 0, cs / np.maximum(cs + ct, 1), 0.5), "half": np.full(bs.shape, 0.5),
           "strict": np.zeros(bs.shape), "weak": np.ones(bs.shape)}[ties]
    return np.where(bs < bt, 1.0, np.where(bs == bt, tie, 0.0))


def _pl_outcomes(rewards: NDArray[np.float64], voters: NDArray[np.int64], S: NDArray[np.int64],
                 T: NDArray[np.int64]) -> NDArray[np.float64]:
    e = np.exp(rewards[voters])
    ws = np.where(S >= 0, np.take_along_axis(e, np.maximum(S, 0), axis=1), 0.0).sum(axis=1)
    wt = np.where(T >= 0, np.take_along_axis(e, np.maximum(T, 0), axis=1), 0.0).sum(axis=1)
    total = ws + wt
    return np.where(total > 0, ws / np.where(total > 0, total, 1.0), 0.5)


def monte_carlo_win_rate(model: Any, a: Operand, b: Operand, ties: str = "uniform", samples: int = 200_000,
                         seed: Optional[int] = None, z: float = 3.0) -> MonteCarloEstimate:
    """Estimate ``P[a ≻ b]`` by sampling a voter, a multiset from each operand and
    comparing them (rankings), or averaging ``W(S)/(W(S)+W(T))`` (Plackett–Luce).
    The interval is ``mean ± z·stderr``. Only a cross-check of the exact kernels."""
    model = _check_model(model)
    tie_code(ties)
    samples = as_count(samples, "samples")
    rng = np.random.default_rng(seed)
    m = model.n_responses
    op_a, op_b = as_operand(a, m, "a"), as_operand(b, m, "b")
    weights = np.asarray(model.weights, dtype=np.float64)
    voters = rng.choice(weights.size, size=samples, p=weights / weights.sum())
    S, T = _sample_members(op_a, samples, rng), _sample_members(op_b, samples, rng)
    if isinstance(model, RankingPopulation):
        outcomes = _ranking_outcomes(np.asarray(model.ranks), voters, S, T, ties)
    elif hasattr(model, "rewards"):
        outcomes = _pl_outcomes(np.asarray(model.rewards, dtype=np.float64), voters, S, T)
    else:
        raise TypeError(f"model: Monte Carlo needs a RankingPopulation or a PlackettLuceMixture, "
                        f"got {type(model).__name__}")
    mean = float(outcomes.mean())
    stderr = float(outcomes.std(ddof=1) / math.sqrt(samples)) if samples > 1 else math.inf
    return MonteCarloEstimate(mean, stderr, mean - z * stderr, mean + z * stderr, samples)


__all__ = [
    "CheckReport",
    "MonteCarloEstimate",
    "check_property_1",
    "check_theorem_4_3",
    "check_theorem_4_5",
    "check_theorem_d6",
    "clustered_population",
    "monte_carlo_win_rate",
    "prop_3_2_instance",
    "prop_3_3_bound",
    "prop_3_3_instance",
    "prop_4_1_instance",
]
