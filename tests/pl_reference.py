"""30-digit mpmath references for Plackett–Luce product integrals (SPEC.md §2.2),
written from the formulas and sharing no code with ualign.

    P_i[y > pi^k]          = int_0^inf e(y) e^{-e(y) t} phi_pi(t)^k dt
    P_i[pi^k > sigma^l]    = int_0^inf k phi_pi(t)^{k-1} psi_pi(t) phi_sigma(t)^l dt

Both are integrated with mpmath's tanh-sinh quadrature (``mp.quad``) in
``s = log t`` at 30 significant digits, split at the members' scales
``-log e(z)`` (at most every 2 units, and every 6 units in between) so that
each piece is smooth.

``python tests/pl_reference.py`` regenerates ``tests/data/pl_mpmath.json``
(instances are rebuilt from their seeds by :func:`instance`); the test suite
reads that table and also recomputes a few entries live.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import mpmath as mp
import numpy as np

DIGITS = 30
TABLE = Path(__file__).resolve().parent / "data" / "pl_mpmath.json"


def instance(seed: int, m: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewards spread over [-20, 20] (both ends attained), and two policies with zeros."""
    rng = np.random.default_rng(seed)
    rewards = rng.uniform(-20.0, 20.0, size=m)
    rewards[rng.permutation(m)[:2]] = [-20.0, 20.0]
    pi = rng.random(m) * (rng.random(m) < 0.75)
    if pi.sum() == 0:
        pi[0] = 1.0
    sigma = rng.random(m) * (rng.random(m) < 0.75)
    if sigma.sum() == 0:
        sigma[-1] = 1.0
    return rewards, pi / pi.sum(), sigma / sigma.sum()


def _rates(rewards: Sequence[float]) -> List[Any]:
    top = max(rewards)
    return [mp.exp(mp.mpf(float(r)) - mp.mpf(float(top))) for r in rewards]


def _phi(rates: List[Any], policy: Sequence[float], t: Any) -> Any:
    return mp.fsum(mp.mpf(float(p)) * mp.exp(-e * t) for p, e in zip(policy, rates) if p != 0)


def _psi(rates: List[Any], policy: Sequence[float], t: Any) -> Any:
    return mp.fsum(mp.mpf(float(p)) * e * mp.exp(-e * t) for p, e in zip(policy, rates) if p != 0)


def _breaks(scales: List[float], k: int) -> List[float]:
    lo = min(scales) - 80.0 - math.log(k + 1)
    hi = max(scales) + 8.0
    points = [lo]
    for s in sorted(scales) + [hi]:
        while s - points[-1] > 6.0:
            points.append(points[-1] + 6.0)
        if s - points[-1] > 2.0 or s == hi:  # many nearby scales: one break is enough
            points.append(s)
    return points


def utility(rewards: Sequence[float], policy: Sequence[float], k: int, y: int) -> Any:
    """P[y > pi^k] for one type, at 30 digits."""
    with mp.workdps(DIGITS):
        e = _rates(rewards)

        def f(s: Any) -> Any:
            t = mp.exp(s)
            a = e[y] * t
            return a * mp.exp(-a) * _phi(e, policy, t) ** k

        scales = [float(-mp.log(e[z])) for z in range(len(e)) if policy[z] != 0] + [float(-mp.log(e[y]))]
        return mp.quad(f, _breaks(scales, k))


def product_win(rewards: Sequence[float], pi: Sequence[float], k: int, sigma: Sequence[float], l: int) -> Any:
    """P[pi^k > sigma^l] for one type, at 30 digits."""
    with mp.workdps(DIGITS):
        e = _rates(rewards)

        def f(s: Any) -> Any:
            t = mp.exp(s)
            return k * _phi(e, pi, t) ** (k - 1) * _psi(e, pi, t) * t * _phi(e, sigma, t) ** l

        scales = [float(-mp.log(e[z])) for z in range(len(e)) if pi[z] != 0 or sigma[z] != 0]
        return mp.quad(f, _breaks(scales, max(k, l)))


# (seed, m, k, l): utilities at k for every y, and P[pi^k > sigma^l]
CASES = [(1, 3, 1, 1), (2, 4, 2, 3), (3, 5, 3, 1), (4, 6, 8, 8), (5, 8, 8, 2), (6, 5, 16, 4),
         (7, 6, 32, 1), (8, 8, 64, 64), (9, 4, 64, 7), (10, 7, 5, 64), (11, 8, 12, 30), (12, 3, 64, 2)]


def build() -> Dict[str, Any]:
    entries = []
    for seed, m, k, l in CASES:
        rewards, pi, sigma = instance(seed, m)
        entries.append({
            "seed": seed, "m": m, "k": k, "l": l,
            "utilities": [mp.nstr(utility(rewards, pi, k, y), DIGITS) for y in range(m)],
            "product_win": mp.nstr(product_win(rewards, pi, k, sigma, l), DIGITS),
        })
    return {"digits": DIGITS, "cases": entries}


if __name__ == "__main__":
    TABLE.parent.mkdir(exist_ok=True)
    TABLE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {TABLE}")
