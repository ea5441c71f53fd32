"""NLHF: the maximal lottery of the pairwise matrix (the paper's k = 1 baseline).

Under ``"uniform"`` (= ``"half"``) ties ``M + Mᵀ = 1``, so ``A = M - 1/2`` is
skew-symmetric and the maximal lottery is the symmetric equilibrium of the
zero-sum game ``A``: ``pi >= 0``, ``sum pi = 1``, ``A pi <= 0`` (then
``(A pi)_y = 0`` on the support). Two exact methods:

* ``"ipm"`` (default): a double oracle (:func:`maximal_lotteries`) whose restricted
  games on growing sets of best responses are solved by a Mehrotra
  predictor–corrector interior-point method on this monotone complementarity
  problem, using that the game is its own dual (one dense factorisation per
  iteration, single precision while far from the solution), with a crossover to
  the exact support solve ``A_SS pi_S = 0, sum pi_S = 1`` once the support has
  settled.
* ``"lp"``: scipy's HiGHS on ``max v s.t. Mᵀ pi >= v, pi in the simplex``.

Under ``"strict"``/``"weak"`` ties the k = 1 maxmin ``max_pi min_z P[pi ≻ z]`` is
solved by the LP (the matrix is not skew-symmetric).

The maximal lottery need not be unique (e.g. an even number of voters split on a
pair). The optimal policies form a polytope, ``NLHFResult.lotteries``
(:class:`MaximalLotterySet`): its affine hull comes from the supports of a
strictly complementary pair of the LP (every optimal policy lives on the policy
side's support and ties every response the optimal opponents play; under
symmetric ties the analytic centre of the equilibria is one), its vertices
from enumerating the bases of the remaining inequalities. What NLHF guarantees at
``k`` samples then depends on which maximal lottery is returned;
:func:`nlhf_level_range` gives the range of ``f(pi, k)`` over the whole set.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from .._validate import as_choice, as_count, as_tolerance, mirror_ties, tie_code
from ..batch import PromptBatch, masked_max
from ._common import Array, Clock, checked_model, linprog, normalised, on_one_blas_thread
from .certify import certificates
from .results import MaximalLotterySet, NLHFLevelRange, NLHFResult

METHODS = ("auto", "ipm", "lp")

# Below this size a float64 factorisation is cheap; above it the early iterations
# (where single precision is plenty) use float32.
_MIXED_PRECISION_FROM = 400


def _masked_max(x: Array, valid: NDArray[np.bool_]) -> Array:
    return np.where(valid, x, -np.inf).max(axis=1)  # type: ignore[no-any-return]


def _crossover(A: Array, support: NDArray[np.bool_]) -> Tuple[Array, NDArray[np.bool_]]:
    """The exact equilibrium of every game of the stack on a guessed support:
    ``A_SS pi_S = 0``, ``sum pi_S = 1``. Returns (pi, ok), ok False where the system
    is singular or the solution leaves the simplex."""
    count, width = support.shape
    sizes = support.sum(axis=1)
    depth = int(sizes.max(initial=0))
    order = np.argsort(~support, axis=1, kind="stable")[:, :depth]
    valid = np.arange(depth)[None, :] < sizes[:, None]
    B = np.zeros((count, depth + 1, depth + 1))
    block = np.take_along_axis(np.take_along_axis(A, order[:, :, None], axis=1), order[:, None, :], axis=2)
    B[:, :depth, :depth] = block * (valid[:, :, None] & valid[:, None, :])
    B[:, :depth, depth] = valid
    B[:, depth, :depth] = valid
    B[:, np.arange(depth), np.arange(depth)] += ~valid  # identity on the padding
    rhs = np.zeros((count, depth + 1, 1))
    rhs[:, depth, 0] = 1.0
    # the systems LU finds singular by least squares (the minimum-norm solution, with
    # numpy.linalg.lstsq's cutoff for singular values); the others by LU
    singular = np.linalg.slogdet(B)[0] == 0
    x = np.zeros((count, depth + 1))
    x[~singular] = np.linalg.solve(B[~singular], rhs[~singular])[:, :, 0]
    if singular.any():
        U, sigma, Vt = np.linalg.svd(B[singular])
        kept = sigma > np.finfo(np.float64).eps * (depth + 1) * sigma[:, :1]
        coefficients = np.where(kept, U[:, depth, :] / np.where(kept, sigma, 1.0), 0.0)   # Uᵀ e_depth / sigma
        x[singular] = np.einsum("pk,pkj->pj", coefficients, Vt)
    members = np.where(valid, x[:, :depth], 0.0)
    ok = np.isfinite(x).all(axis=1) & (members.min(axis=1, initial=0.0) >= -1e-12) & (sizes > 0)
    pi = np.zeros((count, width))
    np.put_along_axis(pi, order, np.where(np.isfinite(members), members, 0.0), axis=1)
    pi = np.maximum(pi, 0.0)
    total = pi.sum(axis=1, keepdims=True)
    ok &= total[:, 0] > 0
    return np.divide(pi, total, out=np.zeros_like(pi), where=total > 0), ok


@on_one_blas_thread
def maximal_lotteries(pairwise: Sequence[Array], tol: float = 1e-10, max_iter: int = 200
                      ) -> List[Tuple[Array, float, int, bool, List[float]]]:
    """The maximal lottery of each pairwise matrix (``M + Mᵀ = 1``; sizes may differ)
    by a double oracle over the interior-point method, all matrices advancing together.

    Maximal lotteries have small supports, so each game is solved on a growing set
    ``S`` of responses: the restricted games ``A_SS`` (``A = M - 1/2``) of all
    matrices are solved exactly together (:func:`_interior_point`, one batched
    factorisation of the small padded games per iteration), then every response
    ``y`` outside ``S`` with ``(A pi)_y > tol`` is a best response against the
    restricted solution ``pi``; up to ``|S|`` of the best of them join ``S`` (once
    ``S`` would hold more than half of the responses, all of them do). When none is
    left, ``pi`` is a maximal lottery of the whole game. ``S`` starts at the
    response beating the uniform lottery by the most.

    Returns, per matrix, ``(pi, exploitability, iterations, converged, history)``
    where the exploitability ``max_y (M pi)_y - 1/2`` is evaluated in float64 on the
    matrix, ``iterations`` counts the interior-point iterations of all rounds (each
    at most ``max_iter``) and ``history`` holds the exploitability after each round.
    """
    sizes = np.array([np.shape(M)[0] for M in pairwise], dtype=np.int64)
    count, width = sizes.size, int(sizes.max())
    valid = np.arange(width)[None, :] < sizes[:, None]
    A = np.zeros((count, width, width))
    for j, M in enumerate(pairwise):
        A[j, :sizes[j], :sizes[j]] = np.asarray(M, dtype=np.float64) - 0.5
    rows = np.arange(count)
    members = np.zeros((count, width), dtype=bool)
    members[rows, _argmax(A.sum(axis=2), valid)] = True
    pi = members.astype(np.float64)
    iterations = np.zeros(count, dtype=np.int64)
    histories: List[List[float]] = [[] for _ in range(count)]
    open_ = np.ones(count, dtype=bool)
    while True:
        o = np.flatnonzero(open_)
        # (A pi) of every game (no copy of the open games' matrices), kept for the open ones
        value = np.where(valid, np.einsum("pyz,pz->py", A, pi), -np.inf)[o]
        for j, p in enumerate(o.tolist()):
            histories[p].append(float(value[j].max()))
        # the best responses outside S, up to |S| of them per game
        outside = np.where(members[o], -np.inf, value)
        ranked = np.argsort(-outside, axis=1, kind="stable")
        budget = members[o].sum(axis=1)
        joining = (np.take_along_axis(outside, ranked, axis=1) > tol) & (np.arange(width)[None, :] < budget[:, None])
        grow = joining.any(axis=1)
        open_[o[~grow]] = False
        o, ranked, joining = o[grow], ranked[grow], joining[grow]
        if not o.size:
            break
        added = np.zeros((o.size, width), dtype=bool)
        np.put_along_axis(added, ranked, joining, axis=1)
        members[o] |= added
        # past half of a game the restricted games cost about what the whole game does
        # (and the whole game's interior-point solution is exactly central): solve that
        whole = o[2 * members[o].sum(axis=1) > sizes[o]]
        members[whole] = valid[whole]
        # the restricted games, members first
        depth = int(members[o].sum(axis=1).max())
        order = np.argsort(~members[o], axis=1, kind="stable")[:, :depth]
        restricted = A[o[:, None, None], order[:, :, None], order[:, None, :]]
        inside = np.take_along_axis(members[o], order, axis=1)
        restricted *= inside[:, :, None] & inside[:, None, :]
        solved, its = _interior_point(restricted, inside.sum(axis=1), tol, max_iter)
        iterations[o] += its
        block = np.zeros((o.size, width))
        np.put_along_axis(block, order, np.where(inside, solved, 0.0), axis=1)
        pi[o] = block
    exploitability = np.where(valid, np.einsum("pyz,pz->py", A, pi), -np.inf).max(axis=1)
    return [(pi[j, :sizes[j]].copy(), float(exploitability[j]), int(iterations[j]), bool(exploitability[j] <= tol),
             histories[j]) for j in range(count)]


def _interior_point(A: Array, sizes: NDArray[np.int64], tol: float, max_iter: int, crossover: bool = True
                    ) -> Tuple[Array, NDArray[np.int64]]:
    """The symmetric equilibria of the skew-symmetric games ``A[j]`` (the leading
    ``sizes[j]`` responses; zero padding) by the interior-point method, all games
    advancing together (one batched factorisation per iteration). With
    ``crossover``, the exact support solve once the support has settled; without,
    the path is followed to its end, near the analytic centre of the equilibria
    (strictly complementary). Returns the policies (padded) and the iterations of each."""
    count, width = A.shape[0], A.shape[1]
    valid = np.arange(width)[None, :] < sizes[:, None]
    e = valid.astype(np.float64)
    mixed = width >= _MIXED_PRECISION_FROM

    def product(x: Array) -> Array:
        return np.einsum("pyz,pz->py", A, x)  # type: ignore[no-any-return]

    pi = e / sizes[:, None]
    Api = product(pi)
    best_pi, best_ex = pi.copy(), _masked_max(Api, valid)
    iterations = np.zeros(count, dtype=np.int64)
    active = best_ex > tol
    v = _masked_max(-Api, valid) - 1.0          # s = -A pi - v >= 1 at the start
    previous_support = np.zeros((count, width), dtype=bool)
    have_previous = np.zeros(count, dtype=bool)
    crossovers = np.zeros(count, dtype=np.int64)
    for iteration in range(1, max_iter + 1):
        a = np.flatnonzero(active)
        if not a.size:
            break
        iterations[a] = iteration
        Aa, va, ea, pa, m = A[a], valid[a], e[a], pi[a], sizes[a]
        s = np.where(va, -Api[a] - v[a, None], 0.0)
        mu = np.einsum("pw,pw->p", pa, s) / m
        dtype = np.float32 if (mixed and mu.min() > 1e-9) else np.float64
        N = -Aa
        N[:, np.arange(width), np.arange(width)] += np.where(va, s / np.where(va, pa, 1.0), 1.0)
        N = N.astype(dtype)

        def longest(x: Array, dx: Array, va: NDArray[np.bool_] = va) -> Array:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(va & (dx < 0), -x / dx, np.inf).min(axis=1)
            return np.minimum(1.0, 0.9995 * ratio)  # type: ignore[no-any-return]

        def newton(x_e: Array, x: Array) -> Tuple[Array, Array]:
            dv = -x.sum(axis=1) / x_e.sum(axis=1)
            return x + dv[:, None] * x_e, dv

        # predictor (affine scaling), then Mehrotra's corrector: two factorisations
        first = np.linalg.solve(N, np.stack([ea, -s], axis=2).astype(dtype)).astype(np.float64)
        x_e = first[:, :, 0] * va
        d_pi, d_v = newton(x_e, first[:, :, 1] * va)
        d_s = np.where(va, -np.einsum("pyz,pz->py", Aa, d_pi) - d_v[:, None], 0.0)
        alpha = np.minimum(longest(pa, d_pi), longest(s, d_s))
        mu_aff = np.einsum("pw,pw->p", pa + alpha[:, None] * d_pi, s + alpha[:, None] * d_s) / m
        sigma = (mu_aff / mu) ** 3
        rhs = np.where(va, (sigma[:, None] * mu[:, None] - pa * s - d_pi * d_s) / np.where(va, pa, 1.0), 0.0)
        second = np.linalg.solve(N, rhs[:, :, None].astype(dtype))[:, :, 0].astype(np.float64) * va
        d_pi, d_v = newton(x_e, second)
        d_s = np.where(va, -np.einsum("pyz,pz->py", Aa, d_pi) - d_v[:, None], 0.0)
        alpha = np.minimum(longest(pa, d_pi), longest(s, d_s))
        if dtype == np.float32 and alpha.min() < 0.1:
            mixed = False  # single precision stalls: double from here on
        pa = np.where(va, np.maximum(pa + alpha[:, None] * d_pi, 1e-300), 0.0)
        pa /= pa.sum(axis=1, keepdims=True)
        pi[a] = pa
        v[a] += alpha * d_v
        Api[a] = product(pa) if count == a.size else np.einsum("pyz,pz->py", Aa, pa)
        ex = _masked_max(Api[a], va)
        improved = ex < best_ex[a]
        best_pi[a[improved]], best_ex[a[improved]] = pa[improved], ex[improved]
        # crossover once the predicted support (pi > slack) has settled
        support = va & (pa > -Api[a] - v[a, None])
        settled = have_previous[a] & (support == previous_support[a]).all(axis=1)
        previous_support[a], have_previous[a] = support, True
        cross = crossover & settled & (dtype == np.float64) & (crossovers[a] < 8) & ((m < 200) | (mu < 1e-9))
        done = np.zeros(a.size, dtype=bool)
        if cross.any():
            c = np.flatnonzero(cross)
            crossovers[a[c]] += 1
            exact, ok = _crossover(A[a[c]], support[c])
            ex_exact = _masked_max(np.einsum("pyz,pz->py", A[a[c]], exact), va[c])
            better = ok & (ex_exact < best_ex[a[c]])
            best_pi[a[c[better]]], best_ex[a[c[better]]] = exact[better], ex_exact[better]
            done[c[ok & (ex_exact <= min(tol, 1e-13))]] = True
        finished = ~done & (best_ex[a] <= tol) & ((mu < 1e-14) | (best_ex[a] <= 1e-13) | (m >= 200))
        for row in np.flatnonzero(finished).tolist():   # an interior point: keep it sparse where that costs nothing
            p = int(a[row])
            if best_ex[p] == ex[row] and np.array_equal(best_pi[p], pa[row]):
                slack = -Api[p] - v[p]
                keep = valid[p] & (pa[row] > slack)
                if keep.any() and not keep[valid[p]].all():
                    candidate = np.where(keep, pa[row], 0.0)
                    candidate /= candidate.sum()
                    value = float(np.where(valid[p], A[p] @ candidate, -np.inf).max())
                    if value <= max(tol, float(best_ex[p])):
                        best_pi[p], best_ex[p] = candidate, value
        active[a[done | finished | (mu < 1e-16)]] = False
    return best_pi, iterations


def maximal_lottery(pairwise: Array, tol: float = 1e-10, max_iter: int = 200
                    ) -> Tuple[Array, float, int, bool, List[float]]:
    """The maximal lottery of a pairwise matrix with ``M + Mᵀ = 1``: the batch of one of
    :func:`maximal_lotteries`; returns ``(pi, exploitability, iterations, converged, history)``."""
    return maximal_lotteries([pairwise], tol=tol, max_iter=max_iter)[0]


def _maxmin_lp(P: Array) -> Tuple[Array, Optional[Array]]:
    """``max_pi min_z (Pᵀ pi)_z`` by HiGHS: (pi, the opponent's dual mixture)."""
    m = P.shape[0]
    c = np.zeros(m + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-P.T, np.ones((m, 1))])
    A_eq = np.zeros((1, m + 1))
    A_eq[0, :m] = 1.0
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(m), A_eq=A_eq, b_eq=np.ones(1),
                  bounds=[(0.0, None)] * m + [(None, None)])
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the NLHF linear program: {res.message}")
    q = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    return normalised(res.x[:m]), (normalised(q) if q.sum() > 0 else None)


