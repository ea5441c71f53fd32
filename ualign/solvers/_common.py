"""Machinery shared by the solvers: unvalidated calls to a model's exact kernels,
the Euclidean projection onto the simplex, Jacobians from vector–Jacobian
products, certified lower bounds, HiGHS linear programs, and BLAS on one thread.

Everything here works through :class:`~ualign.model.PreferenceModel` only, so
every solver serves any model (rankings, Plackett–Luce mixtures, ...).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Optional, Tuple, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from .._validate import tie_code
from ..game import _check_model
from ..model import PreferenceModel
from ..operands import _products

Array = NDArray[np.float64]
F = TypeVar("F", bound=Callable[..., Any])

_ONE = np.ones(1)

#: Options for scipy's HiGHS: tolerances far below the default 1e-7, because the
#: solvers certify their answers to ~1e-12 (every figure reported is recomputed
#: with the exact kernels anyway; the LP only proposes).
HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


@functools.cache
def _blas_threads() -> Any:
    # scipy's BLAS is a library of its own: loaded first, so that the controller finds it
    import scipy.optimize  # type: ignore[import-untyped]  # noqa: F401
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


def on_one_blas_thread(function: F) -> F:
    """``function`` with BLAS (numpy's and scipy's) on one thread. Every solver runs
    so (a single-prompt function through its batch function): LAPACK's solves and
    factorisations, BLAS products and scipy's SLSQP round differently with BLAS's
    thread count (the maximal lottery of a 400-response population moved by 4.7e-15
    between 1 and 2 threads), and a solver's answer must not depend on it. The
    compiled kernels keep their OpenMP threads."""
    @functools.wraps(function)
    def on_one_thread(*args: Any, **kwargs: Any) -> Any:
        with _blas_threads().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return cast(F, on_one_thread)


class Clock:
    """Wall time since construction."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


class Kernels:
    """Exact kernels of one model for fixed ``k`` and tie convention, without
    re-validation (the solver validated its arguments once). Counts the
    passes over the population it makes."""

    def __init__(self, model: PreferenceModel, k: int, ties: str) -> None:
        self.model = model
        self.k = k
        self.ties = ties
        self.code = tie_code(ties)
        self.m = model.n_responses
        self.evaluations = 0   # utility evaluations (one O(n m) pass each)
        self.vjps = 0          # vector-Jacobian products (one O(n m) pass each)

    def u(self, pi: Array) -> Array:
        """``u[y] = P[y ≻ pi^{⊗k}]`` for every response."""
        self.evaluations += 1
        return self.model._beats(_products(pi[None, :], _ONE, self.k), self.code)

    def u_vjp(self, pi: Array, q: Array) -> Tuple[Array, Array]:
        """``(u, ∇_pi Σ_y q_y u_y)`` in one pass."""
        self.vjps += 1
        u, g = self.model._utilities_vjp(pi, np.ascontiguousarray(q, dtype=np.float64), self.k, self.code)
        return np.asarray(u, dtype=np.float64), np.asarray(g, dtype=np.float64)

    def jacobian(self, pi: Array, rows: Any) -> Tuple[Array, Array]:
        """``(u, J[rows, :])`` with ``J[y, z] = ∂u_y/∂pi_z``: the model's VJPs of the unit
        rows (one pass for all of them where the model shares it), counted as one VJP
        each."""
        rows = np.asarray(list(rows), dtype=np.intp)
        if not rows.size:
            return self.u(pi), np.empty((0, self.m))
        u, J = self.model._jacobian_rows(pi, rows, self.k, self.code)
        self.vjps += int(rows.size)
        return np.asarray(u, dtype=np.float64), np.asarray(J, dtype=np.float64)

    @property
    def passes(self) -> int:
        return self.evaluations + self.vjps


def checked_model(model: Any) -> PreferenceModel:
    return _check_model(model)


