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

* ``"auto"`` (default): projected gradient ascent with a self-tuning step to find
  the support, then an active-set Newton method on ``u_S(pi) = λ, sum pi_S = 1``
  with the exact Jacobian rows (one batched pass) when the support is small enough,
  polished to ~1e-13; extragradient for what is left.
* ``"pga"``: the paper's projected gradient ascent (Prop. D.2), ``pi <- Π(pi + η u(pi))``.
* ``"extragradient"``: Korpelevich's extragradient (last iterate), adaptive step.
* ``"hedge"``: no-regret self-play with multiplicative weights (Prop. D.3); the
  result is the averaged policy ``σ_T`` (a :class:`~ualign.ProductMixture`) whose
  level is at least ``k/(k+1) - Reg_T/T``; ``exploitability`` reports ``Reg_T/T``.

Every method runs on a batch of prompts (:func:`solve_mpne_batch`): each iteration
advances all unconverged prompts together with one kernel call; a single prompt
is a batch of one.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from .._validate import (
    as_choice,
    as_count,
    as_distribution,
    as_distribution_batch,
    as_positive_real,
    as_tolerance,
    mirror_ties,
    tie_code,
)
from ..batch import PromptBatch, Rows, exploitability_rows, masked_max, project_rows
from ..operands import ProductMixture
from ._common import Array, Clock, checked_model, on_one_blas_thread
from .certify import certificates, certify
from .nlhf import maximal_lotteries
from .results import MPNEResult

METHODS = ("auto", "pga", "extragradient", "hedge")
GAMES = ("uniform", "strict")

_DEFAULT_MAX_ITER = {"auto": 2000, "pga": 5000, "extragradient": 5000, "hedge": 1000}

#: The self-tuning projected gradient's first step per game (tie code). Measured on
#: random populations (10,000 x 1,000 at k = 4; 500 prompts of 64 x 100, k = 1..8):
#: the uniform game needs about half the iterations with 2 as with 1 (21 -> 10 at
#: 10,000 x 1,000), the strict game about twice as many (6 -> 24), so each starts at its own.
_FIRST_STEP = {tie_code("uniform"): 2.0, tie_code("strict"): 1.0}

#: The early hand-off of :func:`adaptive_pga` to Newton: within this exploitability,
#: when more than this many iterations are left at the recent contraction rate.
#: Measured on 40 mixtures of 10 Plackett–Luce types x 64 responses, k = 1..8: 9.4
#: prompts/s without it, 18.6 with it (12-16 at 10 or 20 iterations). Populations of
#: rankings (64 x 100) mostly contract fast enough to keep going: the same utility
#: passes within 3%, where a hand-off at 1e-2 for all of them took 1.8x as long.
_HANDOFF = 1e-2
_HANDOFF_ITERATIONS = 5


