"""The multi-output optimum of Theorem 3.1: ``max over rho in Δ(Y^k) of
min_y P[rho ≻ y]``, a linear program over k-multisets ``S`` with columns
``a_S[y] = P[S ≻ y]`` (under the level's tie convention).

**Column generation and its certificate.** The master LP over the multisets found
so far gives a committee policy of level ``t`` and the adversary's mixture ``q``
over responses (its dual). The full LP is a finite zero-sum game, so by LP duality

    OPT = max_rho min_y Σ_S rho_S a_S[y] = min_{q in Δ(Y)} max_S q·a_S,

hence **every** ``q`` gives the upper bound ``OPT <= P(q) := max_S q·a_S``, the value
of the pricing problem; a multiset with ``q·a_S > t`` is an improving column.
``upper_bound`` is the smallest certified bound on ``P(q)`` seen, ``gap`` its
distance to the certified level. The bound is exact when pricing is solved exactly:

* branch and bound (rankings; C++ kernel ``src/committee_pricing.hpp``). Per voter
  ``i`` the pricing objective depends on ``S`` only through the best level of ``S``
  in voter ``i``'s ranking (and, under ``"uniform"`` ties, how many members tie
  there): a weighted facility-location objective, monotone and (DR-)submodular. The
  search runs depth first over members in decreasing order of marginal gain; a node
  ``(S, r members still to add)`` is bounded by the value of ``S`` plus the ``r``
  largest marginal gains (the gains of the 1st, 2nd, ... copy of each candidate
  under ``"uniform"`` ties), by each voter's best reachable value, and by a
  Lagrangian bound ``Σ_i u_i + Σ_{z added} Σ_i (v_i(z) - u_i)^+`` (any ``u`` at least
  the voters' current values), starting from each voter's ``(r + 2)``-th best value
  among the candidates for the ``r`` members still to add: for sets then improved
  by a few subgradient steps; for multisets, where each further copy of ``z`` adds
  its tie share's increment, at that start, at nodes with three or more members to
  add. Nodes that cannot beat ``level + tol/2`` are pruned as well, so a finished
  search either finds improving columns (the best few found go to the master) or
  proves that none exists. When the time budget runs out, the largest bound of the
  open and pruned nodes is still a valid bound (``exact=False`` then);
* enumeration of every candidate committee (other models, small pools);
* ``pricing="greedy"``: no exact pricing; ``S -> q·a_S`` is normalised, monotone
  and DR-submodular (Property 1(4)), so greedy reaches ``1 - (1 - 1/k)^k`` of
  ``P(q)`` and ``greedy / (1 - (1 - 1/k)^k)`` is a (loose) bound.

Cheap heuristics (greedy, then best-swap local search; when that column does not
improve, best-swap local search from each of the master's committees, heaviest
first, since at the master's optimum each is worth exactly the level at ``q``)
generate columns; exact pricing runs only once they find no improving column, to
certify (or to find the columns the heuristics missed). A search that finds
improving columns stops once it holds :data:`_PRICING_COLUMNS` of them (column
generation needs improving columns, not the best ones), so the time budget goes to
the last search, which proves that no committee beats the level by more than
``tol / 2``.

**Repeats.** Under ``"half"``, ``"strict"`` and ``"weak"`` ties ``P[S ≻ y]`` depends
only on the distinct members of ``S`` and grows when a member is added, so a
multiset with a repeat is weakly dominated by replacing the repeat with a missing
response: pricing searches sets of ``min(k, m)`` distinct responses (padded with
repeats of one member when ``k > m``). When ``k >= m`` the committee of all
responses maximises every ``a_S[y]`` at once, hence is optimal with a zero gap.
Under ``"uniform"`` ties repeats matter (two copies of a response tied with ``y``
win 2/3 of the tie, one copy 1/2), and pricing searches multisets.

**Opponents with several outputs** (``opponent_k = ℓ >= 2``; Cai & Zheng,
"Asymptotic Universal Alignment", arXiv:2601.08777, §D.7). Against opponents
answering with ``ℓ`` responses the LP's rows become the ``ℓ``-multisets ``Y``:
``max_rho min_Y Σ_S rho_S P[S ≻ Y]``, too many rows to write down, so rows are
generated beside the columns. The master LP runs over the committees and the
opponent multisets found so far; its policy's worst opponent, found exactly by
:func:`ualign.opponent_search` (the same branch and bound, on the mirrored
convention), joins the rows while it beats the master's value. Once it does not,
the master's value is the policy's exact ``f_ℓ`` and its dual ``q`` is a mixture of
opponent multisets; by the same duality ``OPT <= max_S Σ_Y q_Y P[S ≻ Y]``, which is
``max_S P[S ≻ X_q]`` for the opponent ``X_q`` drawing ``Y`` with probability
``q_Y``: the objective the worst-opponent search maximises, with the committee's
convention and ``k`` members (``P_i[S ≻ X_q]`` again depends on ``S`` only through
its best level and count in voter ``i``'s ranking). Pricing is that search, exact,
from the first iteration (no heuristic columns); on other models every committee
is enumerated, or greedy with its submodular bound. The certified level is the
exact ``f_ℓ`` of the returned policy, the upper bound the smallest pricing bound.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _core_loader
from .._validate import as_choice, as_count, as_tolerance, mirror_ties, tie_code
from ..game import OpponentSearch, opponent_search
from ..operands import MultisetPolicy, as_operand
from ..ranking import RankingPopulation
from ._common import Array, Clock, checked_model, linprog, normalised, on_one_blas_thread
from .certify import certify
from .results import CommitteeResult, OpponentCommitteeResult

PRICING = ("auto", "exact", "greedy")

#: On models other than rankings, ``pricing="auto"`` enumerates every candidate
#: committee when candidates x responses stays below this.
ENUMERATION_BUDGET = 7e7

#: Default seconds of exact pricing (branch and bound) per call of :func:`solve_committee`.
TIME_LIMIT = 5.0

#: Largest committee under ``"uniform"`` ties, where repeats count and pricing
#: searches multisets of k members: its cost grows quickly with k (on 12 responses,
#: k = 128 takes about a second, k = 256 ten, k = 512 a minute); beyond it a
#: ValueError names ``k``. Under the other conventions any k is solved (for k >= m in
#: closed form).
UNIFORM_K_MAX = 128

#: Nodes per branch-and-bound pricing call (the time limit usually binds first).
_MAX_NODES = 10**9
#: Largest pricing relaxation (voters x responses) solved by HiGHS when the branch
#: and bound stops by its time limit (about 0.3 s at 100 x 64).
_RELAXATION_BUDGET = 100_000
#: Columns (the best committees found) one exact pricing call returns to the master.
_PRICING_COLUMNS = 8

# A column enters the master only if it beats the level by more than this (LP noise).
_IMPROVES = 1e-12
# Greedy builds at most this many members by full passes; lazy greedy beyond.
_FULL_GREEDY = 64
# Committees of the master that local search starts from when greedy finds no column.
_LOCAL_STARTS = 8


def _tie_share(count: Array, ties: str) -> Array:
    """Share of a tie won by ``count`` members of S tied with a single response."""
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


class _RankingPricer:
    """Pricing ``S -> Σ_i w_i Σ_y q_y P_i[S ≻ y]`` on a ranking population for one
    dual ``q``: per voter, the q-mass at and strictly below each level."""

    def __init__(self, pop: RankingPopulation, ties: str, k: int, repeats: bool) -> None:
        w = pop.weights
        keep = w > 0  # zero-weight voters never matter
        self.levels = np.asarray(pop.ranks)[keep].astype(np.int64)
        self.level_values = self.levels.astype(np.float64)  # for committee_add_values
        self.w = w[keep]
        self.ties, self.k, self.repeats = ties, k, repeats
        self.n, self.m = self.levels.shape
        self.rows = np.arange(self.n)

    def set_dual(self, q: Array) -> None:
        n, m = self.n, self.m
        flat = (self.levels + self.rows[:, None] * (m + 1)).ravel()
        self.q = q
        self.at = np.bincount(flat, weights=np.broadcast_to(q, self.levels.shape).ravel(),
                              minlength=n * (m + 1)).reshape(n, m + 1)
        self.below = np.cumsum(self.at[:, ::-1], axis=1)[:, ::-1] - self.at
        # level m stands for "S empty": nothing below it, no mass at it
        # per voter and response: the mass strictly below the response's level and at it
        self.below_z = np.take_along_axis(self.below, self.levels, axis=1)
        self.at_z = np.take_along_axis(self.at, self.levels, axis=1)
        # a voter's value when the response alone is S's best member there
        self.alone_z = self.below_z + _tie_share(np.ones(1), self.ties)[0] * self.at_z

    def state(self, S: Tuple[int, ...]) -> Tuple[Array, Array]:
        """Per voter: best level of S (m if empty) and members of S at it."""
        if not S:
            return np.full(self.n, self.m, dtype=np.int64), np.zeros(self.n)
        L = self.levels[:, list(S)]
        best = L.min(axis=1)
        return best, (L == best[:, None]).sum(axis=1).astype(np.float64)

    def voter_values(self, best: Array, count: Array) -> Array:
        out: Array = self.below[self.rows, best] + _tie_share(count, self.ties) * self.at[self.rows, best]
        return out

    def value(self, S: Tuple[int, ...]) -> float:
        return float(self.w @ self.voter_values(*self.state(S)))

    def add_values(self, best: Array, count: Array) -> Array:
        """Value of ``S + {z}`` for every response z, S given by its state."""
        at_best = self.at[self.rows, best]
        below_best = self.below[self.rows, best]
        same = below_best + _tie_share(count + 1.0, self.ties) * at_best
        old = below_best + _tie_share(count, self.ties) * at_best
        out: Array = _core_loader.core().committee_add_values(self.level_values, self.alone_z,
                                                              best.astype(np.float64), same, old, self.w)
        return out

    def allowed(self, S: Tuple[int, ...]) -> Array:
        ok = np.ones(self.m, dtype=bool)
        if not self.repeats:
            ok[list(S)] = False
        return ok

    def greedy(self) -> Tuple[int, ...]:
        if self.k > _FULL_GREEDY:
            return self._lazy_greedy()
        S: Tuple[int, ...] = ()
        for _ in range(self.k):
            values = np.where(self.allowed(S), self.add_values(*self.state(S)), -np.inf)
            S = tuple(sorted(S + (int(np.argmax(values)),)))
        return S

    def _lazy_greedy(self) -> Tuple[int, ...]:
        """Greedy with stale gains (valid upper bounds: the gains never grow, DR-submodularity)."""
        best, count = self.state(())
        current = float(self.w @ self.voter_values(best, count))
        heap = [(-(v - current), z) for z, v in enumerate(self.add_values(best, count))]
        heapq.heapify(heap)
        chosen: List[int] = []
        while len(chosen) < self.k:
            _, z = heapq.heappop(heap)
            lz = self.levels[:, z]
            nb = np.minimum(best, lz)
            nc = np.where(lz < best, 1.0, np.where(lz == best, count + 1.0, count))
            value = float(self.w @ self.voter_values(nb, nc))
            if heap and value - current < -heap[0][0] - 1e-15:
                heapq.heappush(heap, (-(value - current), z))
                continue
            chosen.append(z)
            if self.repeats:  # its gain just now bounds its next one (DR-submodularity)
                heapq.heappush(heap, (-(value - current), z))
            best, count, current = nb, nc, value
        return tuple(sorted(chosen))

    def local_search(self, S: Tuple[int, ...], max_rounds: int = 50) -> Tuple[int, ...]:
        """Best single-member swaps until none improves."""
        value = self.value(S)
        for _ in range(max_rounds):
            best_move: Optional[Tuple[int, int]] = None
            best_value = value + 1e-13
            for p in sorted(set(range(len(S))), key=lambda j: S[j]):
                if p > 0 and S[p] == S[p - 1]:
                    continue
                rest = S[:p] + S[p + 1:]
                values = np.where(self.allowed(rest), self.add_values(*self.state(rest)), -np.inf)
                values[S[p]] = -np.inf
                z = int(np.argmax(values))
                if values[z] > best_value:
                    best_move, best_value = (p, z), float(values[z])
            if best_move is None:
                return S
            p, z = best_move
            S = tuple(sorted(S[:p] + S[p + 1:] + (z,)))
            value = best_value
        return S

    def relaxation_bound(self) -> Optional[float]:
        """An upper bound on the pricing optimum at the current dual from the linear
        relaxation of its facility-location form, or None when the program is too
        large (over :data:`_RELAXATION_BUDGET` voter-response pairs) or HiGHS fails.

        Voter ``i`` served by member ``j`` at its best level is worth at most
        ``c_ij = w_i (below_i(j) + share * at_i(j))``, ``share`` the most a tie can give
        (``k/(k+1)`` under ``"uniform"``: at most ``k`` members tie). For multipliers
        ``α >= 0`` on "each voter is served once", every committee of at most
        ``size = min(k, m)`` distinct members is worth at most
        ``Σ_i α_i + (sum of the size largest Σ_i (c_ij - α_i)^+)``; HiGHS's duals of
        the relaxation give the best ``α``, and the bound is evaluated from them
        here, so it holds whatever the LP solver's tolerances."""
        n, m = self.levels.shape
        if n * m > _RELAXATION_BUDGET:
            return None
        import scipy.sparse as sparse  # type: ignore[import-untyped]

        size = min(self.k, m)
        share = float(_tie_share(np.array([float(self.k)]), self.ties)[0])
        below, at = self.below_z, self.at_z
        value = self.w[:, None] * (below + share * at)
        # variables: serve[i, j] (n m), then open[j] (m); maximise Σ value[i, j] serve[i, j]
        pairs = n * m
        once = sparse.kron(sparse.eye(n), np.ones((1, m)))                   # Σ_j serve[i, j] <= 1
        opened = sparse.hstack([sparse.eye(pairs), -sparse.kron(np.ones((n, 1)), sparse.eye(m))])
        rows = sparse.vstack([sparse.hstack([once, sparse.csr_matrix((n, m))]), opened,
                              sparse.hstack([sparse.csr_matrix((1, pairs)), np.ones((1, m))])]).tocsr()
        result = linprog(np.r_[-value.ravel(), np.zeros(m)], A_ub=rows,
                         b_ub=np.r_[np.ones(n), np.zeros(pairs), size], bounds=(0.0, 1.0))
        if result.status != 0:
            return None
        alpha = np.maximum(-np.asarray(result.ineqlin.marginals[:n]), 0.0)
        gains = np.maximum(value - alpha[:, None], 0.0).sum(axis=0)
        return float(alpha.sum() + np.sort(gains)[::-1][:size].sum())

    def exact(self, target: float, seconds: float, start: Tuple[int, ...], max_nodes: int = _MAX_NODES,
              enough: bool = False) -> Tuple[List[Tuple[int, ...]], float, bool]:
        """Branch and bound (module docstring): (the best committees found, best first;
        an upper bound on the pricing optimum; whether the search finished). Nodes that
        cannot beat ``target`` are pruned too, so a finished search proves the optimum
        is at most ``max(target, best value found)``; a search stopped after ``seconds``
        (or ``max_nodes`` nodes, or with ``enough`` once it holds
        :data:`_PRICING_COLUMNS` committees beating ``target``) still bounds it."""
        L, w = self.levels, self.w[:, None]
        below, at = self.below_z, self.at_z
        members = np.asarray(start, dtype=np.int64)
        core = _core_loader.core()
        if self.repeats:
            found, _, bound, finished, _ = core.price_multiset_committee(
                np.ascontiguousarray((w * below).T), np.ascontiguousarray((w * at).T), np.ascontiguousarray(L.T),
                self.k, members, _PRICING_COLUMNS, target, max_nodes, seconds, enough)
        else:
            single = w * self.alone_z
            found, _, bound, finished, _ = core.price_set_committee(
                np.ascontiguousarray(single.T), min(self.k, self.m), members, _PRICING_COLUMNS, target, max_nodes,
                seconds, enough)
        return [tuple(int(z) for z in S) for S in found], float(bound), bool(finished)


