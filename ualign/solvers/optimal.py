"""The best single-output policy for k samples: ``argmax_pi f(pi, k)``, i.e.
``argmin_pi F(pi)``, ``F(pi) = max_y u'_y(pi)`` with ``u'`` the utilities under the
mirrored convention (strict <-> weak). Each ``u'_y`` is convex (an average of k-th
powers of nonnegative linear forms, or integrals of them), so this is a convex
minimax problem and every answer comes with a certified lower bound on ``F``:
for any distribution ``q`` over responses and any point ``x``,

    F(pi) >= q·u'(pi) >= q·u'(x) + g·(pi - x),   g = ∇(q·u')(x)   (one VJP),

and the minimum over the simplex of the right-hand side is its smallest
coefficient. More generally any convex combination of linearisations (Kelley's
cutting planes) bounds ``F`` from below; a linear program picks the best one.

* ``"uniform"`` ties: ``sum_y pi(y) u_y = 1/(k+1)`` for every ``pi``, so the optimum
  is exactly ``k/(k+1)`` and the MPNE attains it; the gap is its exploitability.
* ``k = 1``: a matrix game, solved exactly by linear programming.
* otherwise: start from an equilibrium (for the paper's ``"weak"`` level, the
  strict game's MPNE, which is often already optimal), certify it through the dual
  system ``J_ASᵀ q = μ 1`` (active rows A, support S; GMRES on VJPs when the
  Jacobian is too large to form), and if the gap is not closed, minimise by SQP
  (scipy's SLSQP on the epigraph form with exact Jacobians, stopped as soon as
  the dual system at an iterate certifies the gap) with Kelley's LP as the
  fallback certificate; for pools too large for Jacobians, extragradient on the
  saddle ``min_pi max_q q·u'(pi)``, certified the same way.

With ``groups`` (one label per voter) the objective is the worst group's level,
``max_pi min_g min_y P_g[pi^{⊗k} ≻' y]``, i.e. ``min_pi max_{g,y} u'_{g,y}(pi)``:
still a convex minimax, now over ``(group, response)`` rows. The same machinery
runs on the stacked utilities (:class:`_StackedKernels`), starting from the pooled
population's equilibrium; every linearisation of every row is a valid cut, so the
certificate is unchanged. Uniform ties give no shortcut there: each group's
optimum is ``k/(k+1)`` but at different policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from .. import _core_loader
from .._validate import as_count, as_positive_real, as_tolerance, mirror_ties, tie_code
from ..batch import PromptBatch
from ..game import OPPONENT_TIME_LIMIT, opponent_search
from ..model import PreferenceModel
from ..ranking import RankingPopulation
from ._common import (
    Array,
    Clock,
    Kernels,
    checked_model,
    cut_lower_bound,
    dual_lower_bound,
    linprog,
    minimax_lp,
    normalised,
    on_one_blas_thread,
    project_simplex,
)
from .certify import certify
from .mpne import solve_mpne, solve_mpne_batch
from .nlhf import _maxmin_lp
from .results import MPNEResult, OpponentOptimalResult, OptimalResult


def _jacobian_affordable(row_seconds: float, rows: int, repeats: int = 1, seconds: float = 0.05) -> bool:
    """``repeats`` Jacobians of ``rows`` rows each cost at most ``seconds`` (at the
    models' estimated ``row_seconds`` a row), or are tiny."""
    return rows * repeats <= 40 or rows * repeats * row_seconds <= seconds


class _StackedKernels:
    """The utilities of several models over the same responses stacked into one
    vector: row ``g * m + y`` is ``u_y`` of model ``g``. Offers what the solver uses
    of :class:`Kernels`; with one model it makes exactly that model's calls."""

    def __init__(self, models: Sequence[PreferenceModel], k: int, ties: str) -> None:
        self.parts = [Kernels(model, k, ties) for model in models]
        self.m = self.parts[0].m
        self.n_rows = len(self.parts) * self.m

    def u(self, pi: Array) -> Array:
        return np.concatenate([part.u(pi) for part in self.parts])

    def u_vjp(self, pi: Array, q: Array) -> Tuple[Array, Array]:
        u = np.empty(self.n_rows)
        g = np.zeros(self.m)
        for j, part in enumerate(self.parts):
            block = slice(j * self.m, (j + 1) * self.m)
            u[block], g_part = part.u_vjp(pi, q[block])
            g += g_part
        return u, g

    def jacobian(self, pi: Array, rows: Any) -> Tuple[Array, Array]:
        """``(u, J[rows, :])``: one VJP per row, of the row's model."""
        rows = np.asarray(list(rows), dtype=np.int64)
        J = np.empty((rows.size, self.m))
        u = np.empty(self.n_rows)
        for j, part in enumerate(self.parts):
            mine = np.flatnonzero(rows // self.m == j)
            u[j * self.m:(j + 1) * self.m], J[mine] = part.jacobian(pi, rows[mine] - j * self.m)
        return u, J

    def jacobian_row_seconds(self) -> float:
        return float(np.mean([part.model._jacobian_row_seconds() for part in self.parts]))

    @property
    def passes(self) -> int:
        return sum(part.passes for part in self.parts)


class _Cuts:
    """Linearisations ``u_y(x) + J_y·(pi - x)`` collected so far (all valid lower bounds)."""

    def __init__(self, m: int, limit: int = 4000) -> None:
        self.values: List[float] = []
        self.grads: List[Array] = []
        self.points: List[Array] = []
        self.limit = limit
        self.m = m

    def add(self, x: Array, u: Array, J: Array, rows: Any) -> None:
        for j, y in enumerate(rows):
            self.values.append(float(u[y]))
            self.grads.append(J[j])
            self.points.append(x)
        if len(self.values) > self.limit:
            drop = len(self.values) - self.limit
            del self.values[:drop], self.grads[:drop], self.points[:drop]

    def lower_bound(self, enough: float = math.inf) -> Tuple[float, Optional[Array]]:
        """The certified bound of Kelley's LP (and its primal point). The LP over the
        ``2 m`` most recent cuts (the last points of an SQP run, near the optimum)
        comes first: its bound is as valid (a subset of valid cuts), and when it
        reaches ``enough`` the LP over all of them (thousands) is not needed."""
        if not self.values:
            return -math.inf, None
        V, G, P = np.array(self.values), np.array(self.grads), np.array(self.points)
        if V.size > 2 * self.m:
            recent = slice(V.size - 2 * self.m, V.size)
            bound, pi = self._lp_bound(V[recent], G[recent], P[recent])
            if bound >= enough:
                return bound, pi
        return self._lp_bound(V, G, P)

    @staticmethod
    def _lp_bound(V: Array, G: Array, P: Array) -> Tuple[float, Optional[Array]]:
        pi, weights = minimax_lp(V, G, P)
        if weights is None:
            return -math.inf, pi
        return cut_lower_bound(V, G, P, weights), pi


def _gmres_dual(kern: _StackedKernels, x: Array, active: Any, support: Any, tol: float) -> Optional[Array]:
    """Solve ``J_ASᵀ q_A = μ 1_S, sum q_A = 1`` with matrix-free GMRES (one VJP per
    product) when ``|A| = |S|``; None when it is not square or does not converge."""
    from scipy.sparse.linalg import LinearOperator, gmres  # type: ignore[import-untyped]

    A, S = np.flatnonzero(active), np.flatnonzero(support)
    if A.size != S.size or A.size == 0:
        return None
    s = A.size
    q = np.zeros(kern.n_rows)

    def matvec(v: Array) -> Array:
        q[:] = 0.0
        q[A] = v[:s]
        _, g = kern.u_vjp(x, q)
        return np.concatenate([g[S] - v[s], [v[:s].sum()]])

    op = LinearOperator((s + 1, s + 1), matvec=matvec, dtype=np.float64)
    rhs = np.zeros(s + 1)
    rhs[s] = 1.0
    try:
        sol, _ = gmres(op, rhs, rtol=1e-13, atol=0.0, restart=min(s + 1, 60), maxiter=2)
    except TypeError:  # scipy < 1.12 names it tol
        sol, _ = gmres(op, rhs, tol=1e-13, atol=0.0, restart=min(s + 1, 60), maxiter=2)
    if not np.isfinite(sol).all():
        return None
    out = np.zeros(kern.n_rows)
    out[A] = sol[:s]
    if out[A].min() < 0 and out[A].min() < -1e-8 * np.abs(out).max():
        return None
    return normalised(out)


def _dual_bound(x: Array, u: Array, J: Array, support: NDArray[np.bool_]) -> float:
    """The certified bound of the linearisations at ``x`` of the rows of ``J`` (values
    ``u``), weighted by the least-squares solution ``q`` of the dual system
    ``J_Sᵀ q = μ 1, Σ q = 1`` on the ``support`` columns: at an optimum whose active
    rows are those of ``J`` and whose support is ``support``, ``q`` holds the KKT
    multipliers and the bound meets ``max u``. Square or not; rounding negatives
    are clipped (any distribution gives a valid bound). -inf when ``q`` vanishes."""
    a, s = J.shape[0], int(support.sum())
    K = np.zeros((s + 1, a + 1))
    K[:s, :a] = J[:, support].T
    K[:s, a] = -1.0
    K[s, :a] = 1.0
    rhs = np.zeros(s + 1)
    rhs[s] = 1.0
    q = np.asarray(np.linalg.lstsq(K, rhs, rcond=None)[0][:a], dtype=np.float64)
    if not np.isfinite(q).all() or not np.maximum(q, 0.0).sum() > 0:
        return -math.inf
    return cut_lower_bound(u, J, np.broadcast_to(x, J.shape), normalised(q))


def _active_rows(u: Array, x: Array) -> NDArray[np.bool_]:
    """The rows of ``u`` (one block of ``x.size`` per model) within ten
    exploitabilities of the top (with groups: the widest margin of any group)."""
    F = float(u.max())
    spread = max(1e-10, 10.0 * (F - float((u.reshape(-1, x.size) @ x).min())))
    return u >= F - spread


def _equilibrium_bounds(models: Sequence[PreferenceModel], starts: Sequence[MPNEResult], k: int, ties: str,
                        tol: float) -> Tuple[List[Optional[Tuple[float, float]]], PromptBatch]:
    """Per prompt, the bound of its equilibrium's dual system (:func:`_dual_bound` on
    the active rows and the support) and the equilibrium's ``max u'`` where that
    certifies the gap, else None; for all prompts at once (one utility and one
    Jacobian call of the batch). A prompt whose active rows are too costly for a
    Jacobian is left to :func:`_optimise_from` (GMRES)."""
    batch = PromptBatch(models)
    code = tie_code(mirror_ties(ties))
    X = batch.padded([normalised(np.asarray(mp.policy)) for mp in starts], batch.all)
    U = batch.utilities(X, k, code, batch.all)
    selected = np.zeros_like(batch.mask)
    for p, model in enumerate(models):
        m = model.n_responses
        active = _active_rows(U[p, :m], X[p, :m])
        if _jacobian_affordable(model._jacobian_row_seconds(), int(active.sum())):
            selected[p, :m] = active
    J = batch.jacobian(X, k, code, batch.all, selected)
    bounds: List[Optional[Tuple[float, float]]] = []
    for p, model in enumerate(models):
        m, count = model.n_responses, int(selected[p].sum())
        x, u = X[p, :m], U[p, :m]
        bound = _dual_bound(x, u[selected[p, :m]], J[p, :count, :m], x > 0) if count else -math.inf
        top = float(u.max())
        bounds.append((bound, top) if top - bound <= tol else None)
    return bounds, batch


def _certify_point(kern: _StackedKernels, x: Array, u: Array, cuts: _Cuts, tol: float) -> float:
    """A certified lower bound on ``min F`` from linearisations at ``x`` (active rows).
    When the rows are affordable: from the dual system solved directly where that
    closes the gap, else from Kelley's LP; otherwise by GMRES on the dual system."""
    F = float(u.max())
    active = _active_rows(u, x)
    support = x > 0
    rows = np.flatnonzero(active)
    square = rows.size == int(support.sum())
    # a square system can fall back on GMRES below; any other needs the Jacobian
    if _jacobian_affordable(kern.jacobian_row_seconds(), rows.size, seconds=0.05 if square else 10.0):
        _, J = kern.jacobian(x, rows)
        cuts.add(x, u, J, rows)
        bound = _dual_bound(x, u[rows], J, support)
        if F - bound <= tol:
            return bound
        return max(bound, cuts.lower_bound()[0])
    q = _gmres_dual(kern, x, active, support, tol)
    if q is None:
        return -math.inf
    bound, _, _ = dual_lower_bound(kern, x, q)  # type: ignore[arg-type]
    return bound


class _Certified(Exception):
    """Raised inside SLSQP once the gap is certified: SLSQP would run on to ``ftol``
    1e-16, improving the point by less than the tolerance asked for."""


#: At an SQP iterate, the rows within this of the maximum count as active and the
#: entries above it as the support when the dual system is solved for a bound:
#: SLSQP leaves the would-be zeros of the policy at rounding-level positives. On
#: 64 × 100 pools this certified every SLSQP run within its first 3–5 iterations
#: (of 18–46); ten exploitabilities and exact zeros, as at an equilibrium,
#: certified half of them.
_SQP_DUAL_MARGIN = 1e-7


def _slsqp(kern: _StackedKernels, x0: Array, cuts: _Cuts, max_iter: int, tol: float
           ) -> Tuple[Array, float, int, float]:
    """SQP on ``min t s.t. u_y(pi) <= t, pi in the simplex`` with exact Jacobians;
    every Jacobian adds its linearisations to ``cuts`` and its dual bound
    (:func:`_dual_bound`) to the lower bound, and SQP stops once the best point is
    within ``tol`` of it. Returns the best point, its value, the iterations and the
    lower bound."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    m, rows = kern.m, kern.n_rows
    values: Dict[bytes, Array] = {}
    jacobians: Dict[bytes, Array] = {}
    best: List[Any] = [x0, float(kern.u(x0).max())]
    lower = [-math.inf]
    iterations = [0]

    def value(z: Array) -> Array:
        key = z[:m].tobytes()
        if key not in values:
            x = normalised(z[:m])
            u = kern.u(x)
            if u.max() < best[1]:
                best[0], best[1] = x, float(u.max())
            values.clear()
            values[key] = u
        return values[key]

    def jacobian(z: Array) -> Array:
        key = z[:m].tobytes()
        if key not in jacobians:
            iterations[0] += 1
            x = normalised(z[:m])
            u, J = kern.jacobian(x, range(rows))
            cuts.add(x, u, J, range(rows))
            active = u >= u.max() - _SQP_DUAL_MARGIN
            lower[0] = max(lower[0], _dual_bound(x, u[active], J[active], x > _SQP_DUAL_MARGIN))
            if best[1] - lower[0] <= tol:
                raise _Certified
            jacobians.clear()
            jacobians[key] = J
        return jacobians[key]

    e_t = np.zeros(m + 1)
    e_t[m] = 1.0
    sum_row = np.concatenate([np.ones(m), [0.0]])[None, :]
    constraints = [
        {"type": "ineq", "fun": lambda z: z[m] - value(z),
         "jac": lambda z: np.hstack([-jacobian(z), np.ones((rows, 1))])},
        {"type": "eq", "fun": lambda z: np.array([z[:m].sum() - 1.0]), "jac": lambda z: sum_row},
    ]
    z0 = np.concatenate([x0, [best[1]]])
    try:
        minimize(lambda z: z[m], z0, jac=lambda z: e_t, constraints=constraints,
                 bounds=[(0.0, 1.0)] * m + [(None, None)], method="SLSQP",
                 options={"ftol": 1e-16, "maxiter": max_iter})
    except _Certified:
        pass
    return best[0], best[1], iterations[0], lower[0]


def _saddle_extragradient(kern: _StackedKernels, x: Array, tol: float, max_iter: int, history: List[float],
                          best: List[Any]) -> int:
    """Extragradient on ``min_pi max_q q·u(pi)`` (two VJPs per iteration), the
    lower bound ``dual_lower_bound`` tracked at every extrapolated point."""
    q = normalised(np.exp((kern.u(x) - kern.u(x).max()) / 1e-3))
    eta = 0.5
    iterations = 0
    while iterations < max_iter and best[1] - best[2] > tol:
        iterations += 1
        u, g = kern.u_vjp(x, q)
        xh, qh = project_simplex(x - eta * g), project_simplex(q + eta * u)
        uh, gh = kern.u_vjp(xh, qh)
        if uh.max() < best[1]:
            best[0], best[1] = xh, float(uh.max())
        best[2] = max(best[2], float(np.dot(qh, uh) + gh.min() - np.dot(gh, xh)))
        x, q = project_simplex(x - eta * gh), project_simplex(q + eta * uh)
        history.append(best[1] - best[2])
    return iterations


_UNIFORM_METHOD = "mpne (uniform ties: optimum = k/(k+1))"


def _from_uniform_mpne(mp: MPNEResult, wall_time: float, tol: float) -> OptimalResult:
    """Under uniform ties the optimum is k/(k+1), attained by the MPNE; its
    exploitability is the certified gap."""
    cert = mp.certificate
    upper = max(cert.target, cert.robust_level)
    gap = upper - cert.robust_level
    return OptimalResult(policy=mp.policy, robust_level=cert.robust_level, exploitability=cert.exploitability,
                         iterations=mp.iterations, wall_time=wall_time, converged=gap <= tol, certificate=cert,
                         method=_UNIFORM_METHOD, k=mp.k, ties="uniform", evaluations=mp.evaluations,
                         history=mp.history or (gap,), upper_bound=upper, gap=gap)


@on_one_blas_thread
def solve_optimal_batch(models: Sequence[Any], k: int, ties: str = "uniform", tol: float = 1e-8,
                        max_iter: int = 200, init: Any = None) -> List[OptimalResult]:
    """:func:`solve_optimal` for many prompts (one model each), one result per prompt.

    The equilibria every convention starts from are solved for all prompts together
    (:func:`solve_mpne_batch`, warm-started from ``init``: one policy or None per
    prompt); under ``"uniform"`` ties they are the optimum. Under the other
    conventions their dual certificates are computed together too
    (:func:`_equilibrium_bounds`); each prompt whose equilibrium they do not
    certify then runs the convex program in turn."""
    clock = Clock()
    if not len(models):
        raise ValueError("models: needs at least one prompt")
    checked = [checked_model(model) for model in models]
    k = as_count(k, "k")
    tie_code(ties)
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    if ties == "uniform":
        return [_from_uniform_mpne(mp, clock(), tol) for mp in solve_mpne_batch(checked, k, "uniform", tol=tol,
                                                                                init=init)]
    if k == 1:
        return [_matrix_game(model, ties, tol, clock) for model in checked]
    # an equilibrium to start from (and, for the weak level, often the optimum)
    start_game = "strict" if ties == "weak" else "uniform"
    starts = solve_mpne_batch(checked, k, start_game, tol=min(tol, 1e-10), init=init)
    bounds, batch = _equilibrium_bounds(checked, starts, k, ties, tol)
    results = []
    for p, (model, mp, certified) in enumerate(zip(checked, starts, bounds)):
        def finish(pi: Array, upper: float, method: str, iterations: int, passes: int, history: List[float],
                   model: PreferenceModel = model) -> OptimalResult:
            return _finish(model, pi, k, ties, tol, upper, method, iterations, passes, history, clock)

        if certified is None:
            results.append(_optimise_from([model], mp, k, ties, tol, max_iter, finish))
        else:
            bound, top = certified
            results.append(finish(normalised(np.asarray(mp.policy)), 1.0 - bound, f"{mp.ties} MPNE + dual certificate",
                                  mp.iterations, mp.evaluations + int(batch.passes[p]), [top - bound]))
    return results


def solve_optimal(model: Any, k: int, ties: str = "uniform", tol: float = 1e-8,
                  max_iter: int = 200, groups: Any = None, opponent_k: int = 1,
                  time_limit: float = OPPONENT_TIME_LIMIT) -> OptimalResult:
    """The single-output policy with the highest robust level ``f(pi, k)`` under
    ``ties`` (the paper's is ``"weak"``), with a certified optimality gap.

    Under ``"uniform"`` ties the optimum is exactly ``k/(k+1)`` on every population
    and the MPNE attains it. Under ``"weak"``, ``"half"`` and ``"strict"`` it depends
    on the instance and can beat the MPNE. ``result.upper_bound`` bounds every
    single-output policy's level; ``result.gap = upper_bound - robust_level``;
    ``converged`` means ``gap <= tol``. The batch of one of :func:`solve_optimal_batch`.

    ``opponent_k = ℓ >= 2`` (ranking populations): the best policy against
    opponents answering with ``ℓ`` responses, ``max_pi f_ℓ(pi, k)`` with
    ``f_ℓ(pi, k) = min_{|Y| = ℓ} P[pi^{⊗k} ≻ Y]``, by a level method with exact
    cutting planes (:func:`_solve_against_opponents`); returns an
    :class:`~ualign.solvers.results.OpponentOptimalResult`. ``time_limit`` bounds
    each search for the worst opponent (:func:`ualign.opponent_search`).

    ``groups`` (one label per voter; per type for a Plackett–Luce mixture): maximise
    the worst group's level ``min_g min_y P_g[pi^{⊗k} ≻ y]`` instead, ``P_g`` the
    preference of group ``g`` alone. The result is a :class:`GroupOptimalResult`:
    ``robust_level`` is the worst group's level, ``upper_bound`` bounds it for every
    single-output policy, and ``group_levels`` lists every group's level.
    Only one of ``groups`` and ``opponent_k > 1`` at a time.
    """
    several = as_count(opponent_k, "opponent_k") > 1
    if groups is not None and several:
        raise ValueError("opponent_k: the group-robust policy is against single-response opponents; "
                         "give groups or opponent_k > 1, not both")
    if several:
        return _solve_against_opponents(model, k, ties, tol, max_iter, opponent_k, time_limit)
    if groups is None:
        return solve_optimal_batch([model], k, ties, tol, max_iter)[0]
    return _solve_group_optimal(model, k, ties, tol, max_iter, groups)


@dataclass(frozen=True, repr=False)
class GroupOptimalResult(OptimalResult):
    """:func:`solve_optimal` with ``groups``: the policy maximising the worst group's
    robust level. ``robust_level`` and ``group_levels`` are those of
    :func:`ualign.group_levels` (one pass over the voters, the audit's numbers);
    ``certificate`` re-checks the worst group as a population of its own (equal
    to within a few units in the last place)."""

    #: The distinct group labels (sorted) and each one's robust level.
    groups: NDArray[Any]
    group_levels: NDArray[np.float64]
    #: The label of the group with the lowest level (the first on ties).
    worst_group: Any

    def _extra(self) -> str:
        return f"{super()._extra()}, worst_group={self.worst_group!r}"


@on_one_blas_thread
def _solve_group_optimal(model: Any, k: int, ties: str, tol: float, max_iter: int, groups: Any) -> OptimalResult:
    from ..groups import group_levels, group_models

    clock = Clock()
    model = checked_model(model)
    k = as_count(k, "k")
    tie_code(ties)
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    labels, models = group_models(model, groups)
    start_game = "strict" if ties == "weak" else "uniform"
    start = solve_mpne_batch([model], k, start_game, tol=min(tol, 1e-10))[0]

    def finish(pi: Array, upper: float, method: str, iterations: int, passes: int,
               history: List[float]) -> OptimalResult:
        levels = group_levels(model, pi, k, groups, ties).levels[:, 0]
        worst = int(np.argmin(levels))
        cert = certify(models[worst], pi, k, ties=ties, tol=tol)
        upper = max(upper, float(levels[worst]))
        gap = upper - float(levels[worst])
        return GroupOptimalResult(policy=pi, robust_level=float(levels[worst]),
                                  exploitability=cert.exploitability, iterations=iterations,
                                  wall_time=clock(), converged=gap <= tol, certificate=cert, method=method,
                                  k=k, ties=ties, evaluations=passes + len(models), history=tuple(history) or (gap,),
                                  upper_bound=upper, gap=gap, groups=labels, group_levels=levels,
                                  worst_group=labels[worst])

    return _optimise_from(models, start, k, ties, tol, max_iter, finish)


@on_one_blas_thread
def _solve_against_opponents(model: Any, k: int, ties: str, tol: float, max_iter: int, opponent_k: int,
                             time_limit: float) -> OpponentOptimalResult:
    """``max_pi f_ℓ(pi, k)``, i.e. ``min_pi F(pi)`` with ``F(pi) = max_{|Y| = ℓ} G_Y(pi)``
    and ``G_Y(pi) = P[Y ≻' pi^{⊗k}]`` (mirrored convention).

    **Convexity.** Voter by voter, with ``W`` and ``A`` the policy mass strictly worse
    than ``Y``'s best member and tied with it, ``G_Y`` is ``W^k`` (strict), ``(W + A)^k``
    (weak), their mean (half) or ``∫_0^1 c t^{c-1} (W + A t)^k dt`` (uniform, ``c``
    members of ``Y`` at that level): powers of nonnegative linear forms, averaged
    with nonnegative weights, hence convex in ``pi`` (extended off the simplex as
    polynomials). So ``F`` is convex and ``f_ℓ = 1 - F`` concave, and any worst ``Y``
    at a point ``x`` gives the cut ``F(pi) >= G_Y(x) + ∇G_Y(x)·(pi - x)`` (one pass,
    ``opponent_gradient``).

    **Level method.** The cuts' LP (Kelley) bounds ``min F`` from below
    (:func:`cut_lower_bound`: ``upper_bound = 1 - that``); the exact search at each
    iterate bounds it from above (the best iterate's level). The next iterate is the
    point closest (in l1) to the best one where every cut stays below the level
    ``lower + (best - lower) / 2``, another LP; stops when the gap is at most
    ``tol`` or after ``max_iter`` iterations. Starts from the equilibrium of the
    single-response game (Thm D.6: it already guarantees ``(k + 1 - ℓ)/(k + 1)``).
    """
    clock = Clock()
    model = checked_model(model)
    if not isinstance(model, RankingPopulation):
        raise TypeError(f"model: opponent_k >= 2 is solved on ranking populations, got {type(model).__name__}")
    k = as_count(k, "k")
    game = mirror_ties(ties)
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    time_limit = as_positive_real(time_limit, "time_limit")
    m = model.n_responses
    core = _core_loader.core()
    code = tie_code(game)
    start_game = "strict" if ties == "weak" else "uniform"
    mp = solve_mpne(model, k, start_game, tol=min(tol, 1e-10))
    values: List[float] = []
    grads: List[Array] = []
    points: List[Array] = []
    history: List[float] = []
    best: List[Any] = [None, -math.inf, None]  # policy, level, search

    def visit(x: Array) -> None:
        search = opponent_search(model, x, k, opponent_k, ties, time_limit)
        if search.level > best[1]:
            best[0], best[1], best[2] = x, search.level, search
        value, grad = core.opponent_gradient(model._store, np.asarray(search.opponent, dtype=np.int64), x, k, code)
        values.append(float(value))
        grads.append(np.asarray(grad, dtype=np.float64))
        points.append(x)

    for x0 in (normalised(np.asarray(mp.policy)), np.full(m, 1.0 / m)):
        visit(x0)
    lower = -math.inf  # certified lower bound on min F
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        V, G, P = np.array(values), np.array(grads), np.array(points)
        lp_point, weights = minimax_lp(V, G, P)
        if weights is not None:
            lower = max(lower, cut_lower_bound(V, G, P, weights))
        history.append((1.0 - lower) - best[1])
        if (1.0 - lower) - best[1] <= tol or lp_point is None:
            break
        target = lower + 0.5 * ((1.0 - best[1]) - lower)
        x = _level_projection(V, G, P, best[0], target)
        visit(normalised(x) if x is not None else lp_point)
    pi, level, search = best
    cert = certify(model, pi, k, ties=ties, tol=tol)
    # certified: no policy beats upper, and the policy's level is at least lower_bound
    upper = max(1.0 - lower, search.lower_bound)
    gap = upper - search.lower_bound
    return OpponentOptimalResult(
        policy=pi, robust_level=level, exploitability=None, iterations=iterations, wall_time=clock(),
        converged=gap <= tol and search.exact, certificate=cert,
        method=f"level method (exact cutting planes, {search.method} opponents)", k=k, ties=ties,
        evaluations=mp.evaluations + 2 * len(values), history=tuple(history), upper_bound=upper, gap=gap,
        opponent_k=opponent_k, opponent=search.opponent, lower_bound=search.lower_bound, exact=search.exact)


def _level_projection(values: Array, grads: Array, points: Array, center: Array, target: float) -> Optional[Array]:
    """``argmin ||pi - center||_1`` over the simplex subject to every cut ``<= target``
    (None when HiGHS finds no such point)."""
    n_cuts, m = grads.shape
    offsets = values - np.einsum("cz,cz->c", grads, points)
    eye = np.eye(m)
    A_ub = np.vstack([np.hstack([eye, -eye]), np.hstack([-eye, -eye]), np.hstack([grads, np.zeros((n_cuts, m))])])
    b_ub = np.concatenate([center, -center, target - offsets])
    A_eq = np.concatenate([np.ones(m), np.zeros(m)])[None, :]
    res = linprog(np.concatenate([np.zeros(m), np.ones(m)]), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=np.ones(1),
                  bounds=[(0.0, None)] * (2 * m))
    if res.status != 0:
        return None
    out: Array = res.x[:m]
    return out


def _finish(model: PreferenceModel, pi: Array, k: int, ties: str, tol: float, upper: float, method: str,
            iterations: int, passes: int, history: List[float], clock: Clock) -> OptimalResult:
    """The result for ``pi``, re-checked by :func:`certify`; ``upper`` bounds every level."""
    cert = certify(model, pi, k, ties=ties, tol=tol)
    upper = max(upper, cert.robust_level)
    gap = upper - cert.robust_level
    return OptimalResult(policy=pi, robust_level=cert.robust_level, exploitability=cert.exploitability,
                         iterations=iterations, wall_time=clock(), converged=gap <= tol, certificate=cert,
                         method=method, k=k, ties=ties, evaluations=passes + 1,
                         history=tuple(history) or (gap,), upper_bound=upper, gap=gap)


def _matrix_game(model: PreferenceModel, ties: str, tol: float, clock: Clock) -> OptimalResult:
    """``k = 1``: a matrix game, solved exactly by linear programming."""
    P = model.pairwise(ties)
    pi, q = _maxmin_lp(P)
    upper = float((P @ q).max()) if q is not None else 1.0
    return _finish(model, pi, 1, ties, tol, upper, "lp (k = 1 matrix game)", 1, 1, [], clock)


def _optimise_from(models: Sequence[PreferenceModel], mp: MPNEResult, k: int, ties: str, tol: float, max_iter: int,
                   finish: Callable[..., OptimalResult]) -> OptimalResult:
    """Certify the equilibrium ``mp`` through the dual system and, if the gap is not
    closed, minimise ``max_y u'_y`` (the maximum over the rows of all ``models``) by
    SQP with Kelley's certificate (or by saddle extragradient on pools too large for
    Jacobians). ``finish(pi, upper, method, iterations, passes, history)`` makes the
    result of the best point ``pi``, ``upper`` bounding every policy's level."""
    kern = _StackedKernels(models, k, mirror_ties(ties))
    m, rows = kern.m, kern.n_rows
    history: List[float] = []
    passes = mp.evaluations
    x = normalised(np.asarray(mp.policy))
    u = kern.u(x)
    cuts = _Cuts(m)
    lower = _certify_point(kern, x, u, cuts, tol)
    best: List[Any] = [x, float(u.max()), lower]
    history.append(best[1] - best[2])
    method = f"{mp.ties} MPNE + dual certificate"
    iterations = mp.iterations
    if best[1] - best[2] > tol:
        if _jacobian_affordable(kern.jacobian_row_seconds(), rows, repeats=20, seconds=20.0):
            method = "SQP (SLSQP) + dual and Kelley certificates"
            for _ in range(6):
                xb, Fb, nit, dual = _slsqp(kern, best[0], cuts, max_iter, tol)
                iterations += nit
                if Fb < best[1]:
                    best[0], best[1] = xb, Fb
                best[2] = max(best[2], dual)
                if best[1] - best[2] <= tol:
                    history.append(best[1] - best[2])
                    break
                bound, lp_point = cuts.lower_bound(enough=best[1] - tol)
                best[2] = max(best[2], bound)
                history.append(best[1] - best[2])
                if best[1] - best[2] <= tol or lp_point is None:
                    break
                # Kelley's step: evaluate at the LP's point (tightens the model where it is loose)
                ul, J = kern.jacobian(lp_point, range(rows))
                cuts.add(lp_point, ul, J, range(rows))
                if ul.max() < best[1]:
                    best[0], best[1] = lp_point, float(ul.max())
        else:
            method = "saddle extragradient + dual certificate"
            iterations += _saddle_extragradient(kern, best[0], tol, max_iter, history, best)
    passes += kern.passes
    return finish(normalised(best[0]), 1.0 - best[2], method, iterations, passes, history)
