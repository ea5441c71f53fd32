"""30-digit mpmath references for Plackett–Luce product integrals, written from
the formulas and sharing no code with ualign.

    P_i[y > pi^k]          = int_0^inf e(y) e^{-e(y) t} phi_pi(t)^k dt
    P_i[pi^k > sigma^l]    = int_0^inf k phi_pi(t)^{k-1} psi_pi(t) phi_sigma(t)^l dt

(exponential clocks: the k draws of pi^k fire at the minimum of k independent
Exp(e(z)) clocks; phi_pi(t) = sum_z pi(z) e^{-e(z) t}, psi_pi = -phi_pi'). Both
are integrated with mpmath's tanh-sinh quadrature (``mp.quad``) in ``s = log t``,
split at the members' scales ``-log e(z)`` (at most every 2 units, and every 6
units in between) so that each piece is smooth. Only the windows where the
integrand lives are integrated: ``[c - 80 - log(k + 1), c + 8]`` around the scale
``c`` of ``y`` (utilities) or of each member of ``pi`` (product against product);
outside them the integrand is below ``e^-80 / (k + 1)`` (left) or
``e^8 exp(-e^8)`` (right). Each window is integrated in the frame of its own
top member (rates ``exp(r(z) - r(top))``, taken exactly from the float rewards),
so rewards 1e300 apart cost no more digits than rewards 1 apart. The working
precision is 30 digits plus those of ``k`` (``phi^k`` near ``phi = 1``).

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


def _clocks(rho: List[Any], u: Any) -> Tuple[List[Any], List[Any]]:
    """Rates a = exp(rho + u) at t = e^u in a window's frame, and e^{-a} (0 once
    a > e^30: below 10^(-10^12), which mpmath need not evaluate)."""
    a = [mp.exp(r + u) for r in rho]
    return a, [mp.exp(-x) if r + u < 30 else mp.mpf(0) for x, r in zip(a, rho)]


def _distribution(policy: Sequence[float]) -> List[Any]:
    """The policy divided by its exact sum: float entries never sum to exactly 1,
    and (sum pi)^k would be off by k |sum pi - 1| (~1e-16 k): the whole answer at
    k ~ 1e16."""
    p = [mp.mpf(float(x)) for x in policy]
    total = mp.fsum(p)
    return [x / total for x in p]


def _phi(policy: List[Any], E: List[Any]) -> Any:
    return mp.fsum(p * x for p, x in zip(policy, E) if p != 0)


def _psi_t(policy: List[Any], a: List[Any], E: List[Any]) -> Any:
    return mp.fsum(p * x * y for p, x, y in zip(policy, a, E) if p != 0)


def _integrate(f: Any, rewards: Sequence[float], centres: List[int], members: List[int], k: int) -> Any:
    """Sum over the windows around `centres` of int f(rho, u) du, where rho are the
    log-rates relative to the window's top centre and t = e^u in that frame."""
    reach = 80 + math.log(k + 1)
    order = sorted(centres, key=lambda z: -rewards[z])
    groups: List[List[int]] = []
    for z in order:  # windows that overlap share a frame
        if groups and rewards[groups[-1][-1]] - rewards[z] <= reach + 8:
            groups[-1].append(z)
        else:
            groups.append([z])
    total = []
    for group in groups:
        top = mp.mpf(float(rewards[group[0]]))
        rho = [mp.mpf(float(r)) - top for r in rewards]
        hi = -rho[group[-1]] + 8
        points = [mp.mpf(-reach)]
        for c in sorted(-rho[z] for z in members if -reach < -rho[z] < hi) + [hi]:
            while c - points[-1] > 6:
                points.append(points[-1] + 6)
            if c - points[-1] > 2 or c == hi:  # many nearby scales: one break is enough
                points.append(c)
        total.append(mp.quad(lambda u, rho=rho: f(rho, u), points))
    return mp.fsum(total)


def utility(rewards: Sequence[float], policy: Sequence[float], k: int, y: int) -> Any:
    """P[y > pi^k] for one type, at 30 digits."""
    with mp.workdps(DIGITS + len(str(k))):
        p = _distribution(policy)

        def f(rho: List[Any], u: Any) -> Any:
            a, E = _clocks(rho, u)
            return a[y] * E[y] * _phi(p, E) ** k

        members = [z for z in range(len(rewards)) if policy[z] != 0] + [y]
        return _integrate(f, rewards, [y], members, k)


def product_win(rewards: Sequence[float], pi: Sequence[float], k: int, sigma: Sequence[float], l: int) -> Any:
    """P[pi^k > sigma^l] for one type, at 30 digits."""
    with mp.workdps(DIGITS + len(str(max(k, l)))):
        p, q = _distribution(pi), _distribution(sigma)

        def f(rho: List[Any], u: Any) -> Any:
            a, E = _clocks(rho, u)
            return k * _phi(p, E) ** (k - 1) * _psi_t(p, a, E) * _phi(q, E) ** l

        centres = [z for z in range(len(rewards)) if pi[z] != 0]
        members = [z for z in range(len(rewards)) if pi[z] != 0 or sigma[z] != 0]
        return _integrate(f, rewards, centres, members, max(k, l))


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
