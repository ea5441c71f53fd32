"""Brute-force Plackett–Luce reference (docs/concepts.md, "The alignment game"), straight from the definition
and sharing no code with ualign:

    P[A > B] = E_{i~D} E_{S~A, T~B} W_i(S) / (W_i(S) + W_i(T)),   W_i(S) = sum_{z in S} exp(r_i(z))

with two empty multisets counting 1/2. Operands are expanded into explicit
``(probability, multiset)`` lists by ``oracle.expand`` (products by enumerating
every k-tuple of draws), and every sum is a ``math.fsum``. Keep instances small.
"""

from __future__ import annotations

import math
from typing import Any, List, Sequence, Tuple

import numpy as np

import oracle


def _weights(weights: Any, n: int) -> List[float]:
    if weights is None:
        return [1.0 / n] * n
    w = [float(x) for x in np.asarray(weights, dtype=np.float64)]
    total = math.fsum(w)
    return [x / total for x in w]


def voter_win(rewards: Sequence[float], s: Sequence[int], t: Sequence[int]) -> float:
    """W(S) / (W(S) + W(T)) for one type (rates relative to the largest member, so
    nothing under- or overflows for rewards within a few hundred of each other)."""
    if not s and not t:
        return 0.5
    if not t:
        return 1.0
    if not s:
        return 0.0
    top = max(rewards[z] for z in list(s) + list(t))
    ws = math.fsum(math.exp(rewards[z] - top) for z in s)
    wt = math.fsum(math.exp(rewards[z] - top) for z in t)
    return ws / (ws + wt)


def win_rate(rewards: Any, weights: Any, a: Any, b: Any) -> float:
    rows = [[float(v) for v in row] for row in np.asarray(rewards, dtype=np.float64)]
    w = _weights(weights, len(rows))
    terms_a = oracle.compress(oracle.expand(a))
    terms_b = oracle.compress(oracle.expand(b))
    return math.fsum(wi * math.fsum(p * q * voter_win(row, s, t) for p, s in terms_a for q, t in terms_b)
                     for wi, row in zip(w, rows))


def beats(rewards: Any, weights: Any, operand: Any) -> np.ndarray:
    m = np.asarray(rewards).shape[1]
    return np.array([win_rate(rewards, weights, y, operand) for y in range(m)])


def utilities(rewards: Any, weights: Any, policy: Sequence[float], k: int) -> np.ndarray:
    return beats(rewards, weights, oracle.prod(policy, k))


def pairwise(rewards: Any, weights: Any) -> np.ndarray:
    m = np.asarray(rewards).shape[1]
    return np.array([[win_rate(rewards, weights, y, z) for z in range(m)] for y in range(m)])


def utilities_gradient(rewards: Any, weights: Any, policy: Sequence[float], k: int,
                       q: Sequence[float]) -> np.ndarray:
    """d/dpi_z sum_y q_y u_y(pi), u_y = P[y > pi^k] read as a degree-k polynomial in pi:
    by the product rule over the k draws, d u_y / d pi_z = k P[y > {z} + pi^(k-1)]."""
    m = len(policy)
    rows = [[float(v) for v in row] for row in np.asarray(rewards, dtype=np.float64)]
    w = _weights(weights, len(rows))
    rest: List[Tuple[float, Tuple[int, ...]]] = (
        oracle.compress(oracle.expand(oracle.prod(policy, k - 1))) if k > 1 else [(1.0, ())])
    out = []
    for z in range(m):
        terms = [(p, (z,) + s) for p, s in rest]
        total = math.fsum(float(q[y]) * math.fsum(
            wi * math.fsum(p * voter_win(row, (y,), s) for p, s in terms) for wi, row in zip(w, rows))
            for y in range(m))
        out.append(k * total)
    return np.array(out)
