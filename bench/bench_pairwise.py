"""Benchmark: model.pairwise(ties), the m x m matrix P[y > z].

n = 10,000 voters x m = 1,000 responses (random permutations, built with
RankingPopulation.from_orders from uint16 orders), uniform weights and random
weights.

Baselines measured in the same run:

* numpy reference (main baseline): for each response y, the boolean matrix
  `Rt[y] < Rt` (Rt = ranks transposed, m x n, uint16) contracted with the
  weights by `np.einsum("zn,n->z", ...)` -- the fastest plain-numpy form found
  (it casts in buffered blocks and uses no BLAS). It gives the strict matrix
  S[y, z] = sum_i w_i 1[r_iy < r_iz]; the conventions follow from
  1[a<b] + 1[b<a] + 1[a==b] = 1 per voter:
      strict S,  weak 1 - S.T,  half = uniform = S + (1 - S - S.T) / 2
  (for singletons a tie is c/(c+d) = 1/2 under "uniform"). All four are checked
  against ualign to 1e-10.
* naive matmul loop: `S[y] = w @ (R[:, y:y+1] < R)` (the textbook form; casts the
  n x m boolean matrix to float64 and calls BLAS gemv). It is slow, so it is
  timed on the first ROWS_NAIVE rows and extrapolated x m/ROWS_NAIVE (stated in
  the table). It uses BLAS: run this script as
      env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_pairwise.py

Target: ualign >= 30x faster than the numpy reference.

Run:  python bench/bench_pairwise.py [--quick]
"""

from __future__ import annotations

import sys

import numpy as np

import ualign as ua
from _common import TIES, best_of, machine_line, print_table, random_orders, timed

N, M = 10_000, 1_000
ROWS_NAIVE = 50
TOL = 1e-10


def ranks_from_orders(orders: np.ndarray) -> np.ndarray:
    n, m = orders.shape
    ranks = np.empty_like(orders)
    np.put_along_axis(ranks, orders.astype(np.intp), np.arange(m, dtype=orders.dtype)[None, :], axis=1)
    return ranks


def reference_strict(Rt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """S[y, z] = sum_i w_i 1[r_iy < r_iz]; Rt is m x n."""
    m = Rt.shape[0]
    S = np.empty((m, m))
    for y in range(m):
        S[y] = np.einsum("zn,n->z", Rt[y] < Rt, w)
    return S


def reference_naive(R: np.ndarray, w: np.ndarray, rows: int) -> np.ndarray:
    S = np.empty((rows, R.shape[1]))
    for y in range(rows):
        S[y] = w @ (R[:, y:y + 1] < R)
    return S


def convention(S: np.ndarray, ties: str) -> np.ndarray:
    if ties == "strict":
        return S
    if ties == "weak":
        return 1.0 - S.T
    return S + 0.5 * (1.0 - S - S.T)     # "uniform" and "half" agree on singletons


def main() -> None:
    quick = "--quick" in sys.argv
    n = N // 10 if quick else N
    reps = 3
    print(f"bench_pairwise: n={n:,} x m={M:,}, n*m^2 = {n * M * M:.1e} comparisons")
    print(machine_line())
    orders = random_orders(n, M, seed=0)
    pop_uniform = ua.RankingPopulation.from_orders(orders)
    w_random = np.random.default_rng(2).random(n) + 0.05
    pop_random = ua.RankingPopulation.from_orders(orders, weights=w_random)
    R = ranks_from_orders(orders)
    Rt = np.ascontiguousarray(R.T)

    rows = []
    other = []
    for label, pop, w in (("uniform", pop_uniform, np.full(n, 1.0 / n)),
                          ("random", pop_random, w_random / w_random.sum())):
        t_ref, S = best_of(lambda: reference_strict(Rt, w), 1)
        t_naive_part, S_naive = best_of(lambda: reference_naive(R, w, ROWS_NAIVE), 1)
        if not np.max(np.abs(S_naive - S[:ROWS_NAIVE])) <= TOL:
            raise SystemExit(f"MISMATCH naive vs einsum reference ({label} weights)")
        t_naive = t_naive_part * M / ROWS_NAIVE
        worst = 0.0
        times = {}
        cpu = {}
        for ties in TIES:
            t, c, got = timed(lambda: pop.pairwise(ties), reps)
            times[ties], cpu[ties] = t, c
            err = float(np.max(np.abs(np.asarray(got) - convention(S, ties))))
            worst = max(worst, err)
            if not err <= TOL:
                raise SystemExit(f"MISMATCH {label} weights / {ties}: max |ualign - numpy| = {err:.3e}")
        t_ua = times["uniform"]
        rows.append((label, t_ua, cpu["uniform"], t_ref, t_ref / t_ua, t_naive, t_naive / t_ua,
                     "yes" if t_ref / t_ua >= 30 else "NO", f"{worst:.1e}"))
        other.append((label,) + tuple(times[t] for t in TIES))
    print()
    print_table(("weights", "ualign s", "(cpu s)", "numpy s", "numpy/ualign", "naive s*", "naive/ualign",
                 ">=30x", "max err"), rows)
    print(f"\nualign: best of {reps} wall (cpu: best process CPU time, both threads), ties='uniform'; "
          "numpy reference: 1 run (also the check).")
    print(f"* naive matmul loop timed on {ROWS_NAIVE} of {M} rows, extrapolated x{M // ROWS_NAIVE}.")
    print(f"\nualign wall time per tie convention (one kernel serves all four; best of {reps}), seconds:")
    print_table(("weights",) + TIES, other)
    print(f"all four conventions agree with the numpy reference to {TOL}")


if __name__ == "__main__":
    main()
