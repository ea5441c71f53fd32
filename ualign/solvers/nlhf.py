"""NLHF: the maximal lottery of the pairwise matrix (the paper's k = 1 baseline).

Under ``"uniform"`` (= ``"half"``) ties ``M + Mᵀ = 1``, so ``A = M - 1/2`` is
skew-symmetric and the maximal lottery is the symmetric equilibrium of the
zero-sum game ``A``: ``pi >= 0``, ``sum pi = 1``, ``A pi <= 0`` (then
``(A pi)_y = 0`` on the support). Two exact methods:

* ``"ipm"`` (default): a Mehrotra predictor–corrector interior-point method on
  this monotone complementarity problem, using that the game is its own dual (one
  dense ``m x m`` factorisation per iteration, single precision while far from
  the solution), with a crossover to the exact support solve
  ``A_SS pi_S = 0, sum pi_S = 1`` once the support has settled.
* ``"lp"``: scipy's HiGHS on ``max v s.t. Mᵀ pi >= v, pi in the simplex``.

Under ``"strict"``/``"weak"`` ties the k = 1 maxmin ``max_pi min_z P[pi ≻ z]`` is
solved by the LP (the matrix is not skew-symmetric).

The maximal lottery need not be unique (e.g. an even number of voters split on a
pair). The optimal policies form a polytope, ``NLHFResult.lotteries``
(:class:`MaximalLotterySet`): its affine hull comes from the supports of a
strictly complementary pair of the LP (every optimal policy lives on the policy
side's support and ties every response the optimal opponents play), its vertices
from enumerating the bases of the remaining inequalities. What NLHF guarantees at
``k`` samples then depends on which maximal lottery is returned;
:func:`nlhf_level_range` gives the range of ``f(pi, k)`` over the whole set.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, List, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

from .._validate import as_choice, as_count, as_tolerance, mirror_ties, tie_code
from ._common import Array, Clock, Kernels, checked_model, cut_lower_bound, linprog, minimax_lp, normalised
from .certify import certify
from .results import MaximalLotterySet, NLHFLevelRange, NLHFResult

METHODS = ("auto", "ipm", "lp")

# Below this size a float64 factorisation is cheap; above it the early iterations
# (where single precision is plenty) use float32.
_MIXED_PRECISION_FROM = 400


def _crossover(A: Array, support: Array) -> Optional[Array]:
    """The exact equilibrium on a guessed support: ``A_SS pi_S = 0``, ``sum pi_S = 1``."""
    idx = np.flatnonzero(support)
    s = idx.size
    if s == 0:
        return None
    B = np.empty((s + 1, s + 1))
    B[:s, :s] = A[np.ix_(idx, idx)]
    B[:s, s] = 1.0
    B[s, :s] = 1.0
    B[s, s] = 0.0
    rhs = np.zeros(s + 1)
    rhs[s] = 1.0
    try:
        x = np.linalg.solve(B, rhs)
    except np.linalg.LinAlgError:
        x = np.linalg.lstsq(B, rhs, rcond=None)[0]
    if not np.isfinite(x).all() or x[:s].min() < -1e-12:
        return None
    pi = np.zeros(A.shape[0])
    pi[idx] = x[:s]
    try:
        return normalised(pi)
    except FloatingPointError:
        return None


def _purify(A: Array, pi: Array, slack: Array, tol: float) -> Array:
    """Drop the entries an interior point predicts off the support (``pi_y < slack_y``)
    when the exploitability stays within ``tol``: a sparse policy, not an interior one."""
    keep = pi > slack
    if keep.all() or not keep.any():
        return pi
    candidate = np.where(keep, pi, 0.0)
    candidate /= candidate.sum()
    return candidate if float((A @ candidate).max()) <= max(tol, float((A @ pi).max())) else pi


def maximal_lottery(pairwise: Array, tol: float = 1e-10, max_iter: int = 200
                    ) -> Tuple[Array, float, int, bool, List[float]]:
    """The maximal lottery of a pairwise matrix with ``M + Mᵀ = 1`` by the
    interior-point method with crossover.

    Returns ``(pi, exploitability, iterations, converged, history)`` where the
    exploitability ``max_y (M pi)_y - 1/2`` is evaluated in float64 on ``pairwise``.
    """
    from scipy.linalg import lu_factor, lu_solve  # type: ignore[import-untyped]

    M = np.asarray(pairwise, dtype=np.float64)
    m = M.shape[0]
    A = M - 0.5
    if m == 1:
        return np.ones(1), 0.0, 0, True, [0.0]
    e = np.ones(m)

    def expl(x: Array) -> float:
        return float((A @ x).max())

    pi = np.full(m, 1.0 / m)
    Api = A @ pi
    best_pi, best_ex = pi, float(Api.max())
    history = [best_ex]
    if best_ex <= tol:
        return best_pi, best_ex, 0, True, history
    v = float((-Api).min()) - 1.0          # s = -A pi - v >= 1 at the start
    mixed = m >= _MIXED_PRECISION_FROM
    previous_support: Optional[Array] = None
    crossovers = 0
    iterations = 0
    for iterations in range(1, max_iter + 1):
        s = -Api - v
        mu = float(pi @ s) / m
        dtype = np.float32 if (mixed and mu > 1e-9) else np.float64
        N = (-A).astype(dtype)
        N[np.diag_indices(m)] = N[np.diag_indices(m)] + (s / pi).astype(dtype)
        lu = lu_factor(N, overwrite_a=True, check_finite=False)
        x_e = lu_solve(lu, e.astype(dtype), check_finite=False).astype(np.float64)

        def newton(rhs: Array) -> Tuple[Array, float]:
            x = lu_solve(lu, rhs.astype(dtype), check_finite=False).astype(np.float64)
            dv = -x.sum() / x_e.sum()
            return x + dv * x_e, dv

        def longest(x: Array, dx: Array) -> float:
            neg = dx < 0
            return min(1.0, 0.9995 * float(np.min(-x[neg] / dx[neg]))) if neg.any() else 1.0

        # predictor (affine scaling), then Mehrotra's corrector
        d_pi, d_v = newton(-s)
        d_s = -(A @ d_pi) - d_v
        alpha = min(longest(pi, d_pi), longest(s, d_s))
        mu_aff = float((pi + alpha * d_pi) @ (s + alpha * d_s)) / m
        sigma = (mu_aff / mu) ** 3
        d_pi, d_v = newton((sigma * mu - pi * s - d_pi * d_s) / pi)
        d_s = -(A @ d_pi) - d_v
        alpha = min(longest(pi, d_pi), longest(s, d_s))
        if dtype == np.float32 and alpha < 0.1:
            mixed = False  # single precision stalls: double from here on
        pi = pi + alpha * d_pi
        v = v + alpha * d_v
        pi = np.maximum(pi, 1e-300)
        pi /= pi.sum()
        Api = A @ pi
        ex = float(Api.max())
        if ex < best_ex:
            best_pi, best_ex = pi, ex
        history.append(best_ex)
        # crossover once the predicted support (pi > slack) has settled
        support = pi > (-Api - v)
        settled = previous_support is not None and np.array_equal(support, previous_support)
        previous_support = support
        if settled and dtype == np.float64 and crossovers < 8 and (m < 200 or mu < 1e-9):
            crossovers += 1
            exact = _crossover(A, support)
            if exact is not None:
                ex_exact = expl(exact)
                if ex_exact < best_ex:
                    best_pi, best_ex = exact, ex_exact
                    history[-1] = best_ex
                if ex_exact <= min(tol, 1e-13):
                    return best_pi, best_ex, iterations, True, history
        if best_ex <= tol and (mu < 1e-14 or best_ex <= 1e-13 or m >= 200):
            if best_pi is pi:
                best_pi = _purify(A, pi, -Api - v, tol)
                best_ex = expl(best_pi)
            return best_pi, best_ex, iterations, True, history
        if mu < 1e-16:
            break
    return best_pi, best_ex, iterations, best_ex <= tol, history


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


# -- the set of maximal lotteries -------------------------------------------------

#: Probability above which a solver's policy counts as playing a response.
_PLAYED = 1e-9
#: Margin by which every unplayed response must lose against the other side's
#: policy for the solver's pair to be read as strictly complementary.
_MARGIN = 1e-9
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
    (unit rows) and whether they are all of them. Every d-subset of constraints is
    solved and kept when feasible; past ``_VERTEX_BUDGET`` subsets, the vertices are
    instead the optima of the linear programs minimising and maximising ``c·t`` for
    every row ``c`` of ``directions`` (a subset, containing every coordinate extreme)."""
    n, d = G.shape
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


