"""Smoke test of an installed wheel (run outside the source tree)."""

import sys

import numpy as np

import ualign as ua

expect_openmp = sys.argv[1] == "openmp"
population = ua.RankingPopulation.from_orders([[0, 1, 2], [2, 1, 0], [1, 2, 0]])
pi = np.array([0.2, 0.3, 0.5])
u = population.utilities(pi, k=3)
assert abs(float(pi @ u) - 0.25) < 1e-12, u
assert ua.has_openmp == expect_openmp, ua.has_openmp
print("smoke test passed:", u, "openmp:", ua.has_openmp)