@on_one_blas_thread
def solve_nlhf_batch(models: Sequence[Any], ties: str = "uniform", method: str = "auto", tol: float = 1e-10,
                     max_iter: int = 200) -> List[NLHFResult]:
    """:func:`solve_nlhf` for many prompts: the double oracle and its interior-point
    method advance all prompts' games together (``"ipm"``); ``"lp"`` solves them one
    by one. One result per prompt, in order, each with its own certificate."""
    clock = Clock()
    if not len(models):
        raise ValueError("models: needs at least one prompt")
    batch = PromptBatch([checked_model(model) for model in models])
    tie_code(ties)
    method = as_choice(method, METHODS, "method")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    symmetric = ties in ("uniform", "half")
    if method == "ipm" and not symmetric:
        raise ValueError(f"method: 'ipm' needs a skew-symmetric game ('uniform' or 'half' ties), got ties={ties!r}")
    if method == "auto":
        method = "ipm" if symmetric else "lp"
    matrices = batch.pairwise(ties)
    solved: List[Tuple[Array, int, List[float], float, Optional[Array]]] = []
    if method == "ipm":
        for pi, _, iterations, _, history in maximal_lotteries(matrices, tol=tol, max_iter=max_iter):
            solved.append((pi, iterations, history, 0.5, None))
    else:
        for P in matrices:
            pi, q = _maxmin_lp(P)
            upper = 0.5 if symmetric else (float((P @ q).max()) if q is not None else 1.0)
            solved.append((pi, 1, [], upper, q))
    padded = batch.normalised(batch.padded([pi for pi, _, _, _, _ in solved], batch.all), "policy")
    certs = certificates(batch, padded, 1, ties, tol)
    results = []
    policies = [padded[p, :m].copy() for p, m in enumerate(batch.sizes.tolist())]
    sets = _lottery_sets(matrices, ties, symmetric, policies, [q for _, _, _, _, q in solved])
    for (_, iterations, history, upper, _), P, cert, pi, lotteries in zip(solved, matrices, certs, policies, sets):
        value = float((P.T @ pi).min())
        if symmetric:
            expl = cert.exploitability
            converged = expl is not None and expl <= tol
            history = history or [float(expl or 0.0)]
        else:
            expl = None
            converged = upper - value <= max(tol, 1e-9)
            history = [upper - value]
        results.append(NLHFResult(policy=pi, robust_level=cert.robust_level, exploitability=expl,
                                  iterations=iterations, wall_time=clock(), converged=converged, certificate=cert,
                                  method=method, k=1, ties=ties, evaluations=1, history=tuple(history), value=value,
                                  upper_bound=max(upper, value), unique=lotteries.unique, lotteries=lotteries))
    return results
