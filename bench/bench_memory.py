"""Benchmark: peak memory of building a ranking model and calling its kernels.

Each measurement runs in a fresh subprocess. The input (uint16 `orders` or
`ranks`, n x m) is loaded first; then the peak-RSS counter is reset
(`echo 5 > /proc/self/clear_refs`, Linux) and the step runs; the step's peak
is VmHWM - VmRSS(before), read from /proc/self/status. It counts every
allocation, C++ included (tracemalloc would only see Python/numpy buffers).

Compared with the compact storage `model.nbytes` (n*m*2 bytes for m <= 65536).
Target: peak <= 2 x compact storage + O(n + m). The O(n + m) allowance used
for the verdict is printed: 64 bytes * (n + m) + 8 MiB (per-voter level counts
and weights, per-thread scratch, OpenMP thread stacks, allocator slack).
pairwise returns an m x m float64 matrix, so its rows also show the peak
minus 8*m^2 bytes per m x m array it necessarily materialises (the result).

Run:  python bench/bench_memory.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from _common import machine_line, print_table, random_orders, random_policy

MiB = 1024 * 1024


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def child(step: str, path: str) -> None:
    import gc

    import ualign as ua

    data = np.load(path)
    n, m = data.shape
    pi = random_policy(m, seed=1)
    model = None
    if step in ("utilities", "pairwise"):
        model = ua.RankingPopulation.from_orders(data)
    gc.collect()
    before = _status()["VmRSS"]
    _reset_peak()
    if step == "build_orders":
        model = ua.RankingPopulation.from_orders(data)
    elif step == "build_ranks":
        model = ua.RankingPopulation(data)
    elif step == "utilities":
        for ties in ("uniform", "half", "strict", "weak"):
            model.utilities(pi, 8, ties)
    elif step == "pairwise":
        for ties in ("uniform", "strict"):
            model.pairwise(ties)
    status = _status()
    print(json.dumps({"n": n, "m": m, "input": int(data.nbytes), "peak": status["VmHWM"] - before,
                      "retained": status["VmRSS"] - before, "nbytes": int(model.nbytes)}))


def child_int64(path: str) -> None:
    """from_orders on int64 input: the int64 copy is made before the reset."""
    import gc

    import ualign as ua

    data = np.load(path).astype(np.int64)
    gc.collect()
    before = _status()["VmRSS"]
    _reset_peak()
    model = ua.RankingPopulation.from_orders(data)
    status = _status()
    print(json.dumps({"n": data.shape[0], "m": data.shape[1], "input": int(data.nbytes),
                      "peak": status["VmHWM"] - before, "retained": status["VmRSS"] - before,
                      "nbytes": int(model.nbytes)}))


def run(step: str, path: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", step, path],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--child" in sys.argv:
        step, path = sys.argv[sys.argv.index("--child") + 1:][:2]
        child_int64(path) if step == "build_orders_int64" else child(step, path)
        return
    quick = "--quick" in sys.argv
    n_big, n_pw, m = (10_000, 2_000, 1_000) if quick else (100_000, 10_000, 1_000)
    print(f"bench_memory: m={m:,}; build/utilities n={n_big:,}; pairwise n={n_pw:,}")
    print(machine_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big = random_orders(n_big, m, seed=0)
        p_orders = os.path.join(tmp, "orders.npy")
        p_ranks = os.path.join(tmp, "ranks.npy")
        p_small = os.path.join(tmp, "orders_small.npy")
        np.save(p_orders, big)
        np.save(p_ranks, big // 4)
        np.save(p_small, big[:n_pw])
        del big
        steps = (("from_orders (uint16)", "build_orders", p_orders),
                 ("from_orders (int64 input)", "build_orders_int64", p_orders),
                 ("RankingPopulation(ranks//4)", "build_ranks", p_ranks),
                 ("utilities x4 ties, k=8", "utilities", p_orders),
                 ("pairwise uniform+strict", "pairwise", p_small))
        for label, step, path in steps:
            r = run(step, path)
            n, nbytes = r["n"], r["nbytes"]
            allowance = 64 * (n + m) + 8 * MiB
            peak = r["peak"]
            extra_m2 = 8 * m * m if step == "pairwise" else 0
            budget = 2 * nbytes + allowance
            rows.append((label, f"{n:,}", f"{r['input'] / MiB:.0f}", f"{nbytes / MiB:.1f}",
                         f"{peak / MiB:.1f}", f"{peak / nbytes:.2f}",
                         f"{(peak - extra_m2) / MiB:.1f}" if extra_m2 else "-",
                         f"{budget / MiB:.0f}",
                         "yes" if peak - extra_m2 <= budget else "NO"))
    print()
    print_table(("step", "n", "input MiB", "compact MiB", "peak MiB", "peak/compact",
                 "peak-8m^2 MiB", "budget MiB", "met"), rows)
    print("\npeak = VmHWM - VmRSS before the step (input already resident); "
          "budget = 2 x compact + 64(n+m) B + 8 MiB")


if __name__ == "__main__":
    main()
