"""The symmetric Nash equilibrium (MPNE) of the (k+1)-player alignment game.

A symmetric profile ``pi`` is an equilibrium iff ``u_y(pi) <= sum_z pi(z) u_z(pi)``
for every ``y`` (so equality on the support), ``u_y(pi) = P[y ≻ pi^{⊗k}]``. Under
``"uniform"`` and ``"strict"`` ties the game is *monotone* (a stable game): the
symmetric part of the Jacobian of ``u`` is negative semidefinite on the tangent
space of the simplex. (Proof sketch for one strict ranking under strict ties:
with ``t_j`` the cumulative tangent mass below position ``j`` and ``a_j = k L_j^{k-1}``
nondecreasing, ``vᵀJv = Σ_j a_j t_j (t_{j+1} - t_j) = -½ Σ_j (a_j - a_{j-1}) t_j² -
½ Σ_j a_j v_j² <= 0``; mixtures over voters preserve it. Under ``"uniform"`` ties it
is verified numerically (tests/test_solvers.py) but not proved here; under
``"weak"`` and ``"half"`` ties it fails.) Hence the set of equilibria is
convex and the extragradient method converges from any start. Under
``"uniform"`` ties ``sum_y pi(y) u_y = 1/(k+1)`` for every ``pi``, so the MPNEs are
exactly the minimisers of the convex function ``max_y u_y`` (value ``1/(k+1)``).

Methods:

* ``"auto"`` (default): extragradient with an adaptive step to find the support,
  then an active-set Newton method on ``u_S(pi) = λ, sum pi_S = 1`` with the
  exact Jacobian rows (one VJP each) when the support is small enough, polished to
  ~1e-13; at ``k = 1`` under ``"uniform"`` ties, the maximal lottery (exact).
* ``"pga"``: the paper's projected gradient ascent (Prop. D.2), ``pi <- Π(pi + η u(pi))``.
* ``"extragradient"``: Korpelevich's extragradient (last iterate), adaptive step.
* ``"hedge"``: no-regret self-play with multiplicative weights (Prop. D.3); the
  result is the averaged policy ``σ_T`` (a :class:`~ualign.ProductMixture`) whose
  level is at least ``k/(k+1) - Reg_T/T``; ``exploitability`` reports ``Reg_T/T``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .._validate import (as_choice, as_count, as_optional_distribution, as_positive_real, as_tolerance,
                         mirror_ties, tie_code)
from ..operands import ProductMixture
from ._common import Array, Clock, Kernels, checked_model, exploitability_of, normalised, project_simplex
from .certify import certify
from .nlhf import maximal_lottery
from .results import MPNEResult

METHODS = ("auto", "pga", "extragradient", "hedge")
GAMES = ("uniform", "strict")

_DEFAULT_MAX_ITER = {"auto": 2000, "pga": 5000, "extragradient": 5000, "hedge": 1000}


class _Best:
    """The iterate with the smallest exploitability seen so far."""

    def __init__(self, x: Array, u: Array) -> None:
        self.x, self.u, self.ex = x, u, exploitability_of(x, u)

    def offer(self, x: Array, u: Array) -> float:
        ex = exploitability_of(x, u)
        if ex < self.ex:
            self.x, self.u, self.ex = x, u, ex
        return ex


def _newton_affordable(kern: Kernels, support: int) -> bool:
    """An active-set Newton iteration costs one VJP per support member (hard cap)."""
    return support <= 64 or support * kern.model.n_voters * kern.m <= 3e8


def _newton_pays(kern: Kernels, best: "_Best", history: List[float], target: float) -> bool:
    """Newton (about 1.5 Jacobians of |S| VJPs, plus a few evaluations) when it costs
    under 10 ms or less than the first-order method's projected cost to ``target``,
    from the contraction rate it showed over its last 10 iterations."""
    support = int((best.x > 0).sum())
    if not _newton_affordable(kern, support) or best.ex <= target:
        return False
    newton = 1.5 * support * kern.seconds_per_vjp() + 10 * kern.seconds_per_u()
    if newton <= 0.01:
        return True                                  # cheap enough to polish regardless
    tail = [h for h in history[-11:] if h > 0]
    if len(tail) < 2 or tail[-1] >= tail[0]:
        return True                                  # first-order progress has stalled
    rate = (tail[-1] / tail[0]) ** (1.0 / (len(tail) - 1))
    steps = math.log(target / best.ex) / math.log(rate) if rate < 1 else math.inf
    return newton < 1.2 * steps * kern.seconds_per_u()


def extragradient(kern: Kernels, x: Array, tol: float, max_iter: int, step: Optional[float],
                  history: List[float], best: Optional[_Best] = None,
                  stop: Optional[float] = None) -> Tuple[_Best, int]:
    """Extragradient on the monotone variational inequality ``<u(pi), pi' - pi> <= 0``.

    Adaptive step (unless ``step`` is given): halve until ``η|u(x̂) - u(x)| <= 0.9|x̂ - x|``
    (the classical condition ``η <= 0.9/L`` locally), grow by 1.3 when it holds easily.
    Stops at ``tol`` (or ``stop``, for a warm start) on the best iterate."""
    u = kern.u(x)
    if best is None:
        best = _Best(x, u)
    else:
        best.offer(x, u)
    target = tol if stop is None else max(stop, tol)
    eta = 1.0 if step is None else step
    iterations = 0
    while iterations < max_iter and best.ex > target:
        iterations += 1
        for _ in range(60):
            xh = project_simplex(x + eta * u)
            uh = kern.u(xh)
            dx = float(np.linalg.norm(xh - x))
            du = float(np.linalg.norm(uh - u))
            if step is not None or dx == 0.0 or eta * du <= 0.9 * dx:
                break
            eta *= 0.5
        best.offer(xh, uh)
        if dx == 0.0:  # x is a fixed point of the projected step: an equilibrium
            history.append(best.ex)
            break
        x = project_simplex(x + eta * uh)
        u = kern.u(x)
        best.offer(x, u)
        history.append(best.ex)
        if step is None and eta * du <= 0.5 * dx:
            eta *= 1.3
    return best, iterations


def _pga(kern: Kernels, x: Array, tol: float, max_iter: int, step: float,
         history: List[float]) -> Tuple[_Best, int]:
    """The paper's projected gradient ascent (Prop. D.2): ``pi <- Π(pi + η u(pi))``."""
    u = kern.u(x)
    best = _Best(x, u)
    iterations = 0
    while iterations < max_iter and best.ex > tol:
        iterations += 1
        x = project_simplex(x + step * u)
        u = kern.u(x)
        best.offer(x, u)
        history.append(best.ex)
    return best, iterations