# -- the set of maximal lotteries -------------------------------------------------

#: Probability above which a solver's policy counts as playing a response.
_PLAYED = 1e-9
#: Margin by which every unplayed response must lose against the other side's
#: policy for the solver's pair to be read as strictly complementary.
_MARGIN = 1e-9
#: Responses that a candidate policy does not beat by this much join the restricted
#: games of :func:`_central_supports`. Near-degenerate games (slacks of 1e-8 off the
#: support, an interior-point answer accurate to 1e-8) need it far wider than
#: ``_MARGIN``: at 1e-9 the cyclic 2,000-response population took a dozen rounds.
_JOIN_MARGIN = 1e-5
#: The support LP finds the responses one optimal policy plays with probability
#: at least ``1 / _SUPPORT_SCALE`` each (larger scales defeat HiGHS's tolerances),
#: over the set relaxed by ``_SUPPORT_SLACK`` (a set that is a single point can
#: otherwise be infeasible by rounding).
_SUPPORT_SCALE = 1e5
_SUPPORT_SLACK = 1e-12
#: Singular values below this times the largest count as zero (the set's dimension).
RANK_TOLERANCE = 1e-9
#: Constraint violation allowed of a vertex, and the distance under which two are one.
_VERTEX_TOL = 1e-9
#: At most this many d-subsets of constraints are tried as vertices; beyond it
#: linear programs give a subset of the vertices (``complete=False``).
_VERTEX_BUDGET = 200_000
_VERTEX_CHUNK = 10_000
#: Subsets of constraints whose determinant is below this are not a vertex's basis.
_REGULAR = 1e-12

Mask = NDArray[np.bool_]


def _supports_of_pair(P: Array, p: Array, q: Array, low: float, high: float) -> Optional[Tuple[Mask, Mask]]:
    """The supports of all optimal policies and of all optimal opponents, read off an
    optimal pair ``(p, q)`` when it is strictly complementary: each response ``p``
    leaves out loses strictly against ``q`` (so no optimal policy plays it), and each
    opponent ``q`` leaves out is beaten strictly by ``p``. None when not clearly so.
    ``low <= value <= high`` brackets the game's value."""
    played, opposed = p > _PLAYED, q > _PLAYED
    against_q = P @ q      # P[y ≻ q]
    by_p = P.T @ p         # P[p ≻ z]
    if ((against_q[~played] < low - _MARGIN).all() and (against_q[played] >= low - _MARGIN).all()
            and (by_p[~opposed] > high + _MARGIN).all() and (by_p[opposed] <= high + _MARGIN).all()):
        return played, opposed
    return None


def _largest_support(G: Array, value: float) -> Mask:
    """The responses some ``p`` in ``{p in the simplex : Gᵀp >= value}`` plays. The set
    is convex, so one point plays all of them; on its cone ``{x >= 0 : Gᵀx >= value sum x}``
    the LP ``max sum_y s_y`` with ``0 <= s_y <= min(1, x_y)``, ``sum x <= _SUPPORT_SCALE``
    sets ``s_y = 1`` exactly there (with all coefficients O(1))."""
    m = G.shape[0]
    c = np.concatenate([np.zeros(m), -np.ones(m)])
    A_ub = np.block([[(value - _SUPPORT_SLACK) - G.T, np.zeros((m, m))],
                     [-np.eye(m), np.eye(m)],
                     [np.ones((1, m)), np.zeros((1, m))]])
    b_ub = np.concatenate([np.zeros(2 * m), [_SUPPORT_SCALE]])
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=[(0.0, None)] * m + [(0.0, 1.0)] * m)
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the support linear program: {res.message}")
    played: Mask = res.x[m:] > 0.5
    return played


def _distinct(points: Array) -> Array:
    """``points`` without repeats (within ``_VERTEX_TOL``). A degenerate vertex is found
    by many bases: first merge the copies that round alike, then compare the rest."""
    _, first = np.unique(np.round(points, 7), axis=0, return_index=True)
    kept: List[Array] = []
    for x in points[np.sort(first)]:
        if not any(float(np.abs(x - y).max()) <= _VERTEX_TOL for y in kept):
            kept.append(x)
    return np.array(kept)


