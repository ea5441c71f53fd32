"""Many-prompt audit throughput: ua.audit_many locally and on a Dask LocalCluster
against a Python loop over prompts calling the per-prompt API.

10,000 prompts x 64 responses x 100 voters (independent random rankings per
prompt), one given policy per prompt (Dirichlet), audited for k = 1..8 under
uniform ties: robust level, worst-case opponent, best response and
exploitability for every (prompt, k).

Baselines, measured in the same run:
* api loop  — for each prompt and k: ua.robust_level, ua.best_response and
  ua.exploitability (the per-prompt API, three kernel calls), timed on a sample
  of prompts and extrapolated;
* lean loop — the same numbers from one model.utilities call per (prompt, k)
  plus numpy (what a careful user would write by hand), also extrapolated.

Before any time is reported, the batch results are checked bit for bit against
the per-prompt API on the sample, and the cluster's against the local run.

    python bench/bench_audit.py           # full size (~1-2 min)
    python bench/bench_audit.py --quick   # 1,000 prompts
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from typing import Any, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import core_line, machine_line, print_table, timed  # noqa: E402

import ualign as ua  # noqa: E402
from ualign import _core  # noqa: E402


def build(n_prompts: int, n_voters: int, m: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    models, policies = [], []
    base = np.tile(np.arange(m, dtype=np.uint8), (n_voters, 1))
    for _ in range(n_prompts):
        orders = rng.permuted(base, axis=1)
        models.append(ua.RankingPopulation.from_orders(orders))
        policies.append(rng.dirichlet(np.ones(m)))
    return models, policies


def api_loop(models: List[Any], policies: List[Any], ks: range) -> List[tuple]:
    rows = []
    for model, pi in zip(models, policies):
        for k in ks:
            level = ua.robust_level(model, pi, k)
            best, utility = ua.best_response(model, pi, k)
            rows.append((level, best, utility, ua.exploitability(model, pi, k)))
    return rows


def lean_loop(models: List[Any], policies: List[Any], ks: range) -> List[tuple]:
    rows = []
    for model, pi in zip(models, policies):
        for k in ks:
            u = model.utilities(pi, k)
            best = int(np.argmax(u))
            rows.append((1.0 - u[best], best, u[best], u[best] - math.fsum(pi * u)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 prompts instead of 10,000")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--sample", type=int, default=300, help="prompts timed in the Python loops")
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask LocalCluster")
    args = parser.parse_args()
    n_prompts = args.prompts or (1000 if args.quick else 10000)
    n_voters, m, ks = 100, 64, range(1, 9)
    print(machine_line())
    print(f"{n_prompts} prompts x {m} responses x {n_voters} voters, given policy, k = 1..8, uniform ties\n")

    t0 = time.perf_counter()
    models, policies = build(n_prompts, n_voters, m)
    print(f"built the populations in {time.perf_counter() - t0:.1f} s "
          f"({sum(model.nbytes for model in models) / 2**20:.0f} MiB of ranks)\n")

    # -- correctness first: batch == per-prompt API, bit for bit, on the sample ---------------
    sample = min(args.sample, n_prompts)
    frame = ua.audit_many(models[:sample], policies[:sample], ks=ks, methods=["given"])
    reference = api_loop(models[:sample], policies[:sample], ks)
    got = list(zip(frame.robust_level, frame.best_response, frame.best_utility, frame.exploitability))
    assert got == [(a, int(b), c, d) for a, b, c, d in reference], "batch != per-prompt API"
    print(f"check: batch == per-prompt API bit for bit on {sample} prompts x 8 k")

    rows: List[List[Any]] = []
    wall, cpu, local = timed(lambda: ua.audit_many(models, policies, ks=ks, methods=["given"]), 3)
    rows.append(["audit_many (local)", wall, cpu, n_prompts / wall])
    flat = np.concatenate(policies)
    offsets = np.arange(n_prompts + 1, dtype=np.int64) * m
    stores = [model._store for model in models]
    kernel_wall, kernel_cpu, _ = timed(lambda: _core.audit_policies(stores, flat, offsets, np.arange(1, 9), 0), 3)
    rows.append(["  of which the C++ kernel", kernel_wall, kernel_cpu, n_prompts / kernel_wall])
    loop_wall, loop_cpu, _ = timed(lambda: api_loop(models[:sample], policies[:sample], ks), 2)
    scale = n_prompts / sample
    rows.append([f"api loop ({sample} prompts, x{scale:.0f})", loop_wall * scale, loop_cpu * scale,
                 sample / loop_wall])
    lean_wall, lean_cpu, _ = timed(lambda: lean_loop(models[:sample], policies[:sample], ks), 2)
    rows.append([f"lean loop ({sample} prompts, x{scale:.0f})", lean_wall * scale, lean_cpu * scale,
                 sample / lean_wall])

    if not args.no_cluster:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("(dask.distributed not installed: no cluster run)")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       silence_logs=40)
                client = Client(cluster)
                client.wait_for_workers(2)
                startup = time.perf_counter() - start
                try:
                    c_wall, c_cpu, remote = timed(
                        lambda: ua.audit_many(models, policies, ks=ks, methods=["given"], client=client), 2)
                    assert remote.equals(local), "cluster != local"
                    print("check: cluster results == local results (every column, bit for bit)")
                    rows.append(["audit_many (LocalCluster 2x1)", c_wall, c_cpu, n_prompts / c_wall])
                    print(f"cluster start-up {startup:.1f} s (not included)")
                finally:
                    client.close()
                    cluster.close()

    print()
    print_table(["run", "wall s", "cpu s (this process)", "prompts/s"], rows)
    local_rate = n_prompts / wall
    print(f"\nthroughput of local audit_many (wall time) vs api loop: {local_rate / (sample / loop_wall):.1f}x; "
          f"vs lean loop: {local_rate / (sample / lean_wall):.1f}x (target >= 10x)")
    # CPU time adds up all threads: its ratio is the single-core one, and it hardly
    # moves when other processes compete for the cores.
    print(f"CPU time per prompt, loop / audit_many: api loop {loop_cpu * scale / cpu:.1f}x; "
          f"lean loop {lean_cpu * scale / cpu:.1f}x")
    print(core_line())


if __name__ == "__main__":
    main()