def adaptive_pga(kern: Kernels, x: Array, tol: float, max_iter: int, history: List[float],
                 stop: Optional[float] = None) -> Tuple[_Best, int]:
    """Projected gradient ascent with a self-tuning step: the fast first phase of
    ``"auto"``. Every 5 steps the step grows (x1.5) after a tenfold improvement and
    halves, restarting from the best iterate, after less than a 30% one; it gives
    up after 6 such failures (the caller continues with extragradient, which
    converges on every monotone game)."""
    u = kern.u(x)
    best = _Best(x, u)
    target = tol if stop is None else max(stop, tol)
    eta, window, since, failures, iterations = 1.0, best.ex, 0, 0, 0
    while iterations < max_iter and best.ex > target and failures < 6:
        iterations += 1
        x = project_simplex(x + eta * u)
        u = kern.u(x)
        best.offer(x, u)
        history.append(best.ex)
        since += 1
        if since == 5:
            ratio = best.ex / window if window > 0 else 0.0
            if ratio < 0.1:
                eta *= 1.5
            elif ratio > 0.7:
                eta *= 0.5
                failures += 1
                x, u = best.x, best.u
            window, since = best.ex, 0
    return best, iterations


def newton_polish(kern: Kernels, best: _Best, history: List[float], max_iter: int = 40,
                  target: float = 1e-14) -> int:
    """Active-set (chord) Newton on the equilibrium conditions from ``best.x``.

    On the support ``S``: ``u_S(pi) = λ``, ``sum pi_S = 1`` with the Newton matrix
    ``[[J_SS, -1], [1ᵀ, 0]]``. The Jacobian rows ``J_y`` (one VJP each) are kept and
    reused while the residual contracts fast (a chord method), refreshed when it
    does not; a ratio test keeps ``pi >= 0`` and drops a blocking member; a
    converged support gains its most violated outsider (``u_z > λ``). Iterates stay
    on the simplex. Updates ``best``; returns the iterations used."""
    x = best.x.copy()
    x[x < 1e-15] = 0.0
    x = normalised(x)
    support = x > 0
    rows: Dict[int, Array] = {}
    added: Dict[int, int] = {}
    u = kern.u(x)
    best.offer(x, u)
    iterations = 0
    stale = False
    previous = math.inf
    while iterations < max_iter:
        iterations += 1
        idx = np.flatnonzero(support)
        s = idx.size
        lam = float(np.dot(x, u))
        residual = u[idx] - lam
        norm0 = float(np.abs(residual).max())
        if norm0 <= target:
            outside = np.flatnonzero(~support)
            z = int(outside[np.argmax(u[outside])]) if outside.size else -1
            if z < 0 or u[z] - lam <= target:
                break
            added[z] = added.get(z, 0) + 1
            if added[z] > 3:
                break
            support[z] = True
            previous = math.inf
            continue
        if stale or norm0 > 0.25 * previous:   # slow contraction: fresh Jacobian rows
            rows.clear()
        stale = False
        previous = norm0
        missing = [int(y) for y in idx if int(y) not in rows]
        if missing and not _newton_affordable(kern, len(missing)):
            break
        if missing:
            _, J = kern.jacobian(x, missing)
            rows.update(zip(missing, J))
        K = np.zeros((s + 1, s + 1))
        K[:s, :s] = np.array([rows[int(y)][idx] for y in idx])
        K[:s, s] = -1.0
        K[s, :s] = 1.0
        rhs = np.concatenate([-residual, [0.0]])
        try:
            d = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:
            d = np.linalg.lstsq(K, rhs, rcond=None)[0]
        if not np.isfinite(d).all():
            break
        dx = d[:s]
        alpha, blocking = 1.0, -1
        neg = dx < 0
        if neg.any():
            ratios = -x[idx][neg] / dx[neg]
            j = int(np.argmin(ratios))
            if ratios[j] < 1.0:
                alpha, blocking = float(ratios[j]), int(idx[neg][j])
        accepted = False
        for attempt in range(30):
            trial = x.copy()
            trial[idx] += alpha * dx
            if attempt == 0 and blocking >= 0:
                trial[blocking] = 0.0  # the blocking member leaves the support
            trial = normalised(trial)
            ut = kern.u(trial)
            best.offer(trial, ut)
            tsup = trial > 0
            lam_t = float(np.dot(trial, ut))
            norm_t = float(np.abs(ut[tsup] - lam_t).max())
            if norm_t <= (1.0 - 1e-4 * alpha) * norm0 or (attempt == 0 and blocking >= 0):
                accepted = True
                break
            if rows and attempt == 0 and len(rows) < s + 1:
                break  # a stale Jacobian failed: refresh rather than backtrack
            alpha *= 0.5
        history.append(best.ex)
        if not accepted:
            if not stale and missing == []:
                stale = True
                continue
            break
        x, u = trial, ut
        support = x > 0
    return iterations