def _vertices(G: Array, h: Array, directions: Array) -> Tuple[Array, bool]:
    """Vertices of the bounded, full-dimensional polytope ``{t in R^d : G t <= h}``
    (unit rows) and whether they are all of them. An interval (``d = 1``) has its
    ends; otherwise every d-subset of constraints is solved and kept when feasible;
    past ``_VERTEX_BUDGET`` subsets, the vertices are instead the optima of the linear
    programs minimising and maximising ``c·t`` for every row ``c`` of ``directions``
    (a subset, containing every coordinate extreme)."""
    n, d = G.shape
    if d == 1:  # an interval (unit rows are +-1): its ends
        ends = np.array([[float((-h[G[:, 0] < 0]).max())], [float(h[G[:, 0] > 0].min())]])
        return (ends if ends[1, 0] - ends[0, 0] > _VERTEX_TOL else ends[:1]), True
    if math.comb(n, d) > _VERTEX_BUDGET:
        optima = []
        for c in np.concatenate([directions, -directions]):
            res = linprog(c, A_ub=G, b_ub=h, bounds=(None, None))
            if res.status != 0:
                raise RuntimeError(f"HiGHS failed on a vertex of the maximal lotteries: {res.message}")
            optima.append(res.x)
        return _distinct(np.array(optima)), False
    found: List[Array] = []
    subsets = itertools.combinations(range(n), d)
    while True:
        chunk = np.array(list(itertools.islice(subsets, _VERTEX_CHUNK)), dtype=np.int64).reshape(-1, d)
        if chunk.shape[0] == 0:
            break
        A, b = G[chunk], h[chunk]
        regular = np.abs(np.linalg.det(A)) > _REGULAR   # unit rows: |det| <= 1
        t = np.linalg.solve(A[regular], b[regular][:, :, None])[:, :, 0]
        feasible = (t @ G.T - h[None, :] <= _VERTEX_TOL).all(axis=1)
        found.extend(t[feasible])
    return _distinct(np.array(found).reshape(-1, d)), True


def _lottery_sets(matrices: Sequence[Array], ties: str, symmetric: bool, policies: Sequence[Array],
                  opponents: Sequence[Optional[Array]]) -> List[MaximalLotterySet]:
    """The set of optimal policies of ``max_pi min_z (Pᵀ pi)_z`` for every matrix,
    around the optimal pair ``(p, q)`` of a solver (``q``: an optimal opponent, or
    None; under symmetric ties ``p`` is its own opponent).

    The supports of all optimal policies and opponents are read off a strictly
    complementary pair (:func:`_supports_of_pair`). When the solver's pair is not
    one (a vertex of the set, say), under symmetric ties the analytic centre of the
    equilibria of restricted games gives them (:func:`_central_supports`).
    Otherwise linear programs find the largest supports (:func:`_largest_support`)."""
    brackets: List[Tuple[float, float]] = []
    pairs: List[Optional[Tuple[Mask, Mask]]] = []
    for P, p, q in zip(matrices, policies, opponents):
        if symmetric:
            q, low, high = p, 0.5, 0.5   # the game is its own dual; its value is 1/2
        else:
            if q is None:
                q = _maxmin_lp(-P.T)[0]
            low, high = float((P.T @ p).min()), float((P @ q).max())
        brackets.append((low, high))
        pairs.append(_supports_of_pair(P, p, q, low, high))
    retry = [j for j, pair in enumerate(pairs) if pair is None] if symmetric else []
    if retry:
        for j, pair in zip(retry, _central_supports([matrices[j] for j in retry], [policies[j] for j in retry])):
            pairs[j] = pair
    supports: List[Tuple[Mask, Mask]] = []
    for P, pair, (low, high) in zip(matrices, pairs, brackets):
        if pair is None:
            played = _largest_support(P, low)
            pair = played, (played if symmetric else _largest_support(-P.T, -high))
        supports.append(pair)
    # the equations of every set's affine hull; one batched SVD per shape
    equations = [_hull_equations(P, played, opposed) for P, (played, opposed) in zip(matrices, supports)]
    svds: List[Tuple[Array, Array]] = [(np.zeros(0), np.zeros(0))] * len(matrices)
    by_shape: Dict[Tuple[int, ...], List[int]] = {}
    for j, B in enumerate(equations):
        by_shape.setdefault(B.shape, []).append(j)
    for group in by_shape.values():
        _, sigma, Vt = np.linalg.svd(np.stack([equations[j] for j in group]))
        for i, j in enumerate(group):
            svds[j] = sigma[i], Vt[i]
    return [_lottery_set(P, ties, p, played, opposed, low, B, sigma, Vt)
            for P, p, (played, opposed), (low, _), B, (sigma, Vt)
            in zip(matrices, policies, supports, brackets, equations, svds)]


def _central_supports(matrices: Sequence[Array], policies: Sequence[Array]) -> List[Optional[Tuple[Mask, Mask]]]:
    """The supports of all maximal lotteries (played = opposed) of each pairwise
    matrix (``M + Mᵀ = 1``) from the maximal lottery ``p``, read off the analytic
    centre of the equilibria; None where not found.

    Every maximal lottery plays only responses ``y`` with ``(M p)_y = 1/2``. The game
    restricted to a set ``T`` of responses containing them has more equilibria, not
    fewer, so the end of its interior-point path (near the analytic centre of its
    equilibria) plays every response some maximal lottery plays; when that point is
    also optimal and strictly complementary in the whole game
    (:func:`_supports_of_pair`), its supports are the answer. Otherwise the responses
    it does not beat by ``_JOIN_MARGIN`` join ``T`` and the restricted games are solved
    again, all matrices together; ``T`` starts at ``{y : (M p)_y >= 1/2 - _JOIN_MARGIN}``.
    (A larger ``T`` only adds equilibria to the restricted game, and the check is on
    the whole game: the wide margin costs nothing in rigour and saves rounds.)

    A nearly degenerate game (slacks and probabilities of 1e-8 off and on the
    support) can leave the centre within ``_MARGIN`` of ambiguous when no response is
    left to join. The exact equilibrium on the responses the centre plays
    (:func:`_crossover`) is then checked instead: when it is strictly complementary,
    it settles the case (the cyclic 2,000-response population of bench_solvers.py)."""
    count = len(matrices)
    members = [P @ p - 0.5 >= -_JOIN_MARGIN for P, p in zip(matrices, policies)]
    found: List[Optional[Tuple[Mask, Mask]]] = [None] * count
    open_ = list(range(count))
    while open_:
        still = []
        for j, centre in zip(open_, _restricted_centres(matrices, members, open_)):
            found[j] = _supports_of_pair(matrices[j], centre, centre, 0.5, 0.5)
            if found[j] is None:
                joining = (matrices[j] @ centre - 0.5 >= -_JOIN_MARGIN) & ~members[j]
                if joining.any():
                    members[j] |= joining
                    still.append(j)
                else:
                    exact, ok = _crossover((matrices[j] - 0.5)[None], (centre > _PLAYED)[None])
                    if ok[0]:
                        found[j] = _supports_of_pair(matrices[j], exact[0], exact[0], 0.5, 0.5)
        open_ = still
    return found


def _restricted_centres(matrices: Sequence[Array], members: Sequence[Mask], rows: List[int]) -> List[Array]:
    """The end of the interior-point path of each game ``matrices[j] - 1/2``
    restricted to the responses ``members[j]`` (``j`` in ``rows``; all solved
    together), as a policy over all responses."""
    sizes = np.array([int(members[j].sum()) for j in rows], dtype=np.int64)
    depth = int(sizes.max())
    A = np.zeros((len(rows), depth, depth))
    for i, j in enumerate(rows):
        A[i, :sizes[i], :sizes[i]] = matrices[j][np.ix_(members[j], members[j])] - 0.5
    restricted, _ = _interior_point(A, sizes, _CENTRE_TOL, _CENTRE_MAX_ITER, crossover=False)
    points = []
    for i, j in enumerate(rows):
        point = np.zeros(members[j].size)
        point[members[j]] = restricted[i, :sizes[i]]
        points.append(point)
    return points


#: The interior-point paths of :func:`_central_supports`: their tolerance and steps.
_CENTRE_TOL = 1e-13
_CENTRE_MAX_ITER = 200


def _hull_equations(P: Array, played: Mask, opposed: Mask) -> Array:
    """The equations ``B w = e`` on ``w = (x on the support, v)`` of the affine hull of
    the optimal policies (:func:`_lottery_set`): ``(Pᵀx)_z = v`` for every opposed
    ``z``, and ``sum x = 1`` (the last row)."""
    s = int(played.sum())
    B = np.zeros((int(opposed.sum()) + 1, s + 1))
    B[:-1, :s] = P[np.ix_(played, opposed)].T
    B[:-1, s] = -1.0
    B[-1, :s] = 1.0
    return B


