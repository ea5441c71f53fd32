"""Benchmark: OpenMP scaling, OMP_NUM_THREADS=1 vs 2 (short).

Each thread count runs in its own subprocess (OpenMP reads OMP_NUM_THREADS at
start-up). Measured: utilities (k=8, "uniform" and "strict") on n=100,000 x
m=1,000 random permutations, pairwise("uniform") on n=5,000 x m=1,000, and
the stream_sum bandwidth reference. Results must be bit-identical across
thread counts (the reductions are deterministic); this is checked too.

Run:  python bench/bench_threads.py [--quick]
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from _common import machine_line, print_table, random_orders, random_policy, timed

M, K = 1_000, 8


def child(n_util: int, n_pair: int) -> None:
    import numpy as np

    import ualign as ua

    orders = random_orders(n_util, M, seed=0)
    pop = ua.RankingPopulation.from_orders(orders)
    small = ua.RankingPopulation.from_orders(orders[:n_pair])
    pi = random_policy(M, seed=1)
    out = {"threads": ua._core.max_threads()}
    digest = hashlib.sha256()
    for ties in ("uniform", "strict"):
        wall, cpu, u = timed(lambda: pop.utilities(pi, K, ties), 3)
        out[f"utilities_{ties}"] = (wall, cpu)
        digest.update(np.asarray(u).tobytes())
    wall, cpu, p = timed(lambda: small.pairwise("uniform"), 2)
    out["pairwise_uniform"] = (wall, cpu)
    digest.update(np.asarray(p).tobytes())
    wall, cpu, _ = timed(lambda: ua._core.stream_sum(orders), 10)
    out["stream_sum"] = (wall, cpu)
    out["digest"] = digest.hexdigest()[:16]
    print(json.dumps(out))


def main() -> None:
    quick = "--quick" in sys.argv
    n_util, n_pair = (10_000, 1_000) if quick else (100_000, 5_000)
    if "--child" in sys.argv:
        child(n_util, n_pair)
        return
    print(f"bench_threads: utilities n={n_util:,} x m={M:,}, k={K}; pairwise n={n_pair:,} x m={M:,}")
    print(machine_line())
    results = {}
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        args = [sys.executable, os.path.abspath(__file__), "--child"] + (["--quick"] if quick else [])
        out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
        results[threads] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = []
    for key in ("utilities_uniform", "utilities_strict", "pairwise_uniform", "stream_sum"):
        (w1, c1), (w2, c2) = results[1][key], results[2][key]
        rows.append((key, w1 * 1e3, w2 * 1e3, w1 / w2, c1 * 1e3, c2 * 1e3))
    print()
    print_table(("kernel", "1 thread ms", "2 threads ms", "speed-up", "cpu ms (1)", "cpu ms (2)"), rows)
    same = results[1]["digest"] == results[2]["digest"]
    print(f"\nresults bit-identical across thread counts: {'yes' if same else 'NO'} "
          f"({results[1]['digest']} vs {results[2]['digest']}); best-of-3 wall (stream best of 10)")


if __name__ == "__main__":
    main()
