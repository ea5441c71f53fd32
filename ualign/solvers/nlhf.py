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

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from .._validate import as_choice, as_count, as_tolerance, tie_code
from ..batch import PromptBatch
from ._common import Array, Clock, checked_model, linprog, normalised
from .certify import certificates
from .results import NLHFResult

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
    try:
        x = np.linalg.solve(B, rhs)[:, :, 0]
    except np.linalg.LinAlgError:  # some system is singular: least squares for each
        x = np.stack([np.linalg.lstsq(B[j], rhs[j, :, 0], rcond=None)[0] for j in range(count)])
    members = np.where(valid, x[:, :depth], 0.0)
    ok = np.isfinite(x).all(axis=1) & (members.min(axis=1, initial=0.0) >= -1e-12) & (sizes > 0)
    pi = np.zeros((count, width))
    np.put_along_axis(pi, order, np.where(np.isfinite(members), members, 0.0), axis=1)
    pi = np.maximum(pi, 0.0)
    total = pi.sum(axis=1, keepdims=True)
    ok &= total[:, 0] > 0
    return np.divide(pi, total, out=np.zeros_like(pi), where=total > 0), ok


def maximal_lotteries(pairwise: Sequence[Array], tol: float = 1e-10, max_iter: int = 200
                      ) -> List[Tuple[Array, float, int, bool, List[float]]]:
    """The maximal lottery of each pairwise matrix (``M + Mᵀ = 1``; sizes may differ)
    by the interior-point method with crossover, all matrices advancing together
    (one batched factorisation per iteration).

    Returns, per matrix, ``(pi, exploitability, iterations, converged, history)``
    where the exploitability ``max_y (M pi)_y - 1/2`` is evaluated in float64 on the matrix.
    """
    sizes = np.array([np.shape(M)[0] for M in pairwise], dtype=np.int64)
    count, width = sizes.size, int(sizes.max())
    valid = np.arange(width)[None, :] < sizes[:, None]
    A = np.zeros((count, width, width))
    for j, M in enumerate(pairwise):
        A[j, :sizes[j], :sizes[j]] = np.asarray(M, dtype=np.float64) - 0.5
    e = valid.astype(np.float64)
    mixed = width >= _MIXED_PRECISION_FROM

    def product(x: Array) -> Array:
        return np.einsum("pyz,pz->py", A, x)  # type: ignore[no-any-return]

    pi = e / sizes[:, None]
    Api = product(pi)
    best_pi, best_ex = pi.copy(), _masked_max(Api, valid)
    histories: List[List[float]] = [[float(x)] for x in best_ex]
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

        def longest(x: Array, dx: Array) -> Array:
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
        cross = settled & (dtype == np.float64) & (crossovers[a] < 8) & ((m < 200) | (mu < 1e-9))
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
        for j in np.flatnonzero(finished):   # an interior point: keep it sparse where that costs nothing
            p = a[j]
            if best_ex[p] == ex[j] and np.array_equal(best_pi[p], pa[j]):
                slack = -Api[p] - v[p]
                keep = valid[p] & (pa[j] > slack)
                if keep.any() and not keep[valid[p]].all():
                    candidate = np.where(keep, pa[j], 0.0)
                    candidate /= candidate.sum()
                    value = float(np.where(valid[p], A[p] @ candidate, -np.inf).max())
                    if value <= max(tol, float(best_ex[p])):
                        best_pi[p], best_ex[p] = candidate, value
        for j, p in enumerate(a):
            histories[p].append(float(best_ex[p]))
        active[a[done | finished | (mu < 1e-16)]] = False
    return [(best_pi[j, :sizes[j]].copy(), float(best_ex[j]), int(iterations[j]), bool(best_ex[j] <= tol),
             histories[j]) for j in range(count)]


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


def solve_nlhf_batch(models: Sequence[Any], ties: str = "uniform", method: str = "auto", tol: float = 1e-10,
                     max_iter: int = 200) -> List[NLHFResult]:
    """:func:`solve_nlhf` for many prompts: the interior-point method advances all
    prompts' games together (``"ipm"``); ``"lp"`` solves them one by one. One result
    per prompt, in order, each with its own certificate."""
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
    matrices = [model.pairwise(ties) for model in batch.models]
    solved: List[Tuple[Array, int, List[float], float]] = []
    if method == "ipm":
        for pi, _, iterations, _, history in maximal_lotteries(matrices, tol=tol, max_iter=max_iter):
            solved.append((pi, iterations, history, 0.5))
    else:
        for P in matrices:
            pi, q = _maxmin_lp(P)
            upper = 0.5 if symmetric else (float((P @ q).max()) if q is not None else 1.0)
            solved.append((pi, 1, [], upper))
    certs = certificates(batch, batch.padded([pi for pi, _, _, _ in solved], batch.all), 1, ties, tol)
    results = []
    for (pi, iterations, history, upper), P, cert in zip(solved, matrices, certs):
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
                                  upper_bound=max(upper, value)))
    return results


def solve_nlhf(model: Any, ties: str = "uniform", method: str = "auto", tol: float = 1e-10,
               max_iter: int = 200) -> NLHFResult:
    """NLHF: the maximal lottery ``pi`` of the pairwise matrix, ``min_z P[pi ≻ z] >= 1/2``.

    Under ``"uniform"``/``"half"`` ties (the same matrix) it is the symmetric
    equilibrium of the constant-sum k = 1 alignment game, found by an exact
    interior-point method with crossover (``method="ipm"``, the default) or
    scipy's HiGHS (``"lp"``); the result is the k = 1 MPNE. Under ``"strict"`` or
    ``"weak"`` ties it is ``argmax_pi min_z P[pi ≻ z]`` for that convention (an LP).
    ``tol`` bounds the exploitability of the returned policy (uniform/half).
    The batch of one of :func:`solve_nlhf_batch`.
    """
    return solve_nlhf_batch([model], ties, method, tol, max_iter)[0]