def _lottery_set(P: Array, ties: str, p: Array, played: Mask, opposed: Mask, value: float, B: Array,
                 sigma: Array, Vt: Array) -> MaximalLotterySet:
    """The set of optimal policies of ``max_pi min_z (Pᵀ pi)_z`` (of value ``value``;
    ``p`` one of them) from the responses ``played`` by some optimal policy and
    ``opposed`` by some optimal opponent; ``B``: :func:`_hull_equations`, and its
    singular values ``sigma`` and right singular vectors ``Vt``.

    Complementary slackness makes the set exactly
    ``{x >= 0 on Y, 0 off Y : (Pᵀx)_z = v on Z, (Pᵀx)_z >= v off Z, sum x = 1}``
    (``Y`` played, ``Z`` opposed, ``v`` the value), and a strictly complementary
    point satisfies every inequality strictly: the set's dimension is that of the
    equations."""
    m = P.shape[0]
    support = np.flatnonzero(played)
    s = support.size
    relative = sigma / sigma[0]
    rank = int((relative > RANK_TOLERANCE).sum())
    rank_gap = (float(relative[rank]) if rank < relative.size else 0.0, float(relative[rank - 1]))
    dimension = s + 1 - rank
    if dimension == 0:
        vertices, complete = p[None, :].copy(), True
    else:
        N = Vt[rank:].T                                   # orthonormal directions of the affine hull
        rhs = np.zeros(B.shape[0])
        rhs[-1] = 1.0
        w0 = np.linalg.lstsq(B, rhs, rcond=None)[0]
        # C w >= 0: x >= 0, and x beats or ties every response off the opponents' support
        C = np.zeros((s + m - int(opposed.sum()), s + 1))
        C[:s, :s] = np.eye(s)
        C[s:, :s] = P[np.ix_(played, ~opposed)].T
        C[s:, s] = -1.0
        G, h = -(C @ N), C @ w0
        norms = np.linalg.norm(G, axis=1)
        binding = norms > RANK_TOLERANCE                  # the others hold on the whole affine hull
        G, h = G[binding] / norms[binding, None], h[binding] / norms[binding]
        t, complete = _vertices(G, h, N[:s])
        W = w0[None, :] + t @ N.T
        vertices = np.zeros((t.shape[0], m))
        vertices[:, support] = W[:, :s]
        vertices = np.array([normalised(v) for v in vertices])
    return MaximalLotterySet(ties=ties, value=value, unique=dimension == 0, dimension=dimension,
                             support=support.astype(np.int64), vertices=vertices, complete=complete,
                             lower=vertices.min(axis=0), upper=vertices.max(axis=0), rank_gap=rank_gap)


def solve_nlhf(model: Any, ties: str = "uniform", method: str = "auto", tol: float = 1e-10,
               max_iter: int = 200) -> NLHFResult:
    """NLHF: the maximal lottery ``pi`` of the pairwise matrix, ``min_z P[pi ≻ z] >= 1/2``.

    Under ``"uniform"``/``"half"`` ties (the same matrix) it is the symmetric
    equilibrium of the constant-sum k = 1 alignment game, found by an exact
    interior-point method with crossover (``method="ipm"``, the default) or
    scipy's HiGHS (``"lp"``); the result is the k = 1 MPNE. Under ``"strict"`` or
    ``"weak"`` ties it is ``argmax_pi min_z P[pi ≻ z]`` for that convention (an LP).
    ``tol`` bounds the exploitability of the returned policy (uniform/half).

    ``result.unique`` says whether this is the only maximal lottery, and
    ``result.lotteries`` describes the set of all of them (dimension, vertices,
    coordinate ranges); :func:`nlhf_level_range` gives the range of robust levels
    over that set at any ``k``.

    The batch of one of :func:`solve_nlhf_batch`.
    """
    return solve_nlhf_batch([model], ties, method, tol, max_iter)[0]


# -- what NLHF guarantees at k samples ---------------------------------------------

#: Cutting planes are added for this many responses of highest utility per point
#: (at least one more than the hull has vertices: as many as can meet at a kink of
#: ``F`` in general position).
_CUT_ROWS = 8
#: Default gap allowed between the largest level found and its bound, and steps of the search.
_RANGE_TOL = 1e-9
_RANGE_MAX_ITER = 200


@on_one_blas_thread
def nlhf_level_range(model: Any, k: int, ties: str = "uniform", lotteries: Optional[MaximalLotterySet] = None,
                     tol: float = _RANGE_TOL, max_iter: int = _RANGE_MAX_ITER) -> NLHFLevelRange:
    """The smallest and largest robust level ``f(pi, k)`` over all maximal lotteries
    ``pi`` under ``ties`` (which is also the convention of the pairwise matrix
    defining them, as in :func:`solve_nlhf`).

    When the maximal lottery is unique both ends are its level. Otherwise:
    ``f(pi, k) = 1 - max_y P[y ≻' pi^{⊗k}]`` is concave in ``pi`` (each utility is
    convex), so its minimum over the polytope is attained at a vertex — the minimum
    over the vertices, exact when they were all enumerated
    (``lotteries.complete``) — and its maximum is a convex program. On a segment
    (``dimension == 1``) it is a concave function of one variable, maximised by
    tangent lines (see :func:`_segment_level_ranges`); on a larger set by Kelley's
    cutting planes over the convex hull of the vertices, whose LP dual certifies
    ``max_level_bound``. ``exact`` says both ends are exact (the vertices complete
    and the gap within ``tol``).

    ``lotteries``: the set from ``solve_nlhf(model, ties=ties).lotteries`` (computed
    when omitted), so that one solve serves every ``k``.
    """
    model = checked_model(model)
    k = as_count(k, "k")
    tie_code(ties)
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    if lotteries is None:
        lotteries = solve_nlhf(model, ties=ties).lotteries
    if not isinstance(lotteries, MaximalLotterySet):
        raise TypeError(f"lotteries: expected a MaximalLotterySet (solve_nlhf(...).lotteries), "
                        f"got {type(lotteries).__name__}")
    if lotteries.ties != ties:
        raise ValueError(f"lotteries: the maximal lotteries under ties={lotteries.ties!r}, not ties={ties!r}")
    if lotteries.vertices.shape[1] != model.n_responses:
        raise ValueError(f"lotteries: policies over {lotteries.vertices.shape[1]} responses, "
                         f"the model has {model.n_responses}")
    return level_ranges([model], [lotteries], k, ties, tol, max_iter)[0]


def level_ranges(models: Sequence[Any], sets: Sequence[MaximalLotterySet], k: int, ties: str,
                 tol: float = _RANGE_TOL, max_iter: int = _RANGE_MAX_ITER) -> List[NLHFLevelRange]:
    """:func:`nlhf_level_range` of every prompt (validated arguments; ``sets[p]`` the
    maximal lotteries of ``models[p]`` under ``ties``). The segments of all prompts
    are searched together, one batched kernel call per step."""
    out: List[Optional[NLHFLevelRange]] = [None] * len(models)
    segments = [p for p, lotteries in enumerate(sets) if lotteries.vertices.shape[0] == 2]
    if segments:
        found = _segment_level_ranges([models[p] for p in segments], [sets[p] for p in segments],
                                      k, ties, tol, max_iter)
        for p, span in zip(segments, found):
            out[p] = span
    hulls = [p for p, span in enumerate(out) if span is None]
    if hulls:
        found = _hull_level_ranges([models[p] for p in hulls], [sets[p] for p in hulls], k, ties, tol, max_iter)
        for p, span in zip(hulls, found):
            out[p] = span
    return [span for span in out if span is not None]