def _greedy_generic(value: Callable[[Tuple[int, ...]], float], k: int, m: int, repeats: bool) -> Tuple[int, ...]:
    """Greedy pricing through the exact objective ``value`` (one call per candidate)."""
    chosen: List[int] = []
    for _ in range(k):
        values = [value(tuple(sorted(chosen + [z]))) if repeats or z not in chosen else -1.0 for z in range(m)]
        chosen.append(int(np.argmax(values)))
    return tuple(sorted(chosen))


def _master(A: Array) -> Tuple[Array, float, Array]:
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


def _padded(S: Tuple[int, ...], k: int) -> Tuple[int, ...]:
    """A committee of fewer than k distinct members, padded to size k with repeats
    (which change nothing outside ``"uniform"`` ties)."""
    return tuple(sorted(S + (S[0],) * (k - len(S))))


@on_one_blas_thread
def solve_committee(model: Any, k: int, ties: str = "uniform", pricing: str = "auto", tol: float = 1e-9,
                    max_iter: int = 300, time_limit: float = TIME_LIMIT, opponent_k: int = 1) -> CommitteeResult:
    """The best distribution over k-multisets (Theorem 3.1's multi-output policy):
    ``max_rho min_y P[rho ≻ y]`` under ``ties`` (the paper's is ``"weak"``), which is
    at least ``k/(k+1)`` on every population satisfying Property 1 — and, unlike any
    single-output policy under ``"uniform"`` ties, can exceed it.

    Column generation over multisets; ``upper_bound`` comes from the LP duality
    ``OPT = min_q max_S q·a_S``: any adversary mixture ``q`` bounds the optimum by
    the pricing value ``max_S q·a_S`` (see the module docstring). ``pricing``:

    * ``"exact"``: on ranking populations, heuristic columns, then branch-and-bound
      pricing to certify, within ``time_limit`` seconds of it in total (when time
      runs out, the search's bound is still a valid ``upper_bound`` and ``exact`` is
      False); on other models, enumeration of every candidate committee
      (``C(m, k)`` sets, or ``C(m+k-1, k)`` multisets under ``"uniform"`` ties);
    * ``"greedy"``: heuristic columns only, with the submodular bound
      ``greedy / (1 - (1 - 1/k)^k)``;
    * ``"auto"``: ``"exact"`` on rankings; on other models ``"exact"`` when
      candidates x voters is at most ``ENUMERATION_BUDGET``, else ``"greedy"``.

    Outside ``"uniform"`` ties and for ``k >= m`` the committee of all responses is
    optimal (``pricing`` is then ``"closed form"``). ``tol``: the certified gap at
    which to stop. Returns a :class:`CommitteeResult` whose ``policy`` is a
    :class:`~ualign.MultisetPolicy`; ``gap = upper_bound - robust_level`` and
    ``exact`` tells whether ``upper_bound`` was proved by a pricing solved to its end
    (enumeration, or a branch and bound that finished: the optimum at that dual, or
    that no committee beats the level by more than ``tol / 2``) rather than taken from
    a search cut off by the time limit or from the greedy ratio.

    ``opponent_k = ℓ >= 2``: the best k-multiset policy against opponents answering
    with ``ℓ`` responses, ``max_rho min_{|Y| = ℓ} P[rho ≻ Y]`` (Cai & Zheng,
    arXiv:2601.08777, §D.7), by generating opponent rows beside the columns (module
    docstring). ``time_limit`` then bounds the pricing and the opponent searches
    together (checked between steps; one enumeration pricing on a model other than
    rankings, over every committee against the new opponent rows, runs to its end).
    Returns an :class:`~ualign.solvers.results.OpponentCommitteeResult`:
    ``robust_level`` is the policy's ``f_ℓ`` (exact search), ``lower_bound`` its
    certified value, ``gap = upper_bound - lower_bound``.
    """
    clock = Clock()
    model = checked_model(model)
    k = as_count(k, "k")
    tie_code(ties)
    pricing = as_choice(pricing, PRICING, "pricing")
    tol = as_tolerance(tol)
    max_iter = as_count(max_iter, "max_iter")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0:
        raise ValueError(f"time_limit: expected a positive number of seconds, got {time_limit!r}")
    m = model.n_responses
    repeats = ties == "uniform"
    if repeats and k > UNIFORM_K_MAX:
        raise ValueError(f"k: committees under 'uniform' ties are solved for k <= {UNIFORM_K_MAX} members "
                         f"(repeats count, and pricing searches multisets of k), got {k}")
    ranking = isinstance(model, RankingPopulation)
    scores = _Scores(model, ties)
    size = k if repeats else min(k, m)
    candidates = math.comb(m + k - 1, k) if repeats else math.comb(m, size)
    n = model.n_voters
    if pricing == "auto":
        pricing = "exact" if ranking or candidates * n <= ENUMERATION_BUDGET else "greedy"
    opponent_k = as_count(opponent_k, "opponent_k")
    if opponent_k > 1:
        return _solve_against_opponents(model, k, ties, pricing, tol, max_iter, float(time_limit), opponent_k, clock)

    if not repeats and k >= m:
        # every a_S[y] is maximal at S = all responses: optimal, and its level is the bound
        S_all = _padded(tuple(range(m)), k)
        policy = MultisetPolicy([list(S_all)], [1.0])
        cert = certify(model, policy, k, ties=ties, tol=tol)
        return CommitteeResult(policy=policy, robust_level=cert.robust_level, exploitability=None, iterations=0,
                               wall_time=clock(), converged=True, certificate=cert,
                               method="all responses (repeats never help outside uniform ties)", k=k, ties=ties,
                               evaluations=scores.calls, history=(0.0,), upper_bound=cert.robust_level, gap=0.0,
                               exact=True, pricing="closed form")

    pricer = _RankingPricer(model, ties, k, repeats) if ranking else None
    table: Optional[Array] = None
    everything: List[Tuple[int, ...]] = []
    if pricing == "exact" and pricer is None:
        combine = itertools.combinations_with_replacement if repeats else itertools.combinations
        everything = list(combine(range(m), k))
        table = np.array([scores(S) for S in everything])
    pricing_seconds = [0.0]

    def heuristic(q: Array) -> Tuple[int, ...]:
        if pricer is None:
            return _greedy_generic(lambda S: float(np.dot(q, scores(S))), k, m, repeats)
        pricer.set_dual(q)
        S = pricer.greedy()
        return pricer.local_search(S) if k <= _FULL_GREEDY else S

    def certified(q: Array, t: float, S: Tuple[int, ...]) -> Tuple[List[Tuple[int, ...]], float, bool, bool]:
        """(columns found, upper bound on max_S q·a_S, whether pricing was exact, whether
        the bound is the LP relaxation's), given the heuristic column ``S`` at ``q``."""
        if table is not None:
            values = table @ q
            order = np.argsort(values)[::-1][:8]
            return [everything[j] for j in order], float(values[order[0]]), True, False
        if pricing == "exact":
            assert pricer is not None
            pricer.set_dual(q)
            start = Clock()
            # improving columns are all column generation needs until none exists: the
            # search stops once it holds enough of them, and proves a bound only at the end
            found, bound, finished = pricer.exact(t + tol / 2, time_limit - pricing_seconds[0], S, enough=True)
            relaxed = False
            if not finished and pricing_seconds[0] + start() >= time_limit:
                # stopped by the time limit: the open nodes' bound, or the relaxation's where tighter
                relaxation = pricer.relaxation_bound()
                if relaxation is not None and relaxation < bound:
                    bound, relaxed = relaxation, True
            pricing_seconds[0] += start()
            return found, bound, finished, relaxed
        factor = 1.0 - (1.0 - 1.0 / k) ** k
        return [S], min(1.0, float(np.dot(q, scores(S))) / factor), False, False

    columns: List[Tuple[int, ...]] = [(y,) * k for y in range(m)] if repeats else \
        [_padded((y,), k) for y in range(m)]
    start_column = heuristic(np.full(m, 1.0 / m))
    if start_column not in columns:
        columns.append(start_column)
    upper, exact, upper_relaxed = 1.0, False, False  # the bound, and how it was obtained
    history: List[float] = []
    iterations = 0
    rho, t, q = _master(np.array([scores(S) for S in columns]))

    def improving(S: Tuple[int, ...]) -> bool:
        return S not in columns and float(np.dot(q, scores(_padded(S, k)))) > t + _IMPROVES

    def local_columns() -> List[Tuple[int, ...]]:
        """Improving columns from best-swap local search started at the master's
        committees, largest weight first (at the master's optimum each of them is worth
        exactly t at q, so one swap may beat t where greedy from scratch does not)."""
        assert pricer is not None
        out: List[Tuple[int, ...]] = []
        for j in np.argsort(-rho, kind="stable")[:_LOCAL_STARTS]:
            if rho[j] <= 0:
                break
            S = pricer.local_search(columns[j])
            if improving(S) and S not in out:
                out.append(S)
        return out

    while iterations < max_iter:
        iterations += 1
        S = heuristic(q)
        new = [S] if improving(S) else []
        if not new and pricer is not None and k <= _FULL_GREEDY:
            new = local_columns()
        if not new:  # the heuristics are stuck: price exactly (or bound) at this q
            found, bound, finished, relaxed = certified(q, t, S)
            if bound < upper or (bound == upper and finished):  # a proof counts over an equal bound
                upper, exact, upper_relaxed = bound, finished, relaxed
            new = [S for S in found if improving(S)]
            history.append(upper - t)
            if upper - t <= tol or pricing_seconds[0] >= time_limit:
                break
        if not new:
            break
        columns.extend(_padded(S, k) for S in new)
        rho, t, q = _master(np.array([scores(S) for S in columns]))
    keep = rho > 1e-15
    policy = MultisetPolicy([list(S) for S, kept in zip(columns, keep) if kept], normalised(rho[keep]))
    cert = certify(model, policy, k, ties=ties, tol=tol)
    if upper < cert.robust_level - 1e-7:
        raise RuntimeError(f"committee: upper bound {upper!r} below the certified level {cert.robust_level!r}")
    upper = max(upper, cert.robust_level)  # solver rounding only (checked above)
    gap = upper - cert.robust_level
    label = "greedy" if pricing == "greedy" else "enumeration" if pricer is None else "branch and bound"
    if pricer is not None and pricing == "exact" and not exact:
        label += " (stopped by the time limit" + ("; bound of its LP relaxation)" if upper_relaxed else ")")
    return CommitteeResult(policy=policy, robust_level=cert.robust_level, exploitability=None,
                           iterations=iterations, wall_time=clock(), converged=gap <= max(tol, 1e-9),
                           certificate=cert, method=f"column generation ({label} pricing)",
                           k=k, ties=ties, evaluations=scores.calls, history=tuple(history), upper_bound=upper,
                           gap=gap, exact=exact, pricing=label)


