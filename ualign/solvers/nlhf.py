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
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from .._validate import as_choice, as_count, as_tolerance, tie_code
from ._common import Array, Clock, checked_model, linprog, normalised
from .certify import certify
from .results import NLHFResult

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


def solve_nlhf(model: Any, ties: str = "uniform", method: str = "auto", tol: float = 1e-10,
               max_iter: int = 200) -> NLHFResult:
    """NLHF: the maximal lottery ``pi`` of the pairwise matrix, ``min_z P[pi ≻ z] >= 1/2``.

    Under ``"uniform"``/``"half"`` ties (the same matrix) it is the symmetric
    equilibrium of the constant-sum k = 1 alignment game, found by an exact
    interior-point method with crossover (``method="ipm"``, the default) or
    scipy's HiGHS (``"lp"``); the result is the k = 1 MPNE. Under ``"strict"`` or
    ``"weak"`` ties it is ``argmax_pi min_z P[pi ≻ z]`` for that convention (an LP).
    ``tol`` bounds the exploitability of the returned policy (uniform/half).
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
    if method == "ipm":
        pi, _, iterations, _, history = maximal_lottery(P, tol=tol, max_iter=max_iter)
        upper = 0.5
    else:
        pi, q = _maxmin_lp(P)
        iterations, history = 1, []
        upper = 0.5 if symmetric else (float((P @ q).max()) if q is not None else 1.0)
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
                      evaluations=1, history=tuple(history), value=value, upper_bound=max(upper, value))