def _segment_level_ranges(models: Sequence[Any], sets: Sequence[MaximalLotterySet], k: int, ties: str,
                          tol: float, max_iter: int) -> List[NLHFLevelRange]:
    """The range of levels on the segments ``pi(t) = V0 + t (V1 - V0)``, ``t in [0, 1]``,
    of all prompts at once.

    ``F(t) = max_y u_y(pi(t))`` is convex, and each ``u_y(pi(t))`` is a polynomial of
    degree ``<= k`` in ``t`` (an expectation over ``k`` independent draws from
    ``pi(t)``). So the utilities at ``k + 1`` Chebyshev points of the segment (its
    vertices among them) determine every ``u_y`` along it: their interpolants locate
    the minimiser ``t*`` of ``F`` without further passes over the population (a
    tangent search, :func:`_tangent_search`, on the interpolants). The minimum is then
    certified by the population itself: the utilities at ``t*`` and the gradients of
    the responses nearly attaining ``F(t*)`` give tangents ``F(s) >= u_y(t*) + g_y (s - t*)``
    (``g_y = ∇u_y · (V1 - V0)``; valid for every ``y`` by convexity of ``u_y``), whose
    maximum is smallest on ``[0, 1]`` at an end or where two of them cross. Where
    that bound is not within ``tol`` (the interpolants misled), the tangent search
    runs on the population itself."""
    code = tie_code(mirror_ties(ties))
    n = len(models)
    batch = PromptBatch(models)
    rows, mask = batch.all, batch.mask
    V0 = batch.padded([lotteries.vertices[0] for lotteries in sets], rows)
    V1 = batch.padded([lotteries.vertices[1] for lotteries in sets], rows)
    D = V1 - V0

    def policies(t: Array, s: Rows) -> Array:
        """``pi(t)`` of the segments ``s``: exactly the vertices at ``t = 0`` and ``t = 1``."""
        inside = np.maximum(V0[s] + t[:, None] * D[s], 0.0)
        inside /= inside.sum(axis=1, keepdims=True)
        return np.where((t == 0.0)[:, None], V0[s], np.where((t == 1.0)[:, None], V1[s], inside))

    # the utilities at the Chebyshev points, and their interpolants (Chebyshev coefficients)
    nodes, from_values = _chebyshev_nodes(k)
    U = np.stack([batch.utilities(policies(np.full(n, t), rows), k, code, rows) for t in nodes])
    F_nodes = np.stack([masked_max(u, mask) for u in U], axis=1)
    coefficients = np.einsum("ij,jpw->piw", from_values, U)

    def fitted(t: Array, s: Rows, guess: NDArray[np.intp]) -> Tuple[Array, Array, Array, NDArray[np.intp]]:
        basis, slopes = _chebyshev_basis(k, t)
        u = np.einsum("pi,piw->pw", basis, coefficients[s])
        y = _argmax(u, mask[s])
        F = u[np.arange(s.size), y]
        return F, F, np.einsum("pi,pi->p", slopes, coefficients[s, :, y]), y

    found = _tangent_search(fitted, rows, np.zeros(n, dtype=np.intp), np.zeros(n, dtype=np.intp),
                            0.0, max_iter)
    t_star, iterations = found[1], found[3]
    # the certificate at t*: tangents of the responses within _NEAR of F(t*)
    at_star = policies(t_star, rows)
    u = batch.utilities(at_star, k, code, rows)
    F_star = masked_max(u, mask)
    order = np.argsort(-np.where(mask, u, -np.inf), axis=1, kind="stable")[:, :_CERTIFYING_ROWS]
    top = np.take_along_axis(u, order, axis=1)
    near = top >= F_star[:, None] - _NEAR
    selected = np.zeros_like(mask)
    np.put_along_axis(selected, order, near, axis=1)
    J = batch.jacobian(at_star, k, code, rows, selected)          # rows in ascending response order
    values = np.where(selected, u, -np.inf)
    chosen = np.argsort(~selected, axis=1, kind="stable")[:, :J.shape[1]]
    line_values = np.take_along_axis(values, chosen, axis=1)
    line_slopes = np.where(np.isfinite(line_values), np.einsum("paw,pw->pa", J, D), 0.0)
    bound = _lines_bound(line_values - line_slopes * t_star[:, None], line_slopes)
    # the best policy evaluated: a Chebyshev point or t*
    at_nodes = np.argmin(F_nodes, axis=1)
    best_F = np.minimum(F_nodes[rows, at_nodes], F_star)
    best_t = np.where(F_star <= F_nodes[rows, at_nodes], t_star, nodes[at_nodes])
    open_ = np.flatnonzero(best_F - bound > tol)
    if open_.size:  # the interpolants misled: the tangent search on the population itself
        def measured(t: Array, s: Rows, guess: NDArray[np.intp]) -> Tuple[Array, Array, Array, NDArray[np.intp]]:
            p = policies(t, s)
            u, value, slope = _tangents(batch, p, D[s], guess, k, code, s)
            F = masked_max(u, mask[s])
            y = guess.copy()
            missed = np.flatnonzero(value < F)
            if missed.size:  # the guess does not attain F(t): the tangent of one that does
                y[missed] = _argmax(u[missed], mask[s[missed]])
                _, value[missed], slope[missed] = _tangents(batch, p[missed], D[s[missed]], y[missed], k, code,
                                                            s[missed])
            return F, value, slope, y

        F_open, t_open, bound_open, steps = _tangent_search(
            measured, open_, _argmax(U[0, open_], mask[open_]), _argmax(U[-1, open_], mask[open_]), tol, max_iter)
        better = F_open < best_F[open_]
        best_F[open_[better]], best_t[open_[better]] = F_open[better], t_open[better]
        bound[open_] = np.maximum(bound[open_], bound_open)
        iterations[open_] += steps
    max_policies = policies(best_t, rows)
    out = []
    for j, lotteries in enumerate(sets):
        m = int(batch.sizes[j])
        worst = int(F_nodes[j, -1] > F_nodes[j, 0])
        max_level = 1.0 - float(best_F[j])
        # the bound is computed in floating point: never below a level attained
        max_level_bound = max(max_level, min(1.0, 1.0 - float(bound[j])))
        out.append(NLHFLevelRange(k=k, ties=ties, unique=False, min_level=1.0 - float(F_nodes[j, -worst]),
                                  max_level=max_level, max_level_bound=max_level_bound,
                                  exact=lotteries.complete and max_level_bound - max_level <= tol,
                                  min_policy=lotteries.vertices[worst], max_policy=max_policies[j, :m],
                                  iterations=int(iterations[j]), evaluations=int(batch.passes[j])))
    return out


#: The certificate at t* uses the gradients of at most this many responses, those
#: within _NEAR of the highest utility (at a kink of F: the responses meeting there).
_CERTIFYING_ROWS = 4
_NEAR = 1e-6
#: The tangent search stops when its bracket is this short (rounding of ``t``), and
#: keeps each point this fraction of the bracket away from its ends.
_SEGMENT_RESOLUTION = 1e-12
_BRACKET_MARGIN = 1e-3

Rows = NDArray[np.intp]
Oracle = Callable[[Array, Rows, NDArray[np.intp]], Tuple[Array, Array, Array, NDArray[np.intp]]]