class _OpponentGame:
    """The master LP's entries ``P[S ≻ Y]`` (committee ``S``, opponent multiset ``Y``)
    under the committee's convention, with a cache."""

    def __init__(self, model: Any, ties: str) -> None:
        self.model, self.m, self.code = model, model.n_responses, tie_code(ties)
        self.cache: Dict[Tuple[Tuple[int, ...], Tuple[int, ...]], float] = {}
        self.calls = 0

    def against(self, S: Tuple[int, ...], opponent: Any) -> float:
        """``P[S ≻ X]`` for any operand ``X``."""
        self.calls += 1
        return float(self.model._win_rate(as_operand(list(S), self.m, "committee"),
                                          as_operand(opponent, self.m, "opponent"), self.code))

    def __call__(self, S: Tuple[int, ...], Y: Tuple[int, ...]) -> float:
        value = self.cache.get((S, Y))
        if value is None:
            value = self.cache[(S, Y)] = self.against(S, list(Y))
        return value

    def matrix(self, columns: List[Tuple[int, ...]], rows: List[Tuple[int, ...]]) -> Array:
        return np.array([[self(S, Y) for Y in rows] for S in columns])


def _solve_against_opponents(model: Any, k: int, ties: str, pricing: str, tol: float, max_iter: int,
                             time_limit: float, opponent_k: int, clock: Clock) -> OpponentCommitteeResult:
    """``max_rho min_{|Y| = ℓ} P[rho ≻ Y]`` by row and column generation (module docstring)."""
    m = model.n_responses
    repeats = ties == "uniform"
    size = k if repeats else min(k, m)
    ranking = isinstance(model, RankingPopulation)
    game = _OpponentGame(model, ties)
    spent = [0.0]  # seconds of pricing and opponent searches
    searches = [0]

    def worst(policy: MultisetPolicy) -> OpponentSearch:
        start = Clock()
        # the policy about to be returned gets a search even when the budget is spent
        # (a short one: its bounds say whether it finished)
        search = opponent_search(model, policy, None, opponent_k, ties, max(time_limit - spent[0], 1e-3))
        spent[0] += start()
        searches[0] += 1
        return search

    def result(policy: MultisetPolicy, search: OpponentSearch, upper: float, iterations: int,
               history: List[float], pricing_exact: bool, label: str, rows: int) -> OpponentCommitteeResult:
        cert = certify(model, policy, k, ties=ties, tol=tol)
        if upper < search.lower_bound - 1e-7:
            raise RuntimeError(f"committee: upper bound {upper!r} below the certified level {search.lower_bound!r}")
        upper = max(upper, search.lower_bound)  # solver rounding only (checked above)
        gap = upper - search.lower_bound
        return OpponentCommitteeResult(
            policy=policy, robust_level=search.level, exploitability=None, iterations=iterations,
            wall_time=clock(), converged=gap <= max(tol, 1e-9) and search.exact, certificate=cert,
            method=f"row and column generation ({label} pricing, {search.method} opponents)", k=k, ties=ties,
            evaluations=game.calls + searches[0], history=tuple(history), upper_bound=upper, gap=gap,
            exact=pricing_exact and search.exact, pricing=label, opponent_k=opponent_k, opponent=search.opponent,
            lower_bound=search.lower_bound, opponents_generated=rows)

    if not repeats and k >= m:
        # all responses maximise every P[S ≻ Y] at once, so for the worst Y found no
        # committee policy beats P[all ≻ Y]: that value bounds the optimum
        policy = MultisetPolicy([list(_padded(tuple(range(m)), k))], [1.0])
        search = worst(policy)
        return result(policy, search, search.level, 0, [search.level - search.lower_bound], True, "closed form", 0)

    everything: List[Tuple[int, ...]] = []
    if pricing == "exact" and not ranking:
        combine = itertools.combinations_with_replacement if repeats else itertools.combinations
        everything = list(combine(range(m), size))
    core = _core_loader.core()

    def price(q: Array, rows: List[Tuple[int, ...]], t: float) -> Tuple[List[Tuple[Tuple[int, ...], float]],
                                                                          float, bool]:
        """((committee, P[S ≻ X_q]) for the best committees found, a bound on
        ``max_S P[S ≻ X_q]``, whether it is exact), ``X_q`` drawing row ``Y`` with
        probability ``q_Y``."""
        support = q > 0
        mixture = MultisetPolicy([list(Y) for Y, kept in zip(rows, support) if kept], normalised(q[support]))
        start = Clock()
        if pricing == "exact" and ranking:
            found, values, bound, finished, _ = core.price_opponent(
                model._store, as_operand(mixture, m, "opponent").parts(), game.code, k, np.zeros(0, dtype=np.int64),
                _PRICING_COLUMNS, _MAX_NODES, max(time_limit - spent[0], 0.0), t + tol / 2)
            out = [(_padded(tuple(int(z) for z in S), k), float(v)) for S, v in zip(found, values)]
            outcome = out, float(bound), bool(finished)
        elif pricing == "exact":
            table = game.matrix(everything, rows) @ q
            order = np.argsort(table)[::-1][:_PRICING_COLUMNS]
            outcome = [(_padded(everything[j], k), float(table[j])) for j in order], float(table[order[0]]), True
        else:
            S = _greedy_generic(lambda S: game.against(S, mixture), size, m, repeats)
            value = game.against(S, mixture)
            factor = 1.0 - (1.0 - 1.0 / size) ** size
            outcome = [(_padded(S, k), value)], min(1.0, value / factor), False
        spent[0] += start()
        return outcome

    columns: List[Tuple[int, ...]] = [(y,) * k for y in range(m)] if repeats else \
        [_padded((y,), k) for y in range(m)]
    # one response repeated: outside "uniform" ties, the single-response opponent y
    rows: List[Tuple[int, ...]] = [(y,) * opponent_k for y in range(m)]
    best: Optional[Tuple[MultisetPolicy, OpponentSearch]] = None
    upper, pricing_exact, stopped = 1.0, False, False
    history: List[float] = []
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        rho, t, q = _master(game.matrix(columns, rows))
        keep = rho > 1e-15
        policy = MultisetPolicy([list(S) for S, kept in zip(columns, keep) if kept], normalised(rho[keep]))
        search = worst(policy)
        if best is None or search.lower_bound > best[1].lower_bound:
            best = policy, search
        if spent[0] >= time_limit or not search.exact:
            stopped = True
            break
        if search.level < t - _IMPROVES and search.opponent not in rows:
            rows.append(search.opponent)  # the rows so far overrate the policy
            continue
        found, bound, pricing_exact = price(q, rows, t)
        upper = min(upper, bound)
        history.append(upper - best[1].lower_bound)
        if upper - best[1].lower_bound <= tol:
            break
        if spent[0] >= time_limit:
            stopped = True
            break
        new = [S for S, value in found if value > t + _IMPROVES and S not in columns]
        if not new:
            break
        columns.extend(new)
    assert best is not None  # max_iter >= 1
    label = "greedy" if pricing == "greedy" else "branch and bound" if ranking else "enumeration"
    if stopped:
        label += " (stopped by the time limit)"
    return result(best[0], best[1], upper, iterations, history, pricing_exact, label, len(rows))