def project_simplex(v: Array) -> Array:
    """Euclidean projection onto the probability simplex (sort-based, O(m log m)).

    The result is nonnegative and sums to 1 up to rounding."""
    m = v.shape[0]
    s = np.sort(v)[::-1]
    css = np.cumsum(s) - 1.0
    idx = np.arange(1, m + 1)
    rho = int(np.nonzero(s - css / idx > 0)[0][-1])
    theta = css[rho] / (rho + 1)
    x: Array = np.maximum(v - theta, 0.0)
    return x / x.sum()  # type: ignore[no-any-return]


def normalised(x: Array) -> Array:
    """Clip rounding negatives and renormalise (for vectors already ~ on the simplex)."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    total = float(x.sum())
    if not total > 0:
        raise FloatingPointError("a solver produced an all-zero policy")
    out: Array = x / total
    return out


def exploitability_of(pi: Array, u: Array) -> float:
    return float(u.max() - np.dot(pi, u))


def simplex_linear_lower_bound(value: float, grad: Array, x: Array) -> float:
    """``min over the simplex`` of the linear function ``value + grad·(pi - x)``."""
    return float(value + grad.min() - np.dot(grad, x))


def dual_lower_bound(kern: Kernels, x: Array, q: Array) -> Tuple[float, Array, Array]:
    """A certified lower bound on ``min_pi max_y u_y(pi)`` from any ``q`` in the simplex.

    ``max_y u_y(pi) >= q·u(pi) >= q·u(x) + g·(pi - x)`` with ``g = ∇(q·u)(x)``
    (each ``u_y`` is convex), so the minimum over the simplex of the right-hand
    side bounds the optimum from below. One VJP. Returns (bound, u(x), g)."""
    q = normalised(q)
    u, g = kern.u_vjp(x, q)
    return simplex_linear_lower_bound(float(np.dot(q, u)), g, x), u, g


def linprog(c: Array, A_ub: Optional[Array] = None, b_ub: Optional[Array] = None,
            A_eq: Optional[Array] = None, b_eq: Optional[Array] = None, bounds: Any = (0, None)) -> Any:
    """scipy's HiGHS with tight tolerances. On nearly degenerate programs (many
    almost parallel cuts) HiGHS can end with an unknown status under them; it is
    then run again with its default tolerances: every figure the solvers report is
    recomputed with the exact kernels, the LP only proposes."""
    from scipy.optimize import linprog as _linprog

    result = _linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs",
                      options=HIGHS_OPTIONS)
    if result.status == 4:  # numerical difficulties
        result = _linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    return result


def minimax_lp(values: Array, grads: Array, points: Array) -> Tuple[Optional[Array], Optional[Array]]:
    """Kelley's LP over cutting planes: ``min_{pi in simplex, t} t`` subject to
    ``values[c] + grads[c]·(pi - points[c]) <= t`` for every cut ``c``.

    Returns (pi, cut weights) — the LP's primal point and its dual (a distribution
    over the cuts), or (None, None) if HiGHS fails. The caller turns the dual into a
    certified bound (:func:`cut_lower_bound`); the LP's own objective is not trusted."""
    n_cuts, m = grads.shape
    offsets = values - np.einsum("cz,cz->c", grads, points)
    c = np.zeros(m + 1)
    c[-1] = 1.0
    A_ub = np.hstack([grads, -np.ones((n_cuts, 1))])
    b_ub = -offsets
    A_eq = np.zeros((1, m + 1))
    A_eq[0, :m] = 1.0
    bounds = [(0.0, None)] * m + [(None, None)]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=np.ones(1), bounds=bounds)
    if res.status != 0:
        return None, None
    pi = normalised(res.x[:m])
    weights = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    if not weights.sum() > 0:
        return pi, None
    return pi, normalised(weights)


def cut_lower_bound(values: Array, grads: Array, points: Array, weights: Array) -> float:
    """Certified lower bound from any convex combination of valid cuts:
    ``F(pi) >= Σ_c w_c (values_c + grads_c·(pi - points_c))`` for all pi, minimised
    over the simplex (a linear function: its smallest coefficient)."""
    g = weights @ grads
    const = float(np.dot(weights, values - np.einsum("cz,cz->c", grads, points)))
    return const + float(g.min())
