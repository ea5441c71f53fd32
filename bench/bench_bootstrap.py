"""Bootstrap cost: ``audit_many(..., n_boot=B)`` against B separate audits, and a
larger coverage run of the percentile intervals.

One population of n voters x m responses (random weak orders), a given policy,
k = 1..8, uniform ties. Measured in the same run:

* batched  — ``audit_many([model], [pi], n_boot=B)``: every voter's values
  P_i[y > pi^(k)] computed once per k, the B replicates' utilities formed as
  weighted sums of them (``ualign.bootstrap.audit_replicates``);
* separate — for each replicate, a fresh ``RankingPopulation(ranks, counts)`` (a copy
  of the n x m levels, ranked again) and its own ``audit_many`` call.

Both compute the same numbers up to rounding: their sums over voters run in
different orders, so the intervals are checked to agree within 1e-12 (the largest
difference is printed) before any time is printed. Then, with ``--coverage``, the empirical coverage of nominal 95%
intervals on samples from a two-type Plackett–Luce mixture (tests/test_bootstrap.py
runs a smaller one).

    python bench/bench_bootstrap.py                 # n = 10,000, m = 50, B = 100
    python bench/bench_bootstrap.py --quick         # n = 2,000, B = 50
    python bench/bench_bootstrap.py --coverage 2000 # also 2,000 coverage samples
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

import ualign as ua
from ualign.bootstrap import BootstrapPlan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--coverage", type=int, default=0, metavar="SAMPLES")
    args = parser.parse_args()
    n, m, B = (2000, 50, 50) if args.quick else (10000, 50, 100)
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 10, size=(n, m))
    model = ua.RankingPopulation(ranks)
    pi = rng.dirichlet(np.ones(m))
    ks = range(1, 9)
    print(f"population: {n} voters x {m} responses; B = {B} replicates; k = 1..8; "
          f"omp threads: {ua._core.max_threads() if hasattr(ua._core, 'max_threads') else '?'}")

    ua.audit_many([ua.RankingPopulation(ranks[:8])], [pi], ks, ["given"], n_boot=2)  # imports and first calls
    start = time.perf_counter()
    frame = ua.audit_many([model], [pi], ks, ["given"], n_boot=B, seed=1)
    batched = time.perf_counter() - start

    counts = BootstrapPlan.create(B, 1, 0.95).counts(model, 0)
    start = time.perf_counter()
    levels = []
    for row in counts:
        replicate = ua.RankingPopulation(ranks, row)
        levels.append(ua.audit_many([replicate], [pi], ks, ["given"])["robust_level"].to_numpy())
    separate = time.perf_counter() - start
    low, high = np.quantile(np.array(levels), [0.025, 0.975], axis=0)
    gap = max(np.abs(low - frame["level_ci_low"].to_numpy()).max(),
              np.abs(high - frame["level_ci_high"].to_numpy()).max())
    assert gap <= 1e-12, gap
    print(f"batched (weighted sums):   {batched:8.3f} s   extra memory {B * n * 8 / 2**20:8.1f} MiB (weights)")
    print(f"separate audits (copies):  {separate:8.3f} s   extra memory {B * n * m / 2**20:8.1f} MiB (levels, uint8)")
    print(f"ratio separate / batched:  {separate / batched:8.2f}x   (intervals within {gap:.1e})")

    if args.coverage:
        import test_bootstrap

        start = time.perf_counter()
        observed = test_bootstrap.coverage(n_samples=args.coverage, n_voters=300, n_boot=200, ci=0.95, seed=7)
        sd = math.sqrt(0.95 * 0.05 / args.coverage)
        print(f"coverage of nominal 95% percentile intervals: {observed:.4f} over {args.coverage} samples of 300 "
              f"rankings (binomial sd at 0.95: {sd:.4f}; {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
