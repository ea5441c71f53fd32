"""The multi-output optimum of Theorem 3.1: ``max over rho in Δ(Y^k) of
min_y P[rho ≻ y]``, a linear program over k-multisets (repeats matter under
``"uniform"`` ties: two copies of a response tie more often than one).

Column generation: the master LP over the multisets found so far gives the
robust level ``t`` and the adversary's mixture ``q`` over responses (its dual);
a multiset ``S`` improves it iff ``Σ_y q_y P[S ≻ y] > t``. For any ``q``,
``max_S Σ_y q_y P[S ≻ y]`` bounds the optimum from above (LP duality).

* ``pricing="exact"``: enumerate all ``C(m+k-1, k)`` multisets (small pools); the
  bound is then tight at the end, so the LP optimum is certified.
* ``pricing="greedy"``: build ``S`` one response at a time, maximising the
  marginal gain (a vectorised pass over the rankings, or one ``beats`` call per
  candidate for other models). ``S -> Σ_y q_y P[S ≻ y]`` is normalised, monotone and
  DR-submodular (Property 1(4)), so greedy reaches a ``1 - (1 - 1/k)^k >= 1 - 1/e``
  fraction of the best: the certified upper bound is
  ``greedy / (1 - (1 - 1/k)^k)`` (capped at 1).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Dict, List, Tuple

import numpy as np

from .._validate import as_choice, as_count, as_tolerance, mirror_ties, tie_code
from ..operands import MultisetPolicy
from ..ranking import RankingPopulation
from ._common import Array, Clock, checked_model, linprog, normalised
from .certify import certify
from .results import CommitteeResult

PRICING = ("auto", "exact", "greedy")

#: Largest number of k-multisets enumerated by ``pricing="auto"``.
EXACT_LIMIT = 20000

# Greedy column generation stops after this many iterations without progress.
_STALL = 30


def _tie_value(count: Array, ties: str) -> Array:
    """Tie share of a multiset with ``count`` members tied with a single response."""
    if ties == "uniform":
        return count / (count + 1.0)
    if ties == "half":
        return np.full(count.shape, 0.5)
    if ties == "strict":
        return np.zeros(count.shape)
    return np.ones(count.shape)


class _Scores:
    """``a_S[y] = P[S ≻ y]`` under the level convention, with a cache."""

    def __init__(self, model: Any, ties: str) -> None:
        self.model = model
        self.ties = ties
        self.mirror = mirror_ties(ties)
        self.cache: Dict[Tuple[int, ...], Array] = {}
        self.calls = 0

    def __call__(self, S: Tuple[int, ...]) -> Array:
        row = self.cache.get(S)
        if row is None:
            self.calls += 1
            row = 1.0 - self.model.beats(list(S), self.mirror)
            self.cache[S] = row
        return row


def _greedy_rankings(pop: RankingPopulation, q: Array, k: int, ties: str) -> Tuple[Tuple[int, ...], float]:
    """Greedy ``max_S Σ_y q_y P[S ≻ y]`` over k-multisets on a ranking population,
    vectorised: per voter, the q-mass strictly below and at each level."""
    levels = np.asarray(pop.ranks)
    w = pop.weights
    n, m = levels.shape
    chosen: List[int] = []
    best = np.full(n, m + 1, dtype=np.int64)        # best level of S (m + 1: S empty)
    count = np.zeros(n, dtype=np.float64)           # members of S tied at it
    chunk = max(1, 4_000_000 // max(m, 1))
    value = 0.0
    for _ in range(k):
        gains = np.zeros(m)
        for start in range(0, n, chunk):
            L = levels[start:start + chunk].astype(np.int64)
            c = L.shape[0]
            rows = np.arange(c)[:, None]
            flat = (L + rows * (m + 2)).ravel()
            at = np.bincount(flat, weights=np.broadcast_to(q, L.shape).ravel(),
                             minlength=c * (m + 2)).reshape(c, m + 2)
            below = np.cumsum(at[:, ::-1], axis=1)[:, ::-1] - at   # q-mass strictly worse than level l
            b, cnt = best[start:start + chunk], count[start:start + chunk]
            old = below[np.arange(c), b] + _tie_value(cnt, ties) * at[np.arange(c), b]
            better = L < b[:, None]
            same = L == b[:, None]
            new_better = np.take_along_axis(below, L, axis=1) + _tie_value(np.ones(1), ties)[0] * \
                np.take_along_axis(at, L, axis=1)
            new_same = (below[np.arange(c), b] + _tie_value(cnt + 1.0, ties) * at[np.arange(c), b])[:, None]
            new = np.where(better, new_better, np.where(same, new_same, old[:, None]))
            gains += w[start:start + chunk] @ (new - old[:, None])
        z = int(np.argmax(gains))
        value += float(gains[z])
        chosen.append(z)
        lz = levels[:, z].astype(np.int64)
        same = lz == best
        count = np.where(lz < best, 1.0, np.where(same, count + 1.0, count))
        best = np.minimum(best, lz)
    return tuple(sorted(chosen)), value


def _greedy_generic(scores: _Scores, q: Array, k: int, m: int) -> Tuple[Tuple[int, ...], float]:
    """Greedy pricing through ``model.beats`` (one call per candidate)."""
    chosen: List[int] = []
    for _ in range(k):
        values = [float(np.dot(q, scores(tuple(sorted(chosen + [z]))))) for z in range(m)]
        chosen.append(int(np.argmax(values)))
    S = tuple(sorted(chosen))
    return S, float(np.dot(q, scores(S)))


def _master(columns: List[Tuple[int, ...]], A: Array) -> Tuple[Array, float, Array]:
    """``max t s.t. Σ_S rho_S A[S, y] >= t, rho in the simplex``: (rho, t, dual q)."""
    c_count, m = A.shape
    cost = np.zeros(c_count + 1)
    cost[-1] = -1.0
    A_ub = np.hstack([-A.T, np.ones((m, 1))])
    A_eq = np.zeros((1, c_count + 1))
    A_eq[0, :c_count] = 1.0
    res = linprog(cost, A_ub=A_ub, b_ub=np.zeros(m), A_eq=A_eq, b_eq=np.ones(1),
                  bounds=[(0.0, None)] * c_count + [(None, None)])
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the committee master LP: {res.message}")
    q = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    q = normalised(q) if q.sum() > 0 else np.full(m, 1.0 / m)
    return normalised(res.x[:c_count]), float(res.x[-1]), q


def solve_committee(model: Any, k: int, ties: str = "uniform", pricing: str = "auto", tol: float = 1e-9,
                    max_iter: int = 300) -> CommitteeResult:
    """The best distribution over k-multisets (Theorem 3.1's multi-output policy):
    ``max_rho min_y P[rho ≻ y]`` under ``ties`` (the paper's is ``"weak"``), which is
    at least ``k/(k+1)`` on every population satisfying Property 1 — and, unlike any
    single-output policy under ``"uniform"`` ties, can exceed it.

    ``pricing``: ``"exact"`` (enumerate the ``C(m+k-1, k)`` multisets: a certified
    optimum), ``"greedy"`` (large pools: achieved level plus a certified upper
    bound) or ``"auto"`` (exact up to ``EXACT_LIMIT`` multisets). Returns a
    :class:`CommitteeResult` whose ``policy`` is a :class:`~ualign.MultisetPolicy`.
    """
    clock = Clock()
    model = checked_model(model)
    k = as_count(k, "k")
    tie_code(ties)
    pricing = as_choice(pricing, PRICING, "pricing")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    m = model.n_responses
    total = math.comb(m + k - 1, k)
    exact = pricing == "exact" or (pricing == "auto" and total <= EXACT_LIMIT)
    scores = _Scores(model, ties)

    if exact:
        everything = list(itertools.combinations_with_replacement(range(m), k))
        table = np.array([scores(S) for S in everything])
    ranking = isinstance(model, RankingPopulation)

    def price(q: Array) -> Tuple[List[Tuple[int, ...]], float, float]:
        """(improving candidates, best value found, certified upper bound on max_S q·a_S)."""
        if exact:
            values = table @ q
            order = np.argsort(values)[::-1][:8]
            return [everything[j] for j in order], float(values[order[0]]), float(values[order[0]])
        if ranking:
            S, value = _greedy_rankings(model, q, k, ties)
        else:
            S, value = _greedy_generic(scores, q, k, m)
        value = float(np.dot(q, scores(S)))
        factor = 1.0 - (1.0 - 1.0 / k) ** k
        return [S], value, min(1.0, value / factor)

    # start: each response repeated k times, plus one greedy/exact column against uniform q
    columns: List[Tuple[int, ...]] = [(y,) * k for y in range(m)]
    candidates, _, upper = price(np.full(m, 1.0 / m))
    columns.extend(S for S in candidates if S not in columns)
    upper = min(upper, 1.0)
    history: List[float] = []
    iterations = 0
    rho, t, q = _master(columns, np.array([scores(S) for S in columns]))
    while iterations < max_iter:
        iterations += 1
        candidates, value, bound = price(q)
        upper = min(upper, bound)
        history.append(upper - t)
        new = [S for S in candidates if S not in columns and float(np.dot(q, scores(S))) > t + 1e-13]
        if not new or upper - t <= tol:
            break
        if len(history) > _STALL and history[-_STALL - 1] - history[-1] <= 1e-10 and not exact:
            break  # greedy pricing keeps finding columns that no longer move the level
        columns.extend(new)
        rho, t, q = _master(columns, np.array([scores(S) for S in columns]))
    keep = rho > 1e-15
    policy = MultisetPolicy([list(S) for S, kept in zip(columns, keep) if kept], normalised(rho[keep]))
    cert = certify(model, policy, k, ties=ties, tol=tol)
    upper = max(upper, cert.robust_level)
    gap = upper - cert.robust_level
    return CommitteeResult(policy=policy, robust_level=cert.robust_level, exploitability=None,
                           iterations=iterations, wall_time=clock(), converged=gap <= max(tol, 1e-9),
                           certificate=cert, method=f"column generation ({'exact' if exact else 'greedy'} pricing)",
                           k=k, ties=ties, evaluations=scores.calls, history=tuple(history), upper_bound=upper,
                           gap=gap, exact=exact)
