"""Bootstrap cost: ``audit_many(..., n_boot=B)`` against B separate audits, for three
cases measured in the same run, and a larger coverage run of the percentile intervals.

k = 1..8, uniform ties, B replicates drawn by ``BootstrapPlan`` (seed 1):

(a) rankings, fixed policy — one population of n voters x m responses (random weak
    orders), a given policy. Shared: ``audit_many([model], [pi], n_boot=B)``, every
    voter's values P_i[y > pi^(k)] computed once per k and the B replicates'
    utilities formed as weighted sums of them (``ualign.bootstrap.audit_replicates``).
    Separate: per replicate a fresh ``RankingPopulation(ranks, counts)`` (a copy of the
    n x m levels, ranked again) and its own ``audit_many`` call.
(b) Plackett–Luce mixture, fixed policy — n_types types x m responses (normal
    rewards). Shared: the same call, each type's P_i[y > pi^(k)] (one integral per
    type and k) computed once per k for all replicates. Separate: per replicate a
    fresh ``PlackettLuceMixture(rewards, counts)`` and its own ``audit_many`` call.
(c) rankings, solver policy (MPNE) — a smaller population. Shared:
    ``audit_many([model], methods=["mpne"], n_boot=B)``: the point estimate solved,
    then the B replicates solved as one batch per k (one batched kernel call per
    iteration for all of them), warm-started from the point estimate's policy.
    Separate: ``ua.solve_mpne(replicate, k)`` for every replicate and k, from the
    uniform policy (what a loop over replicates would call), and its robust level.

(a) and (b) compute the same numbers up to rounding (sums over voters in another
order): their intervals are checked to agree within 1e-12 (the largest difference
is printed) before any time is printed. (c)'s replicates are solved to
exploitability <= 1e-8 from different starts, so the two may stop at different
approximate equilibria: the largest difference of the intervals is printed next to
the time. The shared time includes drawing the counts and auditing the point
estimate (solving it, for (c)); the separate loop does neither. Then, with
``--coverage``, the empirical coverage of nominal 95% intervals on samples from a
two-type Plackett–Luce mixture (tests/test_bootstrap.py runs a smaller one).

    OMP_NUM_THREADS=2 python bench/bench_bootstrap.py                 # ~1 minute
    OMP_NUM_THREADS=2 python bench/bench_bootstrap.py --quick         # n / 10
    OMP_NUM_THREADS=2 python bench/bench_bootstrap.py --coverage 2000 # also 2,000 coverage samples
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Callable, List, Tuple

import numpy as np
from _common import machine_line, timed

import ualign as ua
from ualign.bootstrap import BootstrapPlan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

KS = list(range(1, 9))
SEED = 1


def interval_gap(frame: Any, levels: List[np.ndarray]) -> float:
    """Largest difference between the frame's 95% level interval and the percentiles
    of the separately computed replicate levels ((B, K) rows)."""
    low, high = np.quantile(np.array(levels), [0.025, 0.975], axis=0)
    return float(max(np.abs(low - frame["level_ci_low"].to_numpy()).max(),
                     np.abs(high - frame["level_ci_high"].to_numpy()).max()))


def compare(label: str, shared: Callable[[], Any], separate: Callable[[], List[np.ndarray]],
            exact: bool) -> None:
    """Times both (once each), checks or reports the interval gap, prints a line."""
    shared_wall, shared_cpu, frame = timed(shared, 1)
    separate_wall, separate_cpu, levels = timed(separate, 1)
    gap = interval_gap(frame, levels)  # type: ignore[arg-type]
    if exact:
        assert gap <= 1e-12, (label, gap)
    print(f"{label:<34} shared {shared_wall:7.3f} s (cpu {shared_cpu:7.3f})   separate {separate_wall:7.3f} s "
          f"(cpu {separate_cpu:7.3f})   ratio {separate_wall / shared_wall:6.1f}x   intervals within {gap:.1e}")


def fixed_policy(model: Any, fresh: Callable[[np.ndarray], Any], pi: np.ndarray,
                 B: int) -> Tuple[Callable[[], Any], Callable[[], List[np.ndarray]]]:
    """(shared, separate) for the given policy pi; fresh(counts) builds a replicate afresh."""
    counts = BootstrapPlan.create(B, SEED, 0.95).counts(model, 0)

    def separate() -> List[np.ndarray]:
        return [ua.audit_many([fresh(row)], [pi], KS, ["given"])["robust_level"].to_numpy() for row in counts]

    return lambda: ua.audit_many([model], [pi], KS, ["given"], n_boot=B, seed=SEED), separate


def fixed_rankings(n: int, m: int, B: int) -> Tuple[Callable[[], Any], Callable[[], List[np.ndarray]]]:
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 10, size=(n, m))
    return fixed_policy(ua.RankingPopulation(ranks), lambda row: ua.RankingPopulation(ranks, row),
                        rng.dirichlet(np.ones(m)), B)


def fixed_mixture(n_types: int, m: int, B: int) -> Tuple[Callable[[], Any], Callable[[], List[np.ndarray]]]:
    rng = np.random.default_rng(2)
    rewards = rng.normal(size=(n_types, m)) * 2.0
    return fixed_policy(ua.PlackettLuceMixture(rewards), lambda row: ua.PlackettLuceMixture(rewards, row),
                        rng.dirichlet(np.ones(m)), B)


def solver_rankings(n: int, m: int, B: int) -> Tuple[Callable[[], Any], Callable[[], List[np.ndarray]]]:
    rng = np.random.default_rng(3)
    ranks = rng.integers(0, 10, size=(n, m))
    model = ua.RankingPopulation(ranks)
    counts = BootstrapPlan.create(B, SEED, 0.95).counts(model, 0)

    def separate() -> List[np.ndarray]:
        levels = []
        for row in counts:
            replicate = ua.RankingPopulation(ranks, row)
            levels.append(np.array([ua.robust_level(replicate, ua.solve_mpne(replicate, k).policy, k) for k in KS]))
        return levels

    return lambda: ua.audit_many([model], ks=KS, methods=["mpne"], n_boot=B, seed=SEED), separate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--coverage", type=int, default=0, metavar="SAMPLES")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    sizes = {"rankings": (10000 // scale, 50, 100), "mixture": (200 // scale, 50, 100),
             "solver": (2000 // scale, 20, 20)}
    print(machine_line())
    print(f"k = 1..8, uniform ties; (a) {sizes['rankings'][0]} voters x {sizes['rankings'][1]} responses, "
          f"B = {sizes['rankings'][2]}; (b) {sizes['mixture'][0]} types x {sizes['mixture'][1]} responses, "
          f"B = {sizes['mixture'][2]}; (c) {sizes['solver'][0]} voters x {sizes['solver'][1]} responses, "
          f"B = {sizes['solver'][2]}")
    warm = ua.RankingPopulation(np.random.default_rng(0).integers(0, 3, size=(8, 4)))
    ua.audit_many([warm], None, KS, ["uniform", "mpne"], n_boot=2)  # imports and first calls

    compare("(a) rankings, fixed policy", *fixed_rankings(*sizes["rankings"]), exact=True)
    compare("(b) Plackett-Luce, fixed policy", *fixed_mixture(*sizes["mixture"]), exact=True)
    compare("(c) rankings, mpne (solved)", *solver_rankings(*sizes["solver"]), exact=False)

    if args.coverage:
        import time

        import test_bootstrap

        start = time.perf_counter()
        observed = test_bootstrap.coverage(n_samples=args.coverage, n_voters=300, n_boot=200, ci=0.95, seed=7)
        sd = math.sqrt(0.95 * 0.05 / args.coverage)
        print(f"coverage of nominal 95% percentile intervals: {observed:.4f} over {args.coverage} samples of 300 "
              f"rankings (binomial sd at 0.95: {sd:.4f}; {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