def _lottery_set(P: Array, ties: str, symmetric: bool, p: Array, q: Optional[Array]) -> MaximalLotterySet:
    """The set of optimal policies of ``max_pi min_z (Pᵀ pi)_z`` around the optimal
    pair ``(p, q)`` of a solver (``q``: an optimal opponent, or None).

    With ``Y`` the responses some optimal policy plays and ``Z`` those some optimal
    opponent plays, complementary slackness makes the set exactly
    ``{x >= 0 on Y, 0 off Y : (Pᵀx)_z = v on Z, (Pᵀx)_z >= v off Z, sum x = 1}``
    (``v`` is then the value), and a strictly complementary point satisfies every
    inequality strictly: the set's dimension is that of the equations."""
    m = P.shape[0]
    if symmetric:
        q, low, high = p, 0.5, 0.5   # the game is its own dual; its value is 1/2
    else:
        if q is None:
            q = _maxmin_lp(-P.T)[0]
        low, high = float((P.T @ p).min()), float((P @ q).max())
    pair = _supports_of_pair(P, p, q, low, high)
    if pair is None:
        played = _largest_support(P, low)
        opposed = played if symmetric else _largest_support(-P.T, -high)
    else:
        played, opposed = pair
    support = np.flatnonzero(played)
    s = support.size
    # unknowns w = (x on the support, v)
    B = np.zeros((int(opposed.sum()) + 1, s + 1))
    B[:-1, :s] = P[np.ix_(played, opposed)].T
    B[:-1, s] = -1.0
    B[-1, :s] = 1.0
    _, sigma, Vt = np.linalg.svd(B)
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
    return MaximalLotterySet(ties=ties, value=low, unique=dimension == 0, dimension=dimension,
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
    """
    clock = Clock()
    model = checked_model(model)
    tie_code(ties)
    method = as_choice(method, METHODS, "method")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    symmetric = ties in ("uniform", "half")
    if method == "ipm" and not symmetric:
        raise ValueError(f"method: 'ipm' needs a skew-symmetric game ('uniform' or 'half' ties), got ties={ties!r}")
    if method == "auto":
        method = "ipm" if symmetric else "lp"
    P = model.pairwise(ties)
    history: List[float]
    q: Optional[Array] = None
    if method == "ipm":
        pi, _, iterations, _, history = maximal_lottery(P, tol=tol, max_iter=max_iter)
        upper = 0.5
    else:
        pi, q = _maxmin_lp(P)
        iterations, history = 1, []
        upper = 0.5 if symmetric else (float((P @ q).max()) if q is not None else 1.0)
    lotteries = _lottery_set(P, ties, symmetric, pi, q)
    cert = certify(model, pi, 1, ties=ties if symmetric else ties)
    value = float((P.T @ pi).min())
    if symmetric:
        expl = cert.exploitability
        converged = expl is not None and expl <= tol
        history = history or [float(expl or 0.0)]
    else:
        expl = None
        converged = upper - value <= max(tol, 1e-9)
        history = [upper - value]
    return NLHFResult(policy=pi, robust_level=cert.robust_level, exploitability=expl, iterations=iterations,
                      wall_time=clock(), converged=converged, certificate=cert, method=method, k=1, ties=ties,
                      evaluations=1, history=tuple(history), value=value, upper_bound=max(upper, value),
                      unique=lotteries.unique, lotteries=lotteries)


# -- what NLHF guarantees at k samples ---------------------------------------------

#: Cutting planes are added for this many responses of highest utility per point.
_CUT_ROWS = 32


def nlhf_level_range(model: Any, k: int, ties: str = "uniform", lotteries: Optional[MaximalLotterySet] = None,
                     tol: float = 1e-9, max_iter: int = 200) -> NLHFLevelRange:
    """The smallest and largest robust level ``f(pi, k)`` over all maximal lotteries
    ``pi`` under ``ties`` (which is also the convention of the pairwise matrix
    defining them, as in :func:`solve_nlhf`).

    When the maximal lottery is unique both ends are its level. Otherwise:
    ``f(pi, k) = 1 - max_y P[y ≻' pi^{⊗k}]`` is concave in ``pi`` (each utility is
    convex), so its minimum over the polytope is attained at a vertex — the minimum
    over the vertices, exact when they were all enumerated
    (``lotteries.complete``) — and its maximum is a convex program, solved by
    Kelley's cutting planes over the convex hull of the vertices, whose LP dual
    certifies ``max_level_bound``. ``exact`` says both ends are exact (the
    vertices complete and the gap within ``tol``).

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
    kern = Kernels(model, k, mirror_ties(ties))
    V = lotteries.vertices
    values: List[float] = []
    grads: List[Array] = []
    points: List[Array] = []

    def evaluate(p: Array, lam: Array) -> float:
        """``max_y u_y(p)``, adding the cuts of the highest utilities in the
        coordinates ``lam`` of the hull (``p = lamᵀ V``)."""
        u = kern.u(p)
        if V.shape[0] > 1:
            rows = np.argsort(-u, kind="stable")[:_CUT_ROWS]
            _, J = kern.jacobian(p, rows)
            values.extend(u[rows])
            grads.extend(J @ V.T)
            points.extend([lam] * rows.size)
        return float(u.max())

    at_vertices = [evaluate(v, np.eye(V.shape[0])[i]) for i, v in enumerate(V)]
    worst, best = int(np.argmax(at_vertices)), int(np.argmin(at_vertices))
    best_F, best_policy = at_vertices[best], V[best]
    bound = best_F if V.shape[0] == 1 else -math.inf
    iterations = 0
    while best_F - bound > tol and iterations < max_iter:
        cut_values, cut_grads, cut_points = np.array(values), np.array(grads), np.array(points)
        lam, weights = minimax_lp(cut_values, cut_grads, cut_points)
        if lam is None or weights is None:
            break
        bound = max(bound, cut_lower_bound(cut_values, cut_grads, cut_points, weights))
        if best_F - bound <= tol:
            break
        iterations += 1
        p = normalised(lam @ V)
        F = evaluate(p, lam)
        if F < best_F:
            best_F, best_policy = F, p
    max_level = 1.0 - best_F
    # the bound is computed in floating point: never below a level attained
    max_level_bound = max(max_level, min(1.0, 1.0 - bound))
    return NLHFLevelRange(k=k, ties=ties, unique=lotteries.unique, min_level=1.0 - at_vertices[worst],
                          max_level=max_level, max_level_bound=max_level_bound,
                          exact=lotteries.complete and max_level_bound - max_level <= tol,
                          min_policy=V[worst], max_policy=best_policy, iterations=iterations,
                          evaluations=kern.passes)
