"""Solver audits across prompts: ua.audit_many with the NLHF, RLHF, MPNE and optimal
methods against a Python loop calling the per-prompt solver on each prompt.

10,000 prompts x 64 responses x 100 voters (half strict rankings, half weak
orders with ties of three), k = 1..8, uniform ties. audit_many solves each block
of prompts together (one batched kernel call per iteration, warm-started across
k) and audits every policy with the compiled batch audit.

Baseline, measured in the same run on a sample of prompts and extrapolated:
for each prompt, the per-prompt solver (ua.solve_nlhf / ua.rlhf_policy once and the
robust level of its policy for every k — over the set of maximal lotteries where
that is not a single point, as the audit reports —, ua.solve_mpne / ua.solve_optimal
for every k), each returning its certificate.

Before any time is reported, every audited MPNE / optimal policy is checked to
have exploitability <= 1e-8 (the solvers' tolerance).

With --ties weak (or half, strict) only the optimal method is measured, under that
level: solve_optimal's convex program (SQP with dual certificates) on every prompt
where the equilibrium it starts from is not optimal. The check there: every
looped solve converged (gap <= 1e-8), and the audit's levels of the looped prompts
are within 2e-8 of the loop's.

    python bench/bench_audit_solvers.py           # full size
    python bench/bench_audit_solvers.py --quick   # 1,000 prompts
    python bench/bench_audit_solvers.py --prompts 200 --sample 40 --ties weak
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import core_line, machine_line, print_table, timed  # noqa: E402

import ualign as ua  # noqa: E402

KS = range(1, 9)


def build(n_prompts: int, n_voters: int, m: int, seed: int = 0) -> List[ua.RankingPopulation]:
    rng = np.random.default_rng(seed)
    models = []
    for p in range(n_prompts):
        orders = np.argsort(rng.random((n_voters, m)), axis=1)
        models.append(ua.RankingPopulation.from_orders(orders) if p % 2 == 0
                      else ua.RankingPopulation(np.argsort(orders, axis=1) // 3))
    return models


def nlhf_loop(model: Any) -> None:
    result = ua.solve_nlhf(model)
    for k in KS:  # the audit's level columns: the level, or its range over the maximal lotteries
        if result.unique:
            ua.robust_level(model, result.policy, k)
        else:
            ua.solvers.nlhf_level_range(model, k, lotteries=result.lotteries)


def rlhf_loop(model: Any) -> None:
    policy = ua.rlhf_policy(model, 0.1).policy
    for k in KS:
        ua.robust_level(model, policy, k)


# Each loop computes what the audit's rows hold for its prompt: the solver's policy
# and its robust level for every k (the MPNE and optimal results carry theirs).
LOOPS: Dict[str, Callable[[Any], None]] = {
    "nlhf": nlhf_loop,
    "rlhf": rlhf_loop,
    "mpne": lambda model: [ua.solve_mpne(model, k) for k in KS],
    "optimal": lambda model: [ua.solve_optimal(model, k) for k in KS],
}


def other_ties(models: List[ua.RankingPopulation], sample: List[ua.RankingPopulation], step: int, ties: str) -> None:
    """The optimal method under another level convention, against the loop."""
    wall, cpu, frame = timed(lambda: ua.audit_many(models, ks=KS, methods=["optimal"], ties=ties), 1)
    results: List[Any] = []
    loop_wall, loop_cpu, _ = timed(lambda: results.extend(ua.solve_optimal(model, k, ties)
                                                          for model in sample for k in KS), 1)
    assert all(r.converged and r.gap <= 1e-8 for r in results), "a looped solve did not certify its gap"
    audited = frame.robust_level.to_numpy().reshape(len(models), len(KS))[::step][:len(sample)]
    looped = np.array([r.robust_level for r in results]).reshape(len(sample), len(KS))
    worst = float(np.abs(audited - looped).max())
    assert worst <= 2e-8, f"audit and loop levels differ by {worst:.1e}"
    batch_rate, loop_rate = len(models) / wall, len(sample) / loop_wall
    print_table(["method", "audit_many wall s", "cpu s", "prompts/s", "loop prompts/s", "ratio (wall)", ""],
                [["optimal", wall, cpu, batch_rate, loop_rate, batch_rate / loop_rate,
                  f"max gap {max(r.gap for r in results):.1e}, audit vs loop {worst:.1e}"]])
    print(core_line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 prompts instead of 10,000")
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--sample", type=int, default=100, help="prompts timed in the per-prompt loop")
    parser.add_argument("--ties", default="uniform", choices=["uniform", "weak", "half", "strict"],
                        help="the level's convention; other than uniform, only the optimal method")
    args = parser.parse_args()
    n_prompts = args.prompts or (1000 if args.quick else 10000)
    n_voters, m = 100, 64
    print(machine_line())
    print(f"{n_prompts} prompts x {m} responses x {n_voters} voters (half weak orders), k = 1..8, "
          f"{args.ties} ties\n")
    models = build(n_prompts, n_voters, m)
    # the loop's prompts spread evenly over the whole set; pandas and the solvers
    # imported before anything is timed
    step = max(1, n_prompts // args.sample)
    sample = models[::step][:args.sample]
    ua.audit_many(models[:2], ks=KS, methods=list(LOOPS))
    if args.ties != "uniform":
        other_ties(models, sample, step, args.ties)
        return

    rows: List[List[Any]] = []
    for method, loop in LOOPS.items():
        wall, cpu, frame = timed(lambda: ua.audit_many(models, ks=KS, methods=[method]), 1)
        if method in ("mpne", "optimal"):
            worst = float(frame.exploitability.max())
            assert worst <= 1e-8, f"{method}: exploitability {worst:.2e} > 1e-8"
            note = f"max expl {worst:.1e}"
        else:
            note = ""
        loop_wall, loop_cpu, _ = timed(lambda: [loop(model) for model in sample], 1)
        batch_rate, loop_rate = n_prompts / wall, len(sample) / loop_wall
        rows.append([method, wall, cpu, batch_rate, loop_rate, batch_rate / loop_rate,
                     (len(sample) / loop_cpu) and (n_prompts / cpu) / (len(sample) / loop_cpu), note])
    print_table(["method", "audit_many wall s", "cpu s", "prompts/s", "loop prompts/s", "ratio (wall)",
                 "ratio (cpu)", ""], rows)

    start = time.perf_counter()
    ua.audit_many(models, ks=KS, methods=["given", "uniform", "nlhf", "rlhf", "mpne", "optimal"],
                  policies=[np.full(m, 1.0 / m)] * n_prompts)
    total = time.perf_counter() - start
    print(f"\nthe default `ualign audit` methods but the committee (given, uniform, nlhf, rlhf, mpne, optimal) "
          f"on all {n_prompts} prompts: {total:.1f} s ({n_prompts / total:.0f} prompts/s)")
    print("targets: mpne, optimal >= 20x the loop; nlhf >= 10x")
    print(core_line())


if __name__ == "__main__":
    main()
