"""Benchmark: model.utilities_vjp(pi, k, q, ties) -- the utilities and the gradient
g = d/dpi sum_y q[y] u_y(pi) in one pass -- on a large ranking population.

n = 100,000 voters x m = 1,000 responses, k = 8, every tie convention, on the two
populations of bench_utilities.py (same uint16 `orders`):

* "orders": RankingPopulation.from_orders(orders)   -- strict rankings
* "ties":   RankingPopulation(orders // 4)          -- weak orders, 250 levels of 4

Measured in the same run:

* utilities: model.utilities(pi, k, ties), the value alone (the floor of the VJP);
* old VJP (with --old PATH): utilities_vjp of another build of ualign -- PATH is
  put on PYTHONPATH of a subprocess that times the same populations, e.g. a
  checkout of the previous kernels (one voter at a time) with its built core.

Checked before anything is reported: on the first 2,048 voters, (u, g) against a
chunked numpy evaluation of the closed forms (mass per level, reverse cumsum for
L, f and its partial derivatives per level, prefix sum of W df/dL over better
levels, gather) to 1e-10; on the full population u == utilities bit for bit and,
with --old, (u, g) == the old build's to 1e-10.

Run:  python bench/bench_vjp.py [--quick] [--old PATH]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, Tuple

import numpy as np

import ualign as ua
from _common import TIES, machine_line, print_table, random_orders, random_policy, timed

N, M, K = 100_000, 1_000, 8
CHECK_VOTERS = 2_048
TOL = 1e-10


def instance(n: int) -> Tuple[Dict[str, ua.RankingPopulation], np.ndarray, np.ndarray]:
    orders = random_orders(n, M, seed=0)
    populations = {"orders": ua.RankingPopulation.from_orders(orders), "ties": ua.RankingPopulation(orders // 4)}
    q = np.random.default_rng(2).standard_normal(M)
    return populations, random_policy(M, seed=1), q


# ---------------------------------------------------------------------------
# numpy reference: per (voter, level) L = mass strictly below, E = mass tied,
# W = q-mass; u gathers f, g gathers sum_{better levels} W df/dL + W df/dE.
# ---------------------------------------------------------------------------
def closed_forms(L: np.ndarray, E: np.ndarray, k: int, ties: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    A = L + E
    if ties == "strict":
        return L**k, k * L ** (k - 1), np.zeros_like(L)
    if ties == "weak":
        return A**k, k * A ** (k - 1), k * A ** (k - 1)
    if ties == "half":
        return 0.5 * (L**k + A**k), 0.5 * k * (L ** (k - 1) + A ** (k - 1)), 0.5 * k * A ** (k - 1)
    # uniform: f = sum_{j<=k} A^j L^(k-j) / (k+1), df/dL = sum_{j<k} A^j L^(k-1-j),
    # df/dE = sum_{j=1..k} j A^(j-1) L^(k-j) / (k+1)
    f = sum(A**j * L ** (k - j) for j in range(k + 1)) / (k + 1)
    dL = sum(A**j * L ** (k - 1 - j) for j in range(k))
    dE = sum(j * A ** (j - 1) * L ** (k - j) for j in range(1, k + 1)) / (k + 1)
    return f, dL, dE


def reference(levels: np.ndarray, w: np.ndarray, pi: np.ndarray, q: np.ndarray, k: int,
              ties: str) -> Tuple[np.ndarray, np.ndarray]:
    n, m = levels.shape
    lv = levels.astype(np.intp)
    flat = (lv + (np.arange(n) * m)[:, None]).ravel()
    mass = np.bincount(flat, weights=np.broadcast_to(pi, (n, m)).ravel(), minlength=n * m).reshape(n, m)
    W = np.bincount(flat, weights=np.broadcast_to(q, (n, m)).ravel(), minlength=n * m).reshape(n, m)
    L = np.zeros_like(mass)
    L[:, :-1] = np.cumsum(mass[:, ::-1], axis=1)[:, ::-1][:, 1:]
    f, dL, dE = closed_forms(L, mass, k, ties)
    better = np.zeros_like(mass)
    better[:, 1:] = np.cumsum(W * dL, axis=1)[:, :-1]
    G = better + W * dE
    u = np.einsum("i,ij->j", w, np.take_along_axis(f, lv, axis=1))
    g = np.einsum("i,ij->j", w, np.take_along_axis(G, lv, axis=1))
    return u, g


def time_vjp(populations: Dict[str, ua.RankingPopulation], pi: np.ndarray, q: np.ndarray, reps: int,
             results: Dict[str, np.ndarray]) -> Dict[str, Tuple[float, float]]:
    times = {}
    for name, pop in populations.items():
        for ties in TIES:
            wall, cpu, (u, g) = timed(lambda pop=pop, ties=ties: pop.utilities_vjp(pi, K, q, ties), reps)
            times[f"{name}/{ties}"] = (wall, cpu)
            results[f"{name}/{ties}/u"], results[f"{name}/{ties}/g"] = u, g
    return times


def child(out: str, n: int, reps: int) -> None:
    """Time utilities_vjp of the ualign found on PYTHONPATH; results to `out` (.npz)."""
    populations, pi, q = instance(n)
    results: Dict[str, np.ndarray] = {}
    times = time_vjp(populations, pi, q, reps, results)
    np.savez(out, **results)
    print(json.dumps({"times": times, "core": ua._core.__file__}))


def old_build(path: str, n: int, reps: int) -> Tuple[Dict[str, Tuple[float, float]], Dict[str, np.ndarray], str]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "old.npz")
        env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", out, str(n), str(reps)],
                              cwd=tmp, env=env, check=True, capture_output=True, text=True)
        report = json.loads(done.stdout.strip().split("\n")[-1])
        with np.load(out) as data:
            return report["times"], {key: data[key] for key in data.files}, report["core"]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    quick = "--quick" in sys.argv
    old_path = sys.argv[sys.argv.index("--old") + 1] if "--old" in sys.argv else None
    n = N // 10 if quick else N
    reps = 5
    print(f"bench_vjp: n={n:,} x m={M:,} ({n * M:.1e} entries), k={K}")
    print(machine_line())

    populations, pi, q = instance(n)
    worst = 0.0
    for name, pop in populations.items():
        levels = np.asarray(pop.ranks)[:CHECK_VOTERS]
        sub = ua.RankingPopulation(levels)
        for ties in TIES:
            u, g = sub.utilities_vjp(pi, K, q, ties)
            u_ref, g_ref = reference(levels, np.asarray(sub.weights), pi, q, K, ties)
            err = max(float(np.max(np.abs(u - u_ref))), float(np.max(np.abs(g - g_ref))))
            worst = max(worst, err)
            if not err <= TOL:
                raise SystemExit(f"MISMATCH {name}/{ties}: max |ualign - numpy| = {err:.3e} > {TOL}")
    print(f"(u, g) on the first {CHECK_VOTERS:,} voters agree with the numpy reference "
          f"(max abs error {worst:.1e} <= {TOL})")

    results: Dict[str, np.ndarray] = {}
    t_vjp = time_vjp(populations, pi, q, reps, results)
    t_u = {}
    for name, pop in populations.items():
        for ties in TIES:
            wall, cpu, u = timed(lambda pop=pop, ties=ties: pop.utilities(pi, K, ties), reps)
            t_u[f"{name}/{ties}"] = (wall, cpu)
            if np.asarray(u).tobytes() != results[f"{name}/{ties}/u"].tobytes():
                raise SystemExit(f"MISMATCH {name}/{ties}: utilities_vjp's u is not utilities' result")
    print("u == utilities bit for bit on every row")

    t_old: Dict[str, Tuple[float, float]] = {}
    if old_path:
        t_old, old_results, core = old_build(old_path, n, 3)
        err = max(float(np.max(np.abs(results[key] - old_results[key]))) for key in results)
        if not err <= TOL:
            raise SystemExit(f"MISMATCH against the old build: max abs difference {err:.3e} > {TOL}")
        print(f"old build {core}: (u, g) agree to {err:.1e}")
    print()

    rows = []
    for key, (wall, cpu) in t_vjp.items():
        name, ties = key.split("/")
        u_wall, u_cpu = t_u[key]
        row = [name, ties, wall * 1e3, cpu * 1e3, u_wall * 1e3, u_cpu * 1e3, f"{wall / u_wall:.2f} ({cpu / u_cpu:.2f})"]
        if old_path:
            old_wall, old_cpu = t_old[key]
            row += [old_wall * 1e3, old_cpu * 1e3, f"{old_wall / wall:.2f} ({old_cpu / cpu:.2f})"]
        rows.append(row)
    header = ["data", "ties", "vjp ms", "(cpu ms)", "utilities ms", "(cpu ms)", "vjp/utilities (cpu)"]
    if old_path:
        header += ["old vjp ms", "(cpu ms)", "old/new (cpu)"]
    print_table(header, rows)
    print(f"\nbest of {reps} (vjp, utilities), 3 (old vjp); (cpu ms) = best process CPU time of the call, "
          "all threads; ratios of wall times, in parentheses of CPU times (less sensitive to other jobs)")


if __name__ == "__main__":
    main()