class _Search:
    """The iterates of one solve of a batch of prompts at one ``k``: per prompt the
    best iterate seen (smallest exploitability), iterations and progress history."""

    def __init__(self, batch: PromptBatch, k: int, code: int, x0: Array) -> None:
        self.batch, self.k, self.code = batch, k, code
        self.best_x = x0.copy()
        self.best_u = np.zeros_like(x0)
        self.best_ex = np.full(len(batch), np.inf)
        self.iterations = np.zeros(len(batch), dtype=np.int64)
        #: each prompt's best exploitability over its last 11 iterations (oldest first)
        self.recent = np.full((len(batch), 11), np.nan)
        self._trace_rows: List[Rows] = []
        self._trace_values: List[Array] = []

    def u(self, x: Array, rows: Rows) -> Array:
        return self.batch.utilities(x, self.k, self.code, rows)

    def offer(self, rows: Rows, x: Array, u: Array) -> None:
        """Keep ``x`` (with its utilities) where it improves on a prompt's best."""
        ex = exploitability_rows(x, u, self.batch.mask[rows])
        better = ex < self.best_ex[rows]
        chosen = rows[better]
        self.best_x[chosen], self.best_u[chosen], self.best_ex[chosen] = x[better], u[better], ex[better]

    def step_done(self, rows: Rows) -> None:
        """One iteration of ``rows``: count it and record their progress."""
        self.iterations[rows] += 1
        self._trace_rows.append(rows.copy())
        self._trace_values.append(self.best_ex[rows].copy())
        self.recent[rows, :-1] = self.recent[rows, 1:]
        self.recent[rows, -1] = self.best_ex[rows]

    def contraction(self, rows: Rows) -> Array:
        """Per prompt, the mean factor by which the exploitability shrank per iteration
        over its last 10 iterations (1 when it did not shrink or is unknown)."""
        recent = self.recent[rows]
        known = np.isfinite(recent) & (recent > 0)
        first = np.argmax(known, axis=1)
        steps = recent.shape[1] - 1 - first
        oldest = recent[np.arange(rows.size), first]
        newest = recent[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = (newest / oldest) ** (1.0 / steps)
        ok = known[:, -1] & (steps > 0) & (newest < oldest)
        return np.where(ok, rate, 1.0)

    def histories(self) -> List[Tuple[float, ...]]:
        """Each prompt's best exploitability after each of its iterations."""
        n = len(self.batch)
        if not self._trace_rows:
            return [()] * n
        rows = np.concatenate(self._trace_rows)
        values = np.concatenate(self._trace_values)[np.argsort(rows, kind="stable")]
        bounds = np.cumsum(np.bincount(rows, minlength=n))[:-1]
        return [tuple(part.tolist()) for part in np.split(values, bounds)]


def _pga(search: _Search, rows: Rows, x: Array, tol: float, max_iter: int, step: float) -> None:
    """The paper's projected gradient ascent (Prop. D.2): ``pi <- Π(pi + η u(pi))``."""
    mask = search.batch.mask
    u = search.u(x, rows)
    search.offer(rows, x, u)
    active = search.best_ex[rows] > tol
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if not a.size:
            break
        ra = rows[a]
        x[a] = project_rows(x[a] + step * u[a], mask[ra])
        u[a] = search.u(x[a], ra)
        search.offer(ra, x[a], u[a])
        search.step_done(ra)
        active[a] = search.best_ex[ra] > tol


def adaptive_pga(search: _Search, rows: Rows, x: Array, tol: float, max_iter: int,
                 stop: Optional[float] = None) -> None:
    """Projected gradient ascent with a self-tuning step per prompt, the fast first
    phase of ``"auto"``: every 5 steps a prompt's step grows (x1.5) after a tenfold
    improvement and halves, restarting from its best iterate, after less than a 30%
    one; a prompt gives up after 6 such failures (extragradient, which converges on
    every monotone game, continues). The first step is the game's (``_FIRST_STEP``).

    With ``stop``, a prompt also hands over early (to Newton) once it is within
    ``_HANDOFF`` and the contraction of its last 10 iterations projects more than
    ``_HANDOFF_ITERATIONS`` more to reach ``stop``: a slowly contracting game (a
    mixture of a few Plackett–Luce types, say) costs fewer passes that way."""
    mask = search.batch.mask
    u = search.u(x, rows)
    search.offer(rows, x, u)
    target = tol if stop is None else max(stop, tol)
    eta = np.full(rows.size, _FIRST_STEP[search.code])
    window = search.best_ex[rows].copy()
    failures = np.zeros(rows.size, dtype=np.int64)
    active = search.best_ex[rows] > target
    since = 0
    for iteration in range(1, max_iter + 1):
        a = np.flatnonzero(active)
        if not a.size:
            break
        ra = rows[a]
        x[a] = project_rows(x[a] + eta[a, None] * u[a], mask[ra])
        u[a] = search.u(x[a], ra)
        search.offer(ra, x[a], u[a])
        search.step_done(ra)
        since += 1
        if since == 5:
            best = search.best_ex[ra]
            ratio = np.divide(best, window[a], out=np.zeros_like(best), where=window[a] > 0)
            eta[a[ratio < 0.1]] *= 1.5
            worse = a[ratio > 0.7]
            eta[worse] *= 0.5
            failures[worse] += 1
            x[worse], u[worse] = search.best_x[rows[worse]], search.best_u[rows[worse]]
            window[a] = best
            since = 0
        active[a] = (search.best_ex[ra] > target) & (failures[a] < 6)
        if stop is not None and iteration >= 10:
            ex, rate = search.best_ex[ra], search.contraction(ra)
            with np.errstate(divide="ignore"):
                slow = (ex <= _HANDOFF) & (np.log(target / ex) < _HANDOFF_ITERATIONS * np.log(rate))
            active[a[slow]] = False


def extragradient(search: _Search, rows: Rows, x: Array, tol: float, max_iter: int, step: Optional[float],
                  stop: Optional[float] = None) -> None:
    """Extragradient on the monotone variational inequality ``<u(pi), pi' - pi> <= 0``.

    Adaptive step per prompt (unless ``step`` is given): halve until
    ``η|u(x̂) - u(x)| <= 0.9|x̂ - x|`` (the classical ``η <= 0.9/L`` locally), grow by
    1.3 when it holds easily. Stops at ``tol`` (or ``stop``) on the best iterate."""
    mask = search.batch.mask
    u = search.u(x, rows)
    search.offer(rows, x, u)
    target = tol if stop is None else max(stop, tol)
    eta = np.full(rows.size, 1.0 if step is None else step)
    active = search.best_ex[rows] > target
    xh, uh = np.zeros_like(x), np.zeros_like(u)
    dx, du = np.zeros(rows.size), np.zeros(rows.size)
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if not a.size:
            break
        pending = a
        for _ in range(60):
            rp = rows[pending]
            xh[pending] = project_rows(x[pending] + eta[pending, None] * u[pending], mask[rp])
            uh[pending] = search.u(xh[pending], rp)
            dx[pending] = np.linalg.norm(xh[pending] - x[pending], axis=1)
            du[pending] = np.linalg.norm(uh[pending] - u[pending], axis=1)
            done = (dx[pending] == 0.0) | (eta[pending] * du[pending] <= 0.9 * dx[pending])
            if step is not None:
                done[:] = True
            pending = pending[~done]
            if not pending.size:
                break
            eta[pending] *= 0.5
        ra = rows[a]
        search.offer(ra, xh[a], uh[a])
        fixed = a[dx[a] == 0.0]  # x is a fixed point of the projected step: an equilibrium
        moving = a[dx[a] > 0.0]
        rm = rows[moving]
        x[moving] = project_rows(x[moving] + eta[moving, None] * uh[moving], mask[rm])
        u[moving] = search.u(x[moving], rm)
        search.offer(rm, x[moving], u[moving])
        search.step_done(ra)
        if step is None:
            grow = moving[eta[moving] * du[moving] <= 0.5 * dx[moving]]
            eta[grow] *= 1.3
        active[fixed] = False
        active[moving] = search.best_ex[rm] > target


def _newton_affordable(support: NDArray[np.int64], voters: NDArray[np.int64], sizes: NDArray[np.int64]
                       ) -> NDArray[np.bool_]:
    """A Newton iteration costs about one utility pass per support member (hard cap)."""
    return (support <= 64) | (support * voters * sizes <= 3e8)


def _newton_pays(search: _Search, rows: Rows, target: float) -> Rows:
    """The prompts of ``rows`` for which Newton (about 1.5 Jacobians of |S| rows plus
    a few evaluations) costs under 10 ms, or less than the first-order method's
    projected cost to ``target`` at the contraction rate of its last 10 iterations,
    or where that method has stalled. Costs are the models' fixed estimates
    (``PreferenceModel._PASS_SECONDS``), so the choice does not depend on load."""
    batch = search.batch
    ex = search.best_ex[rows]
    support = (search.best_x[rows] > 0).sum(axis=1)
    voters, sizes = batch.voters[rows], batch.sizes[rows]
    per_pass = batch.pass_seconds[rows]
    newton = (1.5 * support + 10.0) * per_pass
    rate = search.contraction(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        remaining = np.where(rate < 1.0, np.log(target / ex) / np.log(rate), np.inf)
    pays = (newton <= 0.01) | (rate >= 1.0) | (newton < 1.2 * remaining * per_pass)
    return rows[pays & (ex > target) & _newton_affordable(support, voters, sizes)]  # type: ignore[no-any-return]


def _newton_directions(J: Array, sizes: NDArray[np.int64], rhs: Array) -> Array:
    """Per prompt, the solution ``(d, dλ)`` of ``[[J_SS, -1], [1ᵀ, 0]] (d, dλ) = (rhs, 0)``
    with ``J_SS`` the leading ``sizes[j]`` rows and columns of ``J[j]`` (padded to the
    largest support ``depth``). Returns ``(prompts, depth + 1)``: ``d`` first (zero past
    the support), ``dλ`` last. Prompts are solved in groups of similar support size
    (rounded up to a multiple of 4), each group at its own size: an LU costs the cube
    of the padded size, and supports in a batch range from a few members to dozens."""
    count, depth = J.shape[0], J.shape[1]
    out = np.zeros((count, depth + 1))
    bucket = np.minimum(-(-sizes // 4) * 4, depth)
    for size in np.unique(bucket).tolist():
        g = np.flatnonzero(bucket == size)
        valid = np.arange(size)[None, :] < sizes[g, None]
        K = np.zeros((g.size, size + 1, size + 1))
        K[:, :size, :size] = J[g, :size, :size]
        K[:, :size, size] = -valid.astype(np.float64)
        K[:, size, :size] = valid
        K[:, np.arange(size), np.arange(size)] += ~valid   # identity on the padding
        r = np.zeros((g.size, size + 1))
        r[:, :size] = rhs[g, :size]
        try:
            d = np.linalg.solve(K, r[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            d = np.stack([np.linalg.lstsq(K[j], r[j], rcond=None)[0] for j in range(g.size)])
        out[g, :size] = d[:, :size]
        out[g, depth] = d[:, size]
    return out


def newton_polish(search: _Search, rows: Rows, max_iter: int = 40, target: float = 1e-14) -> None:
    """Active-set Newton on the equilibrium conditions, from each prompt's best iterate.

    On the support ``S``: ``u_S(pi) = λ``, ``sum pi_S = 1`` with the Newton matrix
    ``[[J_SS, -1], [1ᵀ, 0]]`` (exact Jacobian rows, one batched pass); a ratio test
    keeps ``pi >= 0`` and drops a blocking member; a backtracking line search on the
    residual; a converged support gains its most violated outsider (``u_z > λ``, at
    most three times each). Iterates stay on the simplex.

    While a prompt's support stays the same and its steps keep cutting the residual
    tenfold, it reuses its last Jacobian (a chord step: one utility pass instead of
    about ``|S|``; near the solution the Jacobian barely moves, so the step is as good).
    A chord step that does not cut the residual tenfold is not taken, and the prompt
    takes a fresh Jacobian."""
    batch = search.batch
    mask = batch.mask[rows]
    x = search.best_x[rows].copy()
    x[x < 1e-15] = 0.0
    x /= x.sum(axis=1, keepdims=True)
    u = search.u(x, rows)
    search.offer(rows, x, u)
    support = x > 0
    added = np.zeros(x.shape, dtype=np.int64)
    active = np.ones(rows.size, dtype=bool)
    width = batch.width
    #: the Jacobian blocks computed so far; per prompt, the block and row holding the
    #: Jacobian of its current support (-1: none, it needs a fresh one)
    blocks: List[Array] = []
    block_of = np.full(rows.size, -1)
    row_of = np.zeros(rows.size, dtype=np.int64)
    for _ in range(max_iter):
        a = np.flatnonzero(active)
        if not a.size:
            break
        ra = rows[a]
        search.step_done(ra)
        lam = np.einsum("pw,pw->p", x[a], u[a])
        residual = np.where(support[a], u[a] - lam[:, None], 0.0)
        norm0 = np.abs(residual).max(axis=1)
        converged = norm0 <= target
        if converged.any():   # widen the support by its most violated outsider, or stop
            c = a[converged]
            outside = np.where(mask[c] & ~support[c], u[c], -np.inf)
            z = np.argmax(outside, axis=1)
            violation = outside[np.arange(c.size), z] - lam[converged]
            grow = (violation > target) & (added[c, z] < 3)
            active[c[~grow]] = False
            support[c[grow], z[grow]] = True
            added[c[grow], z[grow]] += 1
            block_of[c[grow]] = -1
        s = support[a].sum(axis=1)
        stepping = ~converged & _newton_affordable(s, batch.voters[ra], batch.sizes[ra])
        active[a[~converged & ~stepping]] = False
        b = a[stepping]
        if not b.size:
            continue
        sb, residual_b, norm_b = s[stepping], residual[stepping], norm0[stepping]
        chord = block_of[b] >= 0
        fresh = b[~chord]
        if fresh.size:
            block_of[fresh], row_of[fresh] = len(blocks), np.arange(fresh.size)
            blocks.append(batch.jacobian(x[fresh], search.k, search.code, rows[fresh], support[fresh], square=True))
        depth = int(sb.max())
        J = np.zeros((b.size, depth, depth))  # J_SS, padded
        for index in np.unique(block_of[b]).tolist():
            g = np.flatnonzero(block_of[b] == index)
            size = min(depth, blocks[index].shape[1])
            J[g, :size, :size] = blocks[index][row_of[b[g]], :size, :size]
        order = np.argsort(~support[b], axis=1, kind="stable")[:, :depth]  # support members first, in order
        valid = np.arange(depth)[None, :] < sb[:, None]
        d = _newton_directions(J, sb, -np.take_along_axis(residual_b, order, axis=1) * valid)
        finite = np.isfinite(d).all(axis=1)
        active[b[~finite]] = False
        b, order, valid, norm_b, d, chord = b[finite], order[finite], valid[finite], norm_b[finite], d[finite], \
            chord[finite]
        if not b.size:
            continue
        dx = np.zeros((b.size, width))
        np.put_along_axis(dx, order, d[:, :depth] * valid, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(dx < 0, -x[b] / dx, np.inf)
        blocking = np.argmin(ratios, axis=1)
        smallest = ratios[np.arange(b.size), blocking]
        alpha = np.where(smallest < 1.0, smallest, 1.0)
        blocked = smallest < 1.0
        pending = np.arange(b.size)
        for attempt in range(30):
            j = pending
            trial = x[b[j]] + alpha[j, None] * dx[j]
            if attempt == 0:
                drop = np.flatnonzero(blocked[j])
                trial[drop, blocking[j][drop]] = 0.0  # the blocking member leaves the support
            trial = np.maximum(trial, 0.0)
            trial /= trial.sum(axis=1, keepdims=True)
            rt = rows[b[j]]
            ut = search.u(trial, rt)
            search.offer(rt, trial, ut)
            inside = trial > 0
            lam_t = np.einsum("pw,pw->p", trial, ut)
            norm_t = np.where(inside, np.abs(ut - lam_t[:, None]), 0.0).max(axis=1)
            ok = norm_t <= (1.0 - 1e-4 * alpha[j]) * norm_b[j]
            if attempt == 0:
                ok |= blocked[j]
                # a chord step must cut the residual tenfold (or reach the target)
                ok &= ~chord[j] | (norm_t <= np.maximum(0.1 * norm_b[j], target))
            accepted = b[j[ok]]
            x[accepted], u[accepted] = trial[ok], ut[ok]
            moved = (support[accepted] != inside[ok]).any(axis=1) | (norm_t[ok] > 0.1 * norm_b[j[ok]])
            block_of[accepted[moved]] = -1  # a new support, or a slow step: a fresh Jacobian next
            support[accepted] = inside[ok]
            retry = j[~ok & chord[j]]  # a failed chord step: not taken, a fresh Jacobian next
            block_of[b[retry]] = -1
            pending = j[~ok & ~chord[j]]
            if not pending.size:
                break
            alpha[pending] *= 0.5
        active[b[pending]] = False


def _hedge(search: _Search, rows: Rows, x: Array, tol: float, max_iter: int, step: Optional[float]
           ) -> Tuple[List[Array], Array, Array, NDArray[np.int64]]:
    """Multiplicative weights self-play of every prompt; returns (the iterates of all
    prompts per round, average regret ``Reg_T/T``, last iterates, ``T`` per prompt)."""
    mask = search.batch.mask[rows]
    sizes = search.batch.sizes[rows]
    iterates: List[Array] = []
    u_sum = np.zeros_like(x)
    value_sum = np.zeros(rows.size)
    regret = np.full(rows.size, np.inf)
    rounds = np.zeros(rows.size, dtype=np.int64)
    logits = np.where(mask, np.log(np.maximum(x, 1e-300)), -np.inf)
    active = np.ones(rows.size, dtype=bool)
    for t in range(1, max_iter + 1):
        a = np.flatnonzero(active)
        if not a.size:
            break
        u = search.u(x[a], rows[a])
        iterates.append(x.copy())
        rounds[a] = t
        u_sum[a] += u
        value_sum[a] += np.einsum("pw,pw->p", x[a], u)
        regret[a] = (masked_max(u_sum[a], mask[a]) - value_sum[a]) / t
        search.iterations[rows[a]] += 1
        search._trace_rows.append(rows[a].copy())
        search._trace_values.append(regret[a].copy())
        going = regret[a] > tol
        active[a] = going
        g = a[going]
        eta = step if step is not None else np.sqrt(8.0 * np.log(np.maximum(sizes[g], 2)) / t)[:, None]
        logits[g] += eta * u[going]
        logits[g] -= logits[g].max(axis=1, keepdims=True)
        x[g] = np.where(mask[g], np.exp(logits[g]), 0.0)
        x[g] /= x[g].sum(axis=1, keepdims=True)
    return iterates, regret, x, rounds


def _initial(batch: PromptBatch, init: Any) -> Array:
    """The starting policies: uniform, or ``init`` (one vector, or one per prompt, or None)."""
    x = batch.uniform()
    if init is None:
        return x
    rows = list(init)
    if len(rows) != len(batch):
        raise ValueError(f"init: expected one starting policy per prompt ({len(batch)}), got {len(rows)}")
    given = [p for p, row in enumerate(rows) if row is not None]
    if len(batch) == 1 and given:  # the one prompt's start is named "init"
        flat = as_distribution(rows[0], "init", size=int(batch.sizes[0]))
    else:
        flat, _ = as_distribution_batch([rows[p] for p in given], batch.sizes[given].tolist(), given, "init")
    chosen = np.zeros(len(batch), dtype=bool)
    chosen[given] = True
    x[batch.mask & chosen[:, None]] = flat  # a prompt's entries, in order; its padding stays 0
    return x


@on_one_blas_thread
def solve_mpne_batch(models: Sequence[Any], k: int, ties: str = "uniform", method: str = "auto",
                     tol: float = 1e-8, max_iter: Optional[int] = None, step: Optional[float] = None,
                     init: Any = None) -> List[MPNEResult]:
    """:func:`solve_mpne` for many prompts at once (one model each, sizes may differ):
    every iteration advances all unconverged prompts together, one batched kernel
    call for all of them. ``init``: a starting policy per prompt (or None entries).
    Returns one result per prompt, in order, each with its own certificate."""
    clock = Clock()
    batch = PromptBatch([checked_model(model) for model in models]) if models else None
    if batch is None:
        raise ValueError("models: needs at least one prompt")
    k = as_count(k, "k")
    code = tie_code(ties)
    if ties not in GAMES:
        raise ValueError(f"ties: the alignment game is solved under 'uniform' or 'strict' ties (Definition 4.2; "
                         f"the strict game certifies the paper's 'weak' level), got {ties!r}; for the best "
                         f"policy under another convention use solve_optimal")
    method = as_choice(method, METHODS, "method")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter") if max_iter is not None else _DEFAULT_MAX_ITER[method]
    step = as_positive_real(step, "step") if step is not None else None
    x = _initial(batch, init)
    search = _Search(batch, k, code, x)
    level_ties = mirror_ties(ties)
    rows = batch.all

    if method == "hedge":
        iterates, regret, last, rounds = _hedge(search, rows, x, tol, max_iter, step)
        mixtures = [ProductMixture(np.stack([it[p, :batch.sizes[p]] for it in iterates[:rounds[p]]]),
                                   np.full(int(rounds[p]), 1.0 / rounds[p]), k) for p in rows]
        certs = [certify(batch.models[p], mixture, None, ties=level_ties, tol=tol)
                 for p, mixture in zip(rows, mixtures)]
        histories = search.histories()
        return [MPNEResult(policy=mixtures[p], robust_level=certs[p].robust_level, exploitability=float(regret[p]),
                           iterations=int(rounds[p]), wall_time=clock(), converged=bool(regret[p] <= tol),
                           certificate=certs[p], method="hedge", k=k, ties=ties,
                           evaluations=int(batch.passes[p] + rounds[p]), history=histories[p],
                           level_ties=level_ties, last_iterate=last[p, :batch.sizes[p]].copy()) for p in rows]

    used = method
    if method == "pga":
        _pga(search, rows, x, tol, max_iter, 1.0 if step is None else step)
    elif method == "extragradient":
        extragradient(search, rows, x, tol, max_iter, step)
    elif k == 1 and ties == "uniform":
        # the k = 1 uniform game is constant-sum: its symmetric equilibria are the maximal lotteries
        used = "auto (maximal lottery)"
        lotteries = maximal_lotteries(batch.pairwise("uniform"), tol=min(tol, 1e-12))
        for p, (pi, _, iterations, _, history) in zip(rows, lotteries):
            search.best_x[p, :pi.shape[0]] = pi
            search.iterations[p] = iterations
            search._trace_rows.append(np.full(len(history), p))
            search._trace_values.append(np.asarray(history))
            batch.passes[p] += 1
    else:
        # fast start (self-tuning projected gradient); Newton on the support where it is
        # cheaper than continuing; extragradient (convergent on every monotone game) if stalled
        polish = min(tol, 1e-12)
        adaptive_pga(search, rows, x, tol, min(max_iter, 500), stop=1e-4)
        newton_polish(search, _newton_pays(search, rows, polish))
        for phase in (adaptive_pga, extragradient):
            left = rows[(search.best_ex > tol) & (search.iterations < max_iter)]
            if not left.size:
                break
            budget = int(max_iter - search.iterations[left].min())
            if phase is adaptive_pga:
                adaptive_pga(search, left, search.best_x[left].copy(), tol, min(budget, 500))
            else:
                extragradient(search, left, search.best_x[left].copy(), tol, budget, step)
        newton_polish(search, _newton_pays(search, rows, polish))
    policies = batch.normalised(search.best_x / search.best_x.sum(axis=1, keepdims=True), "policy")
    certs = certificates(batch, policies, k, level_ties, tol)
    histories = search.histories()
    results = []
    for p in rows:
        cert = certs[p]
        expl = float(cert.exploitability) if cert.exploitability is not None else math.inf
        pi = policies[p, :batch.sizes[p]].copy()
        results.append(MPNEResult(policy=pi, robust_level=cert.robust_level, exploitability=expl,
                                  iterations=int(search.iterations[p]), wall_time=clock(), converged=expl <= tol,
                                  certificate=cert, method=used, k=k, ties=ties,
                                  evaluations=int(batch.passes[p]), history=histories[p],
                                  level_ties=level_ties, last_iterate=pi))
    return results


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
    ``init``: starting policy of the iterative methods (default uniform).
    The batch of one of :func:`solve_mpne_batch`.
    """
    return solve_mpne_batch([model], k, ties, method, tol, max_iter, step, None if init is None else [init])[0]
