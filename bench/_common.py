"""Helpers shared by the bench/ scripts (not part of the package, not a test)."""

from __future__ import annotations

import os
import platform
import time
from typing import Callable, List, Sequence, Tuple

import numpy as np

TIES = ("uniform", "half", "strict", "weak")


def best_of(fn: Callable[[], object], repeats: int) -> Tuple[float, object]:
    """Best wall time (time.perf_counter) of `repeats` calls, and the last result."""
    wall, _, result = timed(fn, repeats)
    return wall, result


def timed(fn: Callable[[], object], repeats: int) -> Tuple[float, float, object]:
    """(best wall time, best process CPU time, last result) over `repeats` calls.

    CPU time (time.process_time) adds up all threads of this process; it is far
    less sensitive than wall time to other processes competing for the cores,
    so a wall/CPU pair tells contention from slowness.
    """
    best_wall = best_cpu = float("inf")
    result: object = None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        t1, c1 = time.perf_counter(), time.process_time()
        best_wall = min(best_wall, t1 - t0)
        best_cpu = min(best_cpu, c1 - c0)
    return best_wall, best_cpu, result


def random_orders(n: int, m: int, seed: int = 0) -> np.ndarray:
    """n independent uniformly random permutations of 0..m-1, as uint16 (n x m)."""
    rng = np.random.default_rng(seed)
    orders = np.tile(np.arange(m, dtype=np.uint16), (n, 1))
    rng.permuted(orders, axis=1, out=orders)
    return orders


def random_policy(m: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pi = rng.random(m)
    return pi / pi.sum()


def machine_line() -> str:
    try:
        load = "load avg %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load avg n/a"
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
            f"OMP_NUM_THREADS={threads}, numpy {np.__version__}, {load}\n{core_line()}")


def core_line() -> str:
    """Which compiled core is being measured (path, build time, OpenMP threads)."""
    import ualign

    core = ualign._core
    path = getattr(core, "__file__", "?")
    try:
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(path)))
    except OSError:
        built = "?"
    return f"ualign core {os.path.basename(path)} built {built}, openmp={core.has_openmp}, max_threads={core.max_threads()}"


def print_table(header: Sequence[str], rows: List[Sequence[object]]) -> None:
    cells = [[str(h) for h in header]] + [[c if isinstance(c, str) else _fmt(c) for c in row] for row in rows]
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    for idx, row in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if idx == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(x: object) -> str:
    if isinstance(x, float):
        if x >= 100:
            return f"{x:.0f}"
        if x >= 10:
            return f"{x:.1f}"
        return f"{x:.3g}" if x < 1 else f"{x:.2f}"
    return str(x)
