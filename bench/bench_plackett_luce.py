"""Benchmark: PlackettLuceMixture.utilities(pi, k) against per-pair scipy quad.

n = 1,000 types x m = 1,000 responses, k = 8, a random policy with full
support; two reward distributions per type:

* "U[-20,20]": rewards uniform on [-20, 20] (the accuracy contract's range:
  rates spread over e^40, ~230 quadrature nodes per type);
* "N(0,1)": standard normal rewards (softmax logits; ~120 nodes).

Baselines, measured in the same run on a random sample of (type, response)
pairs and extrapolated to all n * m pairs:

* quad [0,inf): scipy.integrate.quad of the integral of docs/concepts.md ("Plackett-Luce products")
  int_0^inf e(y) e^{-e(y) t} phi(t)^k dt as written (epsabs = epsrel = 1e-13,
  limit = 500), phi evaluated with numpy over the m responses;
* quad log t: the same integral after t = e^s, which is how quad reaches full
  accuracy here (integrand a e^{-a} phi(e^s)^k, a = e(y) e^s, over
  [-log e_max - 45, -log e_min + 6], breakpoints every 4 units).

Accuracy: the first MPMATH sampled pair(s) of each row are checked against a
30-digit mpmath integral (tests/pl_reference.py; ~1 min each with m = 1000
terms) for ualign and both quad variants, and every sampled pair compares
ualign with quad log t; ualign's per-pair values come from one-type models of
the sampled types. The target is
ualign >= 1000x faster than per-pair quad (the accurate variant).

Run:  python bench/bench_plackett_luce.py [--quick]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import integrate

import ualign as ua
from _common import machine_line, print_table, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import pl_reference  # noqa: E402  (30-digit mpmath reference)

N, M, K = 1_000, 1_000, 8
SAMPLE = 24  # (type, response) pairs timed with quad
MPMATH = 1  # of which checked against 30-digit mpmath (~1 min each)
REPEATS = 3


def quad_naive(x: np.ndarray, pi: np.ndarray, k: int, y: int) -> float:
    e = np.exp(x - x.max())
    ey = float(e[y])

    def f(t: float) -> float:
        return ey * math.exp(-ey * t) * float(pi @ np.exp(-e * t)) ** k

    return float(integrate.quad(f, 0.0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=500)[0])


def quad_log(x: np.ndarray, pi: np.ndarray, k: int, y: int) -> float:
    x = x - x.max()
    e = np.exp(x)
    ey = float(e[y])

    def f(s: float) -> float:
        t = math.exp(s)
        a = ey * t
        return a * math.exp(-a) * float(pi @ np.exp(-e * t)) ** k

    lo, hi = -45.0, float(-x.min()) + 6.0
    points = list(np.arange(lo + 4.0, hi, 4.0))
    return float(integrate.quad(f, lo, hi, points=points, epsabs=1e-13, epsrel=1e-13, limit=500)[0])


def run(label: str, rewards: np.ndarray, pi: np.ndarray, rng: np.random.Generator, sample: int) -> list:
    n, m = rewards.shape
    model = ua.PlackettLuceMixture(rewards)
    wall, cpu, u = timed(lambda: model.utilities(pi, K), REPEATS)
    assert abs(float(pi @ u) - 1 / (K + 1)) < 1e-12  # the exact identity, on the mixture

    types = rng.integers(0, n, size=sample)
    responses = rng.integers(0, m, size=sample)
    ours, naive, logq, exact = [], [], [], []
    cpu_naive = cpu_log = 0.0
    for j, (i, y) in enumerate(zip(types, responses)):
        ours.append(ua.PlackettLuceMixture(rewards[i:i + 1]).utilities(pi, K)[y])
        c0 = time.process_time()
        naive.append(quad_naive(rewards[i], pi, K, int(y)))
        c1 = time.process_time()
        logq.append(quad_log(rewards[i], pi, K, int(y)))
        c2 = time.process_time()
        cpu_naive += c1 - c0
        cpu_log += c2 - c1
        if j < MPMATH:
            exact.append(float(pl_reference.utility(rewards[i], pi, K, int(y))))
    count = len(exact)
    ours_err = float(np.max(np.abs(np.array(ours[:count]) - exact)))
    naive_err = float(np.max(np.abs(np.array(naive[:count]) - exact)))
    log_err = float(np.max(np.abs(np.array(logq[:count]) - exact)))
    agree = float(np.max(np.abs(np.array(ours) - logq)))
    scale = n * m / sample
    naive_total, log_total = cpu_naive * scale, cpu_log * scale
    return [label, wall, cpu, n * m / wall, ours_err, agree, naive_total, naive_err, log_total, log_err,
            naive_total / cpu, log_total / cpu, "yes" if log_total / cpu >= 1000 else "no"]


def main() -> None:
    quick = "--quick" in sys.argv
    n = N // 10 if quick else N
    sample = SAMPLE // 3 if quick else SAMPLE
    print(machine_line())
    print(f"n = {n} types x m = {M} responses, k = {K}; quad timed on {sample} sampled pairs per row "
          f"(process CPU time), extrapolated x {n * M // sample}\n")
    rng = np.random.default_rng(2024)
    pi = rng.random(M)
    pi /= pi.sum()
    rows = []
    for label, rewards in (("U[-20,20]", rng.uniform(-20, 20, size=(n, M))), ("N(0,1)", rng.normal(size=(n, M)))):
        rows.append(run(label, rewards, pi, rng, sample))
    print_table(["rewards", "ualign s", "(cpu s)", "pairs/s", "err", "vs log-t", "quad[0,inf) cpu s", "its err",
                 "quad log-t cpu s", "its err", "x naive", "x log-t", ">= 1000x"], rows)
    print(f"\nerr: max |value - 30-digit mpmath| over {MPMATH} sampled pairs per row; vs log-t: max |ualign - "
          f"quad log t| over all sampled pairs; speed-ups: quad CPU time (extrapolated) / ualign CPU time "
          f"(all threads).")


if __name__ == "__main__":
    main()