def _tangent_search(oracle: Oracle, rows: Rows, y0: NDArray[np.intp], y1: NDArray[np.intp], tol: float,
                    max_iter: int) -> Tuple[Array, Array, Array, NDArray[np.int64]]:
    """``min_{t in [0, 1]} F(t)`` of convex functions, one per row, from tangents.

    ``oracle(t, rows, guess)`` returns ``F(t)`` and a tangent at ``t`` (value, slope
    and the response it belongs to; ``guess``: the likely one). A bracket ``[a, b]``
    keeps a tangent of slope ``< 0`` at ``a`` and ``> 0`` at ``b``; the next point
    alternates between where they cross (exact in one step at a kink where two
    utilities meet) and the root of the secant of the slopes (fast where ``F`` is
    smooth). Returns the smallest ``F`` found, where, the certified lower bound
    ``min_s max`` of the bracket's two tangents, and the steps taken."""
    n = rows.size
    a, b = np.zeros(n), np.ones(n)
    F0, Fa, ga, ya = oracle(a, rows, y0)
    F1, Fb, gb, yb = oracle(b, rows, y1)
    best_F = np.minimum(F0, F1)
    best_t = np.where(F0 <= F1, 0.0, 1.0)
    steps = np.zeros(n, dtype=np.int64)
    secant = False
    while True:
        bound = _lines_bound(np.stack([Fa - ga * a, Fb - gb * b], axis=1), np.stack([ga, gb], axis=1))
        s = np.flatnonzero((best_F - bound > tol) & (ga < 0) & (gb > 0) & (b - a > _SEGMENT_RESOLUTION)
                           & (steps < max_iter))
        if s.size == 0:
            return best_F, best_t, bound, steps
        if secant:
            t = a[s] - ga[s] * (b[s] - a[s]) / (gb[s] - ga[s])
        else:
            t = (Fb[s] - Fa[s] + ga[s] * a[s] - gb[s] * b[s]) / (ga[s] - gb[s])
        secant = not secant
        # strictly inside the bracket, so that every step shrinks it
        margin = _BRACKET_MARGIN * (b[s] - a[s])
        t = np.clip(t, a[s] + margin, b[s] - margin)
        # the response of the higher tangent at t is the likely maximiser there
        guess = np.where(Fa[s] + ga[s] * (t - a[s]) >= Fb[s] + gb[s] * (t - b[s]), ya[s], yb[s])
        F, value, slope, y = oracle(t, rows[s], guess)
        steps[s] += 1
        better = F < best_F[s]
        best_F[s[better]], best_t[s[better]] = F[better], t[better]
        left = slope < 0
        to_a, to_b = s[left], s[~left]
        a[to_a], Fa[to_a], ga[to_a], ya[to_a] = t[left], value[left], slope[left], y[left]
        b[to_b], Fb[to_b], gb[to_b], yb[to_b] = t[~left], value[~left], slope[~left], y[~left]


def _chebyshev_nodes(k: int) -> Tuple[Array, Array]:
    """The ``k + 1`` Chebyshev points of ``[0, 1]`` (0 and 1 among them), and the
    matrix taking values there to the coefficients of the interpolant in ``T_i(2t - 1)``."""
    nodes: Array = (1.0 - np.cos(np.pi * np.arange(k + 1) / k)) / 2.0
    from_values: Array = np.linalg.inv(_chebyshev_basis(k, nodes)[0]).astype(np.float64)
    return nodes, from_values


def _chebyshev_basis(k: int, t: Array) -> Tuple[Array, Array]:
    """``T_i(2t - 1)``, ``i = 0..k``, and their derivatives in ``t`` (one row per ``t``)."""
    x = 2.0 * t - 1.0
    T = np.zeros((x.size, k + 1))
    dT = np.zeros((x.size, k + 1))
    T[:, 0] = 1.0
    T[:, 1] = x
    dT[:, 1] = 2.0
    for i in range(1, k):
        T[:, i + 1] = 2.0 * x * T[:, i] - T[:, i - 1]
        dT[:, i + 1] = 4.0 * T[:, i] + 2.0 * x * dT[:, i] - dT[:, i - 1]
    return T, dT


