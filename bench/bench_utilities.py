"""Benchmark: model.utilities(pi, k, ties) on a large ranking population.

n = 100,000 voters x m = 1,000 responses (10^8 entries), k = 8, every tie
convention, on two populations built from the same uint16 `orders`:

* "orders": RankingPopulation.from_orders(orders)      -- strict rankings
* "ties":   RankingPopulation(orders // 4)             -- weak orders, 250 levels of 4

Baselines measured in the same run:

* numpy reference: a chunked, vectorised numpy evaluation of the closed forms of
  docs/concepts.md, "Tie conventions" (mass by level, reverse cumsum for L, the convention's formula,
  then a weighted scatter/sum back to responses). Its result is checked against
  ualign to 1e-10 before anything is timed.
* stream: ualign._core.stream_sum(orders) -- one pass over the same 2*10^8 bytes
  of uint16; the floor for any O(n*m) kernel.

Targets: ualign >= 50x faster than the numpy reference; ualign <= 3x stream.

Run:  python bench/bench_utilities.py [--quick]
"""

from __future__ import annotations

import sys
import time

import numpy as np

import ualign as ua
from _common import TIES, best_of, machine_line, print_table, random_orders, random_policy, timed

N, M, K = 100_000, 1_000, 8
CHUNK = 2_048  # voters per numpy chunk (bounds the reference's memory to ~100 MB)
TOL = 1e-10


# ---------------------------------------------------------------------------
# numpy reference (the closed forms of docs/concepts.md), L = mass strictly below, E = tied
# ---------------------------------------------------------------------------
def closed_form(L: np.ndarray, E: np.ndarray, k: int, ties: str) -> np.ndarray:
    if ties == "strict":
        return L**k
    if ties == "weak":
        return (L + E) ** k
    if ties == "half":
        return 0.5 * (L**k + (L + E) ** k)
    # uniform: (1/(k+1)) sum_{j=0..k} (L+E)^j L^(k-j), by Horner (no cancellation)
    A = L + E
    s = np.ones_like(L)
    a_pow = np.ones_like(L)
    for _ in range(k):
        a_pow *= A
        s *= L
        s += a_pow
    s /= k + 1
    return s


def reference_orders(orders: np.ndarray, pi: np.ndarray, k: int, ties: str, w: np.ndarray) -> np.ndarray:
    """Strict rankings given as orders (best first): gather mass by position."""
    n, m = orders.shape
    out = np.zeros(m)
    for s in range(0, n, CHUNK):
        O = orders[s:s + CHUNK]
        P = pi[O]                                     # policy mass by position
        suffix = np.cumsum(P[:, ::-1], axis=1)[:, ::-1]  # mass at positions >= p
        L = np.zeros_like(P)
        L[:, :-1] = suffix[:, 1:]                     # mass strictly below
        F = closed_form(L, P, k, ties)
        F *= w[s:s + CHUNK, None]
        out += np.bincount(O.ravel(), weights=F.ravel(), minlength=m)
    return out


def reference_ranks(ranks: np.ndarray, pi: np.ndarray, k: int, ties: str, w: np.ndarray) -> np.ndarray:
    """Weak orders given as ranks < m (lower is better, equal ties): mass per level
    by a per-row bincount, reverse cumsum over levels, gather back to responses."""
    n, m = ranks.shape
    out = np.zeros(m)
    for s in range(0, n, CHUNK):
        Rk = ranks[s:s + CHUNK].astype(np.intp)
        c = Rk.shape[0]
        flat = Rk + (np.arange(c) * m)[:, None]
        mass = np.bincount(flat.ravel(), weights=np.broadcast_to(pi, (c, m)).ravel(),
                           minlength=c * m).reshape(c, m)   # mass[i, r] = pi(level r)
        suffix = np.cumsum(mass[:, ::-1], axis=1)[:, ::-1]
        L = np.zeros_like(mass)
        L[:, :-1] = suffix[:, 1:]
        F = closed_form(L, mass, k, ties)                  # per (voter, level)
        V = np.take_along_axis(F, Rk, axis=1)              # per (voter, response)
        out += np.einsum("i,ij->j", w[s:s + CHUNK], V)      # no BLAS
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    n = N // 10 if quick else N
    reps_ua, reps_stream = (5, 10)
    print(f"bench_utilities: n={n:,} x m={M:,} ({n * M:.1e} entries), k={K}")
    print(machine_line())

    t0 = time.perf_counter()
    orders = random_orders(n, M, seed=0)
    ranks = orders // 4                                   # uint16, 250 tied levels of 4
    pi = random_policy(M, seed=1)
    w = np.full(n, 1.0 / n)
    t_build_orders, pop_orders = best_of(lambda: ua.RankingPopulation.from_orders(orders), 1)
    t_build_ranks, pop_ties = best_of(lambda: ua.RankingPopulation(ranks), 1)
    print(f"data {time.perf_counter() - t0:.1f}s; build from_orders {t_build_orders:.3f}s, "
          f"from ranks (ties) {t_build_ranks:.3f}s; compact storage {pop_orders.nbytes / 1e6:.0f} MB")

    t_stream, _ = best_of(lambda: ua._core.stream_sum(orders), reps_stream)
    print(f"stream_sum over uint16 orders ({orders.nbytes / 1e6:.0f} MB): {t_stream * 1e3:.1f} ms "
          f"({orders.nbytes / t_stream / 1e9:.1f} GB/s)\n")

    rows = []
    worst_err = 0.0
    variants = (("orders", pop_orders, lambda t: reference_orders(orders, pi, K, t, w)),
                ("ties", pop_ties, lambda t: reference_ranks(ranks, pi, K, t, w)))
    for name, pop, ref in variants:
        for ties in TIES:
            # The reference runs once: it is both the correctness check and its timing.
            t_ref, expected = best_of(lambda: ref(ties), 1)
            t_ua, cpu_ua, got = timed(lambda: pop.utilities(pi, K, ties), reps_ua)
            err = float(np.max(np.abs(np.asarray(got) - np.asarray(expected))))
            worst_err = max(worst_err, err)
            if not err <= TOL:
                raise SystemExit(f"MISMATCH {name}/{ties}: max |ualign - numpy| = {err:.3e} > {TOL}")
            rows.append((name, ties, t_ua * 1e3, cpu_ua * 1e3, t_ref * 1e3, t_ref / t_ua, t_ua / t_stream,
                         "yes" if t_ref / t_ua >= 50 else "NO", "yes" if t_ua / t_stream <= 3 else "NO",
                         f"{err:.1e}"))
    print_table(("data", "ties", "ualign ms", "(cpu ms)", "numpy ms", "numpy/ualign", "ualign/stream",
                 ">=50x", "<=3x", "max err"), rows)
    print(f"\nall results agree with the numpy reference (max abs error {worst_err:.1e} <= {TOL})")
    print(f"best of {reps_ua} (ualign), {reps_stream} (stream), 1 (numpy reference); "
          "ratios use wall time; (cpu ms) = best process CPU time of the ualign call, all threads")


if __name__ == "__main__":
    main()
