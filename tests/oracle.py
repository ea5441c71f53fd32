"""Brute-force reference implementation of the win rates, utilities and game
quantities of docs/concepts.md, written straight from the definitions and sharing
no code with ualign.

Operands are described with the small classes below (or a plain ``int`` response,
or a sequence of ints = a multiset). Every operand is expanded into an explicit
list of ``(probability, multiset)`` pairs — Product operands by enumerating all
``k``-tuples of draws with ``itertools.product`` — and every win probability is
``E_{i~D} E_{S,T} (1[best_i(S) < best_i(T)] + tie value)`` evaluated term by term
with ``math.fsum``. Nothing here is fast; keep instances small.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

TIES = ("uniform", "half", "strict", "weak")


@dataclass(frozen=True)
class Prod:
    """``k`` i.i.d. draws from ``policy``."""

    policy: Tuple[float, ...]
    k: int


@dataclass(frozen=True)
class Multi:
    """A distribution over multisets (ragged sizes, empty multisets allowed)."""

    multisets: Tuple[Tuple[int, ...], ...]
    probabilities: Tuple[float, ...]


@dataclass(frozen=True)
class Mix:
    """Draw ``t`` with ``probabilities[t]``, then ``k`` draws from ``policies[t]``."""

    policies: Tuple[Tuple[float, ...], ...]
    probabilities: Tuple[float, ...]
    k: int


def prod(policy: Sequence[float], k: int) -> Prod:
    return Prod(tuple(float(p) for p in policy), int(k))


def multi(multisets: Sequence[Sequence[int]], probabilities: Sequence[float]) -> Multi:
    return Multi(tuple(tuple(int(s) for s in ms) for ms in multisets),
                 tuple(float(p) for p in probabilities))


def mix(policies: Sequence[Sequence[float]], probabilities: Sequence[float], k: int) -> Mix:
    return Mix(tuple(tuple(float(p) for p in pi) for pi in policies),
               tuple(float(p) for p in probabilities), int(k))


# ---------------------------------------------------------------------------
# Operands as explicit distributions over multisets
# ---------------------------------------------------------------------------
def _product_terms(policy: Sequence[float], k: int, scale: float) -> List[Tuple[float, Tuple[int, ...]]]:
    m = len(policy)
    terms = []
    # Every k-tuple of draws; zero-probability tuples contribute exactly 0 and are skipped.
    for draws in itertools.product(range(m), repeat=k):
        p = scale
        for d in draws:
            p *= policy[d]
        if p != 0.0:
            terms.append((p, tuple(draws)))
    return terms


def expand(operand: Any) -> List[Tuple[float, Tuple[int, ...]]]:
    """The operand as a list of (probability, multiset) terms."""
    if isinstance(operand, Prod):
        return _product_terms(operand.policy, operand.k, 1.0)
    if isinstance(operand, Mix):
        terms: List[Tuple[float, Tuple[int, ...]]] = []
        for q, pi in zip(operand.probabilities, operand.policies):
            if q != 0.0:
                terms.extend(_product_terms(pi, operand.k, q))
        return terms
    if isinstance(operand, Multi):
        return [(p, ms) for p, ms in zip(operand.probabilities, operand.multisets) if p != 0.0]
    if isinstance(operand, (int, np.integer)):
        return [(1.0, (int(operand),))]
    return [(1.0, tuple(int(s) for s in operand))]


def compress(terms: List[Tuple[float, Tuple[int, ...]]]) -> List[Tuple[float, Tuple[int, ...]]]:
    """Merge terms whose multisets are equal (same members, any order): the order of the
    draws is irrelevant to best_i and c_i."""
    merged: Dict[Tuple[int, ...], List[float]] = {}
    for p, ms in terms:
        merged.setdefault(tuple(sorted(ms)), []).append(p)
    return [(math.fsum(ps), ms) for ms, ps in merged.items()]


# ---------------------------------------------------------------------------
# One voter
# ---------------------------------------------------------------------------
def best_and_count(row: Sequence[Any], multiset: Sequence[int]) -> Tuple[Any, int]:
    """best_i(S) = min rank over S (+inf if empty) and c_i(S) = members at that rank."""
    if len(multiset) == 0:
        return math.inf, 0
    best = min(row[s] for s in multiset)
    return best, sum(1 for s in multiset if row[s] == best)


def tie_value(c_s: int, c_t: int, ties: str) -> float:
    if ties == "uniform":
        return 0.5 if c_s + c_t == 0 else c_s / (c_s + c_t)
    if ties == "half":
        return 0.5
    if ties == "strict":
        return 0.0
    if ties == "weak":
        return 1.0
    raise ValueError(ties)


def voter_win(row: Sequence[Any], s: Sequence[int], t: Sequence[int], ties: str) -> float:
    """P_i[S > T] for fixed multisets S, T."""
    b_s, c_s = best_and_count(row, s)
    b_t, c_t = best_and_count(row, t)
    if b_s < b_t:
        return 1.0
    if b_s > b_t:
        return 0.0
    return tie_value(c_s, c_t, ties)


def _rows(ranks: Any) -> List[List[Any]]:
    array = np.asarray(ranks)
    # Python scalars: ints stay exact ints, floats stay floats.
    return [[v.item() for v in row] for row in array]


def _weights(weights: Any, n: int) -> List[float]:
    if weights is None:
        return [1.0 / n] * n
    w = [float(x) for x in np.asarray(weights, dtype=np.float64)]
    total = math.fsum(w)
    return [x / total for x in w]


# ---------------------------------------------------------------------------
# Population quantities
# ---------------------------------------------------------------------------
def _win_rate_terms(rows: List[List[Any]], w: List[float], terms_a: List[Tuple[float, Tuple[int, ...]]],
                    terms_b: List[Tuple[float, Tuple[int, ...]]], ties: str) -> float:
    per_voter = []
    for wi, row in zip(w, rows):
        keys_b = [(q, best_and_count(row, t)) for q, t in terms_b]
        total = []
        for p, s in terms_a:
            b_s, c_s = best_and_count(row, s)
            for q, (b_t, c_t) in keys_b:
                if b_s < b_t:
                    v = 1.0
                elif b_s > b_t:
                    v = 0.0
                else:
                    v = tie_value(c_s, c_t, ties)
                if v:
                    total.append(p * q * v)
        per_voter.append(wi * math.fsum(total))
    return math.fsum(per_voter)


def win_rate(ranks: Any, weights: Any, a: Any, b: Any, ties: str = "uniform") -> float:
    """P[A > B] = E_i E_{S~A, T~B} (1[best_i(S) < best_i(T)] + tie value)."""
    rows = _rows(ranks)
    return _win_rate_terms(rows, _weights(weights, len(rows)), compress(expand(a)), compress(expand(b)), ties)


def beats(ranks: Any, weights: Any, operand: Any, ties: str = "uniform") -> np.ndarray:
    """out[y] = P[y > X] for every response y."""
    rows = _rows(ranks)
    w = _weights(weights, len(rows))
    terms = compress(expand(operand))
    return np.array([_win_rate_terms(rows, w, expand(y), terms, ties) for y in range(len(rows[0]))])


def utilities(ranks: Any, weights: Any, policy: Sequence[float], k: int, ties: str = "uniform") -> np.ndarray:
    """u[y] = P[y > pi^{(x)k}]."""
    return beats(ranks, weights, prod(policy, k), ties)


def pairwise(ranks: Any, weights: Any, ties: str = "uniform") -> np.ndarray:
    """M[y, z] = P[y > z]."""
    m = np.asarray(ranks).shape[1]
    return np.array([[win_rate(ranks, weights, y, z, ties) for z in range(m)] for y in range(m)])


def robust_level(ranks: Any, weights: Any, policy: Any, k: Any = None, ties: str = "uniform") -> float:
    """f(pi, k) = min_y P[pi^{(x)k} > y], computed directly (no mirrored convention).

    ``policy`` is a probability vector (with ``k``) or an oracle operand (``k`` None)."""
    operand = prod(policy, k) if k is not None else policy
    m = np.asarray(ranks).shape[1]
    return min(win_rate(ranks, weights, operand, y, ties) for y in range(m))


def best_response(ranks: Any, weights: Any, policy: Sequence[float], k: int,
                  ties: str = "uniform") -> Tuple[int, float]:
    u = utilities(ranks, weights, policy, k, ties)
    y = int(np.argmax(u))
    return y, float(u[y])


def exploitability(ranks: Any, weights: Any, policy: Sequence[float], k: int, ties: str = "uniform") -> float:
    u = utilities(ranks, weights, policy, k, ties)
    return float(max(u) - math.fsum(float(p) * float(v) for p, v in zip(policy, u)))


def dense_levels(keys: Any, higher_is_better: bool = False) -> np.ndarray:
    """levels[i, y] = number of distinct values strictly better than keys[i, y]."""
    rows = _rows(keys)
    out = np.zeros((len(rows), len(rows[0])), dtype=np.int64)
    for i, row in enumerate(rows):
        values = sorted(set(row), reverse=higher_is_better)
        for y, v in enumerate(row):
            out[i, y] = values.index(v)
    return out


def ranks_from_orders(orders: Any) -> np.ndarray:
    """ranks[i, orders[i, p]] = p."""
    orders = np.asarray(orders)
    ranks = np.empty(orders.shape, dtype=np.int64)
    for i in range(orders.shape[0]):
        for p in range(orders.shape[1]):
            ranks[i, orders[i, p]] = p
    return ranks


# ---------------------------------------------------------------------------
# Opponents with several outputs (Cai & Zheng, arXiv:2601.08777, §D.7)
# ---------------------------------------------------------------------------
def opponent_level(ranks: Any, weights: Any, policy: Any, k: Any, opponent_k: int,
                   ties: str = "uniform") -> Tuple[float, List[Tuple[int, ...]]]:
    """f_l(pi, k) = min over multisets Y of l responses of P[pi^{(x)k} > Y], computed
    directly (every Y, every k-tuple of draws, every voter), and every Y attaining it.

    ``policy`` is a probability vector (with ``k``) or an oracle operand (``k`` None)."""
    operand = prod(policy, k) if k is not None else policy
    m = np.asarray(ranks).shape[1]
    values = {Y: win_rate(ranks, weights, operand, list(Y), ties)
              for Y in itertools.combinations_with_replacement(range(m), opponent_k)}
    level = min(values.values())
    return level, [Y for Y, v in values.items() if v == level]


def multiset_gradient(ranks: Any, weights: Any, multiset: Sequence[int], policy: Sequence[float], k: int,
                      ties: str = "uniform") -> np.ndarray:
    """d/dpi_z of P[Y > pi^{(x)k}] = sum over k-tuples d of prod_j pi[d_j] P[Y > d], the
    policy's entries taken as free variables (product rule term by term)."""
    rows = _rows(ranks)
    w = _weights(weights, len(rows))
    m = len(policy)
    grad: List[List[float]] = [[] for _ in range(m)]
    for draws in itertools.product(range(m), repeat=k):
        value = math.fsum(wi * voter_win(row, list(multiset), draws, ties) for wi, row in zip(w, rows))
        for j, z in enumerate(draws):
            p = value
            for jj, d in enumerate(draws):
                if jj != j:
                    p *= policy[d]
            grad[z].append(p)
    return np.array([math.fsum(g) for g in grad])