def _argmax(u: Array, mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    return np.argmax(np.where(mask, u, -np.inf), axis=1)  # type: ignore[no-any-return]


def _tangents(batch: PromptBatch, p: Array, D: Array, y: NDArray[np.intp], k: int, code: int,
              rows: Rows) -> Tuple[Array, Array, Array]:
    """One pass at the policies ``p``: the utilities, and the value and slope along
    ``D`` of the utility of response ``y`` (per row)."""
    q = np.zeros_like(p)
    q[np.arange(y.size), y] = 1.0
    u, g = batch.utilities_vjp(p, q, k, code, rows)
    return u, u[np.arange(y.size), y], np.einsum("pw,pw->p", g, D)


def _lines_bound(intercepts: Array, slopes: Array) -> Array:
    """``min_{s in [0, 1]} max_i (intercepts[:, i] + slopes[:, i] s)`` per row (lines
    with intercept ``-inf`` are absent): at an end of ``[0, 1]`` or where two cross."""
    i, j = np.triu_indices(intercepts.shape[1], 1)
    apart = slopes[:, i] != slopes[:, j]
    with np.errstate(invalid="ignore"):
        cross = (intercepts[:, j] - intercepts[:, i]) / np.where(apart, slopes[:, i] - slopes[:, j], 1.0)
    cross = np.where(apart & np.isfinite(cross), cross, 0.0)
    s = np.concatenate([np.zeros((intercepts.shape[0], 1)), np.ones((intercepts.shape[0], 1)),
                        np.clip(cross, 0.0, 1.0)], axis=1)
    upper = (intercepts[:, None, :] + slopes[:, None, :] * s[:, :, None]).max(axis=2)
    return upper.min(axis=1)  # type: ignore[no-any-return]


class _CutModels:
    """Kelley's linear programs over the cuts of many hulls (``dims[j]`` coordinates
    each): ``min t`` over ``lam`` in the simplex subject to ``o_c + g_c·lam <= t``
    for every cut ``c`` of hull ``j``, solved exactly through their duals
    ``max o·w + s`` subject to ``s <= (Gᵀw)_i`` and ``w`` in the simplex, by a revised
    primal simplex on the dense ``(d + 1)``-row programs, all advancing together
    (one batched inverse per pivot). The cuts are the duals' columns, so the optimal
    bases after one round of cuts are feasible starts for the next (a few pivots
    each round). The optimal duals are ``(lam, t)``; the optimal ``w`` is a
    distribution over the cuts, and every such ``w`` bounds ``min F`` from below by
    ``o·w + min_i (Gᵀw)_i`` (each cut lies below ``F``), whatever the rounding of
    the simplex.

    The programs share one padded layout: ``D = max dims`` coordinate rows and the
    row of ``sum w = 1``; columns: the free ``s`` (always basic), one slack per
    coordinate, then the cuts. A hull with fewer coordinates has, in each row past
    its own, only that row's slack (basic at zero, so it never moves); columns past
    its cuts never enter."""

    def __init__(self, dims: NDArray[np.int64]) -> None:
        n, D = dims.size, int(dims.max())
        self.dims, self.D = dims, D
        self.coordinates = np.arange(D)[None, :] < dims[:, None]
        self.columns = np.zeros((n, D + 1, 1 + D))
        self.columns[:, :D, 0] = self.coordinates
        self.columns[:, :D, 1:] = np.eye(D)
        self.cost = np.zeros((n, 1 + D))
        self.cost[:, 0] = 1.0
        self.used = np.full(n, 1 + D, dtype=np.int64)     # columns filled per program
        self.basis = np.zeros((n, D + 1), dtype=np.intp)
        self.started = np.zeros(n, dtype=bool)

    def add(self, j: int, offsets: Array, grads: Array) -> None:
        """Cuts ``o_c + g_c·lam`` of program ``j`` (``grads``: one row per cut)."""
        start, count = int(self.used[j]), offsets.size
        if start + count > self.columns.shape[2]:       # room for at least as many again
            extra = max(start + count, 2 * self.columns.shape[2]) - self.columns.shape[2]
            self.columns = np.concatenate([self.columns, np.zeros(self.columns.shape[:2] + (extra,))], axis=2)
            self.cost = np.concatenate([self.cost, np.zeros((self.cost.shape[0], extra))], axis=1)
        d = int(self.dims[j])
        self.columns[j, :d, start:start + count] = -grads.T
        self.columns[j, self.D, start:start + count] = 1.0
        self.cost[j, start:start + count] = offsets
        self.used[j] = start + count
        if not self.started[j]:  # w on the first cut, s = its smallest coefficient
            low = int(np.argmin(grads[0]))
            self.basis[j] = [0, start] + [1 + i for i in range(self.D) if i != low]
            self.started[j] = True

    def solve(self, rows: NDArray[np.intp]) -> Tuple[Array, Array]:
        """The optimal ``lam`` (padded to ``D``) and the certified lower bound
        ``o·w + min_i (Gᵀw)_i`` of the optimal cut weights ``w`` of the programs
        ``rows``. Nearly parallel cuts can make rounding pivot back and forth between
        equally good bases: after ``_PIVOT_BUDGET`` pivots the last basis is returned
        (its ``w`` bounds all the same, and ``lam`` is only the next point to evaluate)."""
        width = int(self.used[rows].max())
        A, c, D = self.columns[rows, :, :width], self.cost[rows, :width], self.D
        basis = self.basis[rows]
        scale = np.maximum(1.0, np.maximum(np.abs(A).max(axis=(1, 2)), np.abs(c).max(axis=1)))
        usable = np.arange(width)[None, :] < self.used[rows, None]
        bounded = np.arange(D + 1) > 0                  # s, at position 0, is free: never leaves
        active = np.ones(rows.size, dtype=bool)
        for pivot in range(_PIVOT_BUDGET):
            a = np.flatnonzero(active)
            if not a.size:
                break
            inverse = np.linalg.inv(np.take_along_axis(A[a], basis[a, None, :], axis=2))
            y = np.einsum("pr,prs->ps", np.take_along_axis(c[a], basis[a], axis=1), inverse)
            reduced = c[a] - np.einsum("pr,prc->pc", y, A[a])
            np.put_along_axis(reduced, basis[a], 0.0, axis=1)
            improving = usable[a] & (reduced > _REDUCED_COST_TOL * scale[a, None])
            active[a[~improving.any(axis=1)]] = False
            keep = improving.any(axis=1)
            a, inverse, reduced, improving = a[keep], inverse[keep], reduced[keep], improving[keep]
            if not a.size:
                break
            # Dantzig's rule, then Bland's (no cycling) once pivots run long
            j = (np.argmax(np.where(improving, reduced, -np.inf), axis=1) if pivot < _DANTZIG_PIVOTS
                 else np.argmax(improving, axis=1))
            direction = np.einsum("prs,ps->pr", inverse, A[a, :, j])
            size = np.maximum(1.0, np.abs(direction).max(axis=1))
            rising = bounded[None, :] & (direction > _PIVOT_TOL * size[:, None])
            ray = ~rising.any(axis=1)                   # an improving ray of a bounded program: rounding
            usable[a[ray], j[ray]] = False
            x = np.maximum(inverse[:, :, D], 0.0)       # the basic solutions (the right-hand side is e_D)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = np.where(rising, x / np.where(rising, direction, 1.0), np.inf)
            ties = ratios <= ratios.min(axis=1, keepdims=True)
            leaving = np.argmin(np.where(ties, basis[a], np.iinfo(np.intp).max), axis=1)
            step = ~ray
            basis[a[step], leaving[step]] = j[step]
        self.basis[rows] = basis
        inverse = np.linalg.inv(np.take_along_axis(A, basis[:, None, :], axis=2))
        lam = np.einsum("pr,prs->ps", np.take_along_axis(c, basis, axis=1), inverse)[:, :D]
        w = np.zeros((rows.size, width))
        np.put_along_axis(w, basis, np.maximum(inverse[:, :, D], 0.0), axis=1)
        w[:, :1 + D] = 0.0
        w /= w.sum(axis=1, keepdims=True)
        coefficients = np.where(self.coordinates[rows], -np.einsum("pic,pc->pi", A[:, :D], w), np.inf)
        return lam, np.einsum("pc,pc->p", w, c) + coefficients.min(axis=1)


#: The simplex of :class:`_CutModels`: reduced costs above this (relative to the
#: program's largest entry) improve, pivots below this (relative to the column) are
#: not taken, after this many pivots Bland's rule replaces Dantzig's, and at most
#: this many pivots are taken in one solve.
_REDUCED_COST_TOL = 1e-12
_PIVOT_TOL = 1e-9
_DANTZIG_PIVOTS = 50
_PIVOT_BUDGET = 200


def _hull_level_ranges(models: Sequence[Any], sets: Sequence[MaximalLotterySet], k: int, ties: str, tol: float,
                       max_iter: int) -> List[NLHFLevelRange]:
    """:func:`nlhf_level_range` by Kelley's cutting planes over the convex hulls of
    the vertices (a single vertex: its level), all prompts advancing together.

    In the coordinates ``lam`` of a hull (``pi = lamᵀ V``), every utility is convex,
    so its tangent at any point is a cut below ``F(lam) = max_y u_y``; each point
    evaluated adds the cuts of its highest utilities (``_CUT_ROWS``). The next point
    is the minimiser of the cuts' maximum (:class:`_CutModels`), whose dual weights
    certify the bound. One batched utility and Jacobian pass per step."""
    code = tie_code(mirror_ties(ties))
    batch = PromptBatch(models)
    n = len(models)
    counts = np.array([lotteries.vertices.shape[0] for lotteries in sets], dtype=np.int64)
    programs = _CutModels(counts)

    def evaluate(rows: Rows, points: List[Array], lams: List[Array]) -> Array:
        """``max_y u_y`` at the policies ``points`` (``lamᵀ V``) of the prompts ``rows``,
        adding the cuts."""
        policies = batch.padded(points, rows)
        u = batch.utilities(policies, k, code, rows)
        F = masked_max(u, batch.mask[rows])
        hulls = np.flatnonzero(counts[rows] > 1)
        if hulls.size:
            h = rows[hulls]
            ranked = np.where(batch.mask[h], u[hulls], -np.inf)
            order = np.argsort(-ranked, axis=1, kind="stable")
            top = np.arange(order.shape[1])[None, :] < np.maximum(_CUT_ROWS, counts[h] + 1)[:, None]
            selected = np.zeros_like(batch.mask[h])
            np.put_along_axis(selected, order, top & np.take_along_axis(batch.mask[h], order, axis=1), axis=1)
            J = batch.jacobian(policies[hulls], k, code, h, selected)   # ascending responses
            for j, p in enumerate(h.tolist()):
                m, c = int(batch.sizes[p]), int(selected[j].sum())
                values = u[hulls[j], :m][selected[j, :m]]
                grads = J[j, :c, :m] @ sets[p].vertices.T
                programs.add(p, values - grads @ lams[hulls[j]], grads)
        return F

    at_vertices = np.full((n, int(counts.max())), -np.inf)
    for i in range(int(counts.max())):
        rows = np.flatnonzero(counts > i)
        at_vertices[rows, i] = evaluate(rows, [sets[p].vertices[i] for p in rows.tolist()],
                                        [np.eye(counts[p])[i] for p in rows.tolist()])
    worst = np.argmax(at_vertices, axis=1)
    best = np.argmin(np.where(np.isfinite(at_vertices), at_vertices, np.inf), axis=1)
    best_F = at_vertices[np.arange(n), best]
    best_policies = [sets[p].vertices[best[p]] for p in range(n)]
    bound = np.where(counts == 1, best_F, -np.inf)
    iterations = np.zeros(n, dtype=np.int64)
    active = best_F - bound > tol
    while True:
        open_ = np.flatnonzero(active & (iterations < max_iter))
        if not open_.size:
            break
        lams, cut_bounds = programs.solve(open_)
        bound[open_] = np.maximum(bound[open_], cut_bounds)
        closed = best_F[open_] - bound[open_] <= tol
        active[open_[closed]] = False
        stepping, lams = open_[~closed], lams[~closed]
        if not stepping.size:
            break
        iterations[stepping] += 1
        proposals = [normalised(lam[:counts[p]]) for p, lam in zip(stepping.tolist(), lams)]
        points = [normalised(lam @ sets[p].vertices) for p, lam in zip(stepping.tolist(), proposals)]
        F = evaluate(stepping, points, proposals)
        for j, p in enumerate(stepping.tolist()):
            if F[j] < best_F[p]:
                best_F[p], best_policies[p] = F[j], points[j]
    out = []
    for p, lotteries in enumerate(sets):
        max_level = 1.0 - float(best_F[p])
        # the bound is computed in floating point: never below a level attained
        max_level_bound = max(max_level, min(1.0, 1.0 - float(bound[p])))
        out.append(NLHFLevelRange(k=k, ties=ties, unique=lotteries.unique,
                                  min_level=1.0 - float(at_vertices[p, worst[p]]), max_level=max_level,
                                  max_level_bound=max_level_bound,
                                  exact=lotteries.complete and max_level_bound - max_level <= tol,
                                  min_policy=lotteries.vertices[worst[p]], max_policy=best_policies[p],
                                  iterations=int(iterations[p]), evaluations=int(batch.passes[p])))
    return out
