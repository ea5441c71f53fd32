"""Committees (ua.solve_committee): level, certified upper bound, gap and time per
(prompt, k) on two workloads under uniform ties, next to the greedy-pricing
baseline (greedy columns with the submodular bound). Wall and CPU seconds: the
machine may be shared.

* pools of 64 responses, 100 voters, random strict and weak orders, k = 2..8;
* sushi-like data: 5,000 voters x 100 items drawn from a Plackett-Luce model
  (Gumbel-perturbed utilities), k = 1..8.

The solver is asked for the gap the acceptance needs (``tol``, default 1e-3): it
stops once its certified gap is that small.

    PYTHONPATH=. python bench/bench_committee.py [--time-limit 5] [--tol 1e-3] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine_line

import ualign as ua


def pools(quick: bool) -> list:
    rng = np.random.default_rng(2024)
    n, m = 100, 64
    out = [("strict orders", ua.RankingPopulation.from_orders(np.argsort(rng.random((n, m)), axis=1))),
           ("weak orders", ua.RankingPopulation(rng.integers(0, 12, size=(n, m))))]
    return out[:1] if quick else out


def sushi_like(n: int = 5000, m: int = 100, seed: int = 7) -> ua.RankingPopulation:
    """Plackett-Luce rankings: utilities + i.i.d. Gumbel noise, sorted."""
    rng = np.random.default_rng(seed)
    utility = rng.normal(scale=1.0, size=m)
    return ua.RankingPopulation.from_scores(utility[None, :] + rng.gumbel(size=(n, m)))


def row(label: str, k: int, result: ua.solvers.CommitteeResult, wall: float, cpu: float) -> str:
    return (f"{label:<16} {k:>2}  {result.pricing:<44} {result.robust_level:.6f}  {result.upper_bound:.6f}  "
            f"{result.gap:9.2e}  {wall:7.2f}  {cpu:7.2f}")


def timed(model: ua.RankingPopulation, k: int, **options: object) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    result = ua.solve_committee(model, k, **options)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run(label: str, model: ua.RankingPopulation, ks: range, time_limit: float, tol: float, baseline: bool) -> None:
    for k in ks:
        print(row(label, k, *timed(model, k, time_limit=time_limit, tol=tol)), flush=True)
        if baseline:
            print(row("  baseline", k, *timed(model, k, pricing="greedy", tol=tol)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=5.0, help="seconds of branch-and-bound pricing per (prompt, k)")
    parser.add_argument("--tol", type=float, default=1e-3, help="the certified gap at which the solver stops")
    parser.add_argument("--quick", action="store_true", help="strict pool and k <= 4 only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the greedy-pricing baseline rows")
    args = parser.parse_args()
    print(machine_line())
    print(f"time limit {args.time_limit} s of pricing per (prompt, k), tol {args.tol:g}")
    print(f"{'workload':<16} {'k':>2}  {'pricing':<44} {'level':<8}  {'upper':<8}  {'gap':>9}  {'wall s':>7}  "
          f"{'cpu s':>7}")
    top = 5 if args.quick else 9
    for label, model in pools(args.quick):
        run(label, model, range(2, top), args.time_limit, args.tol, baseline=not args.no_baseline)
    if not args.quick:
        run("sushi-like", sushi_like(), range(1, 9), args.time_limit, args.tol, baseline=not args.no_baseline)


if __name__ == "__main__":
    main()