def _hedge(kern: Kernels, x: Array, tol: float, max_iter: int, step: Optional[float],
           history: List[float]) -> Tuple[Array, Array, float, Array, int]:
    """Multiplicative weights self-play; returns (iterates, mean u, average regret,
    last iterate, T)."""
    m = kern.m
    iterates = []
    u_sum = np.zeros(m)
    value_sum = 0.0
    logits = np.log(np.maximum(x, 1e-300))
    regret = math.inf
    t = 0
    while t < max_iter:
        t += 1
        u = kern.u(x)
        iterates.append(x)
        u_sum += u
        value_sum += float(np.dot(x, u))
        regret = float(u_sum.max() - value_sum) / t
        history.append(regret)
        if regret <= tol:
            break
        eta = step if step is not None else math.sqrt(8.0 * math.log(max(m, 2)) / t)
        logits = logits + eta * u
        logits -= logits.max()
        x = np.exp(logits)
        x /= x.sum()
    return np.array(iterates), u_sum / t, regret, x, t


def solve_mpne(model: Any, k: int, ties: str = "uniform", method: str = "auto", tol: float = 1e-8,
               max_iter: Optional[int] = None, step: Optional[float] = None,
               init: Any = None) -> MPNEResult:
    """A symmetric Nash equilibrium ``pi`` of the (k+1)-player alignment game
    (Definition 4.2): stops when ``exploitability <= tol``.

    ``ties``: the game's convention, ``"uniform"`` (default; the k = 1 game is then
    NLHF) or ``"strict"`` (Definition 4.2 read literally). The result's
    ``robust_level`` is under the mirrored convention (``"uniform"``, resp. the
    paper's ``"weak"``), certified ``>= k/(k+1) - exploitability`` (Thm 4.3).
    ``method``: ``"auto"``, ``"pga"`` (Prop. D.2), ``"extragradient"`` or
    ``"hedge"`` (Prop. D.3; returns the averaged :class:`~ualign.ProductMixture`).
    ``step``: fixed step size (default: adaptive; 1.0 for ``"pga"``).
    ``init``: starting policy of the iterative methods (default uniform; the exact
    k = 1 uniform path of ``"auto"`` needs none).
    """
    clock = Clock()
    model = checked_model(model)
    k = as_count(k, "k")
    tie_code(ties)
    if ties not in GAMES:
        raise ValueError(f"ties: the alignment game is solved under 'uniform' or 'strict' ties (Definition 4.2; "
                         f"the strict game certifies the paper's 'weak' level), got {ties!r}; for the best "
                         f"policy under another convention use solve_optimal")
    method = as_choice(method, METHODS, "method")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter") if max_iter is not None else _DEFAULT_MAX_ITER[method]
    step = as_positive_real(step, "step") if step is not None else None
    m = model.n_responses
    x0 = as_optional_distribution(init, "init", m)
    x = np.full(m, 1.0 / m) if x0 is None else x0.copy()
    kern = Kernels(model, k, ties)
    history: List[float] = []
    level_ties = mirror_ties(ties)
    used = method
    extra_passes = 0

    if method == "hedge":
        iterates, _, regret, last, T = _hedge(kern, x, tol, max_iter, step, history)
        policy: Any = ProductMixture(iterates, np.full(T, 1.0 / T), k)
        cert = certify(model, policy, None, ties=level_ties, tol=tol)
        return MPNEResult(policy=policy, robust_level=cert.robust_level, exploitability=regret, iterations=T,
                          wall_time=clock(), converged=regret <= tol, certificate=cert, method="hedge", k=k,
                          ties=ties, evaluations=kern.passes + T, history=tuple(history), level_ties=level_ties,
                          last_iterate=last)

    iterations = 0
    if method == "pga":
        best, iterations = _pga(kern, x, tol, max_iter, 1.0 if step is None else step, history)
    elif method == "extragradient":
        best, iterations = extragradient(kern, x, tol, max_iter, step, history)
    elif k == 1 and ties == "uniform":
        # the k = 1 uniform game is constant-sum: its symmetric equilibria are the maximal lotteries
        pi, _, iterations, _, lottery_history = maximal_lottery(model.pairwise("uniform"), tol=min(tol, 1e-12))
        history.extend(lottery_history)
        extra_passes = 1
        best = _Best(pi, kern.u(pi))
        used = "auto (maximal lottery)"
    else:
        # fast start (self-tuning projected gradient); Newton on the support when it is
        # cheaper than continuing; extragradient (convergent on every monotone game) if stalled
        polish = min(tol, 1e-12)
        best, iterations = adaptive_pga(kern, x, tol, min(max_iter, 500), history, stop=1e-4)
        if _newton_pays(kern, best, history, polish):
            iterations += newton_polish(kern, best, history)
        if best.ex > tol and iterations < max_iter:
            best, more = adaptive_pga(kern, best.x, tol, min(max_iter - iterations, 500), history)
            iterations += more
        if best.ex > tol and iterations < max_iter:
            best, more = extragradient(kern, best.x, tol, max_iter - iterations, step, history, best=best)
            iterations += more
        if _newton_pays(kern, best, history, polish):
            iterations += newton_polish(kern, best, history)
    pi = normalised(best.x)
    cert = certify(model, pi, k, ties=level_ties, tol=tol)
    expl = float(cert.exploitability) if cert.exploitability is not None else math.inf
    return MPNEResult(policy=pi, robust_level=cert.robust_level, exploitability=expl, iterations=iterations,
                      wall_time=clock(), converged=expl <= tol, certificate=cert, method=used, k=k, ties=ties,
                      evaluations=kern.passes + extra_passes + 1, history=tuple(history), level_ties=level_ties,
                      last_iterate=pi)
