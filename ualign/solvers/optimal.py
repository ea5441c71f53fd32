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
  (scipy's SLSQP on the epigraph form with exact Jacobians) with Kelley's LP as
  the certificate; for pools too large for Jacobians, extragradient on the
  saddle ``min_pi max_q q·u'(pi)``, certified the same way.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._validate import as_count, as_tolerance, mirror_ties, tie_code
from ..model import PreferenceModel
from ._common import (
    Array,
    Clock,
    Kernels,
    checked_model,
    cut_lower_bound,
    dual_lower_bound,
    minimax_lp,
    normalised,
    project_simplex,
)
from .certify import certify
from .mpne import solve_mpne_batch
from .nlhf import _maxmin_lp
from .results import MPNEResult, OptimalResult


def _jacobian_affordable(kern: Kernels, rows: int, repeats: int = 1, seconds: float = 0.05) -> bool:
    """``repeats`` Jacobians of ``rows`` VJP rows each cost at most ``seconds``
    (measured cost per VJP), or are tiny."""
    return rows * repeats <= 40 or rows * repeats * kern.seconds_per_vjp() <= seconds


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

    def lower_bound(self) -> Tuple[float, Optional[Array]]:
        """The certified bound of Kelley's LP (and its primal point)."""
        if not self.values:
            return -math.inf, None
        V, G, P = np.array(self.values), np.array(self.grads), np.array(self.points)
        pi, weights = minimax_lp(V, G, P)
        if weights is None:
            return -math.inf, pi
        return cut_lower_bound(V, G, P, weights), pi


def _gmres_dual(kern: Kernels, x: Array, active: Any, support: Any, tol: float) -> Optional[Array]:
    """Solve ``J_ASᵀ q_A = μ 1_S, sum q_A = 1`` with matrix-free GMRES (one VJP per
    product) when ``|A| = |S|``; None when it is not square or does not converge."""
    from scipy.sparse.linalg import LinearOperator, gmres  # type: ignore[import-untyped]

    A, S = np.flatnonzero(active), np.flatnonzero(support)
    if A.size != S.size or A.size == 0:
        return None
    s = A.size
    q = np.zeros(kern.m)

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
    out = np.zeros(kern.m)
    out[A] = sol[:s]
    if out[A].min() < 0 and out[A].min() < -1e-8 * np.abs(out).max():
        return None
    return normalised(out)


def _certify_point(kern: Kernels, x: Array, u: Array, cuts: _Cuts, tol: float) -> float:
    """A certified lower bound on ``min F`` from linearisations at ``x`` (active rows),
    by an explicit LP when the rows are affordable, else by GMRES on the dual system."""
    F = float(u.max())
    spread = max(1e-10, 10.0 * (F - float(np.dot(x, u))))
    active = u >= F - spread
    support = x > 0
    rows = np.flatnonzero(active)
    square = rows.size == int(support.sum())
    if _jacobian_affordable(kern, rows.size) or (not square and _jacobian_affordable(kern, rows.size, seconds=10.0)):
        _, J = kern.jacobian(x, rows)
        cuts.add(x, u, J, rows)
        bound, _ = cuts.lower_bound()
        return bound
    q = _gmres_dual(kern, x, active, support, tol)
    if q is None:
        return -math.inf
    bound, _, _ = dual_lower_bound(kern, x, q)
    return bound


def _slsqp(kern: Kernels, x0: Array, cuts: _Cuts, max_iter: int) -> Tuple[Array, float, int]:
    """SQP on ``min t s.t. u_y(pi) <= t, pi in the simplex`` with exact Jacobians;
    every evaluation adds its linearisations to ``cuts``. Returns the best point."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    m = kern.m
    values: Dict[bytes, Array] = {}
    jacobians: Dict[bytes, Array] = {}
    best: List[Any] = [x0, float(kern.u(x0).max())]

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
            x = normalised(z[:m])
            u, J = kern.jacobian(x, range(m))
            cuts.add(x, u, J, range(m))
            jacobians.clear()
            jacobians[key] = J
        return jacobians[key]

    e_t = np.zeros(m + 1)
    e_t[m] = 1.0
    sum_row = np.concatenate([np.ones(m), [0.0]])[None, :]
    constraints = [
        {"type": "ineq", "fun": lambda z: z[m] - value(z),
         "jac": lambda z: np.hstack([-jacobian(z), np.ones((m, 1))])},
        {"type": "eq", "fun": lambda z: np.array([z[:m].sum() - 1.0]), "jac": lambda z: sum_row},
    ]
    z0 = np.concatenate([x0, [best[1]]])
    res = minimize(lambda z: z[m], z0, jac=lambda z: e_t, constraints=constraints,
                   bounds=[(0.0, 1.0)] * m + [(None, None)], method="SLSQP",
                   options={"ftol": 1e-16, "maxiter": max_iter})
    return best[0], best[1], int(res.nit)


def _saddle_extragradient(kern: Kernels, x: Array, tol: float, max_iter: int, history: List[float],
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


def solve_optimal_batch(models: Sequence[Any], k: int, ties: str = "uniform", tol: float = 1e-8,
                        max_iter: int = 200, init: Any = None) -> List[OptimalResult]:
    """:func:`solve_optimal` for many prompts (one model each), one result per prompt.

    The equilibria every convention starts from are solved for all prompts together
    (:func:`solve_mpne_batch`, warm-started from ``init``: one policy or None per
    prompt); under ``"uniform"`` ties they are the optimum. Under the other
    conventions each prompt then runs its certificate (and, where the equilibrium
    is not optimal, the convex program) in turn."""
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
    return [_optimise_from(model, mp, k, ties, tol, max_iter, clock) for model, mp in zip(checked, starts)]


def solve_optimal(model: Any, k: int, ties: str = "uniform", tol: float = 1e-8,
                  max_iter: int = 200) -> OptimalResult:
    """The single-output policy with the highest robust level ``f(pi, k)`` under
    ``ties`` (the paper's is ``"weak"``), with a certified optimality gap.

    Under ``"uniform"`` ties the optimum is exactly ``k/(k+1)`` on every population
    and the MPNE attains it. Under ``"weak"``, ``"half"`` and ``"strict"`` it depends
    on the instance and can beat the MPNE. ``result.upper_bound`` bounds every
    single-output policy's level; ``result.gap = upper_bound - robust_level``;
    ``converged`` means ``gap <= tol``. The batch of one of :func:`solve_optimal_batch`.
    """
    return solve_optimal_batch([model], k, ties, tol, max_iter)[0]


def _finish(model: PreferenceModel, pi: Array, k: int, ties: str, tol: float, upper: float, method: str,
            iterations: int, passes: int, history: List[float], clock: Clock) -> OptimalResult:
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


def _optimise_from(model: PreferenceModel, mp: MPNEResult, k: int, ties: str, tol: float, max_iter: int,
                   clock: Clock) -> OptimalResult:
    """Certify the equilibrium ``mp`` through the dual system and, if the gap is not
    closed, minimise ``max_y u'_y`` by SQP with Kelley's certificate (or by saddle
    extragradient on pools too large for Jacobians)."""
    m = model.n_responses
    kern = Kernels(model, k, mirror_ties(ties))
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
        if _jacobian_affordable(kern, m, repeats=20, seconds=20.0):
            method = "SQP (SLSQP) + Kelley certificate"
            for _ in range(6):
                xb, Fb, nit = _slsqp(kern, best[0], cuts, max_iter)
                iterations += nit
                if Fb < best[1]:
                    best[0], best[1] = xb, Fb
                bound, lp_point = cuts.lower_bound()
                best[2] = max(best[2], bound)
                history.append(best[1] - best[2])
                if best[1] - best[2] <= tol or lp_point is None:
                    break
                # Kelley's step: evaluate at the LP's point (tightens the model where it is loose)
                ul, J = kern.jacobian(lp_point, range(m))
                cuts.add(lp_point, ul, J, range(m))
                if ul.max() < best[1]:
                    best[0], best[1] = lp_point, float(ul.max())
        else:
            method = "saddle extragradient + dual certificate"
            iterations += _saddle_extragradient(kern, best[0], tol, max_iter, history, best)
    passes += kern.passes
    return _finish(model, normalised(best[0]), k, ties, tol, 1.0 - best[2], method, iterations, passes, history, clock)
