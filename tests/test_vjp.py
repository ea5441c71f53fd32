"""utilities_vjp of ranking populations: (u, g) with u[y] = P[y > pi^(k)] and
g = d/dpi sum_y q[y] u[y].

* small k: against brute force (the oracle's utilities, and the gradient
  differentiated exactly from the definition, term by term over the multisets of
  k draws), on the four-voter path and on the one-voter remainder;
* large k (the O(1) closed forms above k = 64): against 30-digit mpmath values of
  f, df/dL and df/dE at given (L, E), and through identities that hold for every k;
* threads: 1, 2 and 3 OpenMP threads give the same bits; u is utilities' bits;
* time: k = 10^9 is O(1) per level.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import oracle
import ualign as ua
from ualign._validate import K_MAX
from helpers import outputs_by_thread_count, random_policy, random_ranks, random_weights

mp = pytest.importorskip("mpmath")

CODES = {ties: code for code, ties in enumerate(ua.TIES)}
LARGE_KS = (65, 1000, 10**6, 10**9, 10**15, K_MAX)  # up to the supported range


# ---------------------------------------------------------------------------
# Brute force
# ---------------------------------------------------------------------------
def gradient_oracle(ranks, weights, pi, k, q, ties):
    """d/dpi_z sum_y q_y u_y from the definition: u_y = sum_i w_i sum_S P(S) win_i(y, S)
    over the multisets S of k draws, P(S) = k!/prod c_z! prod pi_z^c_z, whose partial
    derivative in pi_z is k!/prod c_z! c_z pi_z^(c_z - 1) prod_{z' != z} pi_z'^c_z'."""
    rows = np.asarray(ranks).tolist()
    w = oracle._weights(weights, len(rows))
    m = len(pi)
    terms = [[] for _ in range(m)]
    for draws in itertools.combinations_with_replacement(range(m), k):
        counts = [draws.count(z) for z in range(m)]
        multinomial = math.factorial(k)
        for c in counts:
            multinomial //= math.factorial(c)
        payoff = math.fsum(wi * math.fsum(q[y] * oracle.voter_win(row, [y], draws, ties) for y in range(m))
                           for wi, row in zip(w, rows))
        for z in range(m):
            if counts[z] == 0:
                continue
            d = float(multinomial * counts[z]) * pi[z] ** (counts[z] - 1)
            for zz in range(m):
                if zz != z:
                    d *= pi[zz] ** counts[zz]
            terms[z].append(d * payoff)
    return np.array([math.fsum(t) for t in terms])


CASES = [(style, k, seed) for style in ("strict", "weak", "all_tied") for k in range(1, 10) for seed in range(2)]


@pytest.mark.parametrize("style,k,seed", CASES)
def test_against_brute_force(style, k, seed):
    rng = np.random.default_rng(1000 * k + seed + (17 if style == "weak" else 0))
    m = 3 if k >= 8 else 4
    n = int(rng.integers(1, 12))  # four-voter groups and a remainder of 0..3 voters
    ranks = random_ranks(rng, n, m, style)
    weights = random_weights(rng, n)
    pi = random_policy(rng, m, zeros=True)
    q = rng.standard_normal(m)
    model = ua.RankingPopulation(ranks, weights)
    for ties in ua.TIES:
        u, g = model.utilities_vjp(pi, k, q, ties)
        np.testing.assert_allclose(u, oracle.utilities(ranks, weights, pi, k, ties), rtol=0, atol=1e-12)
        np.testing.assert_allclose(g, gradient_oracle(ranks, weights, pi, k, q, ties), rtol=0, atol=1e-12)


def test_zero_probability_responses_and_zero_weights():
    """Responses without mass still get a gradient (it is where mass would go)."""
    rng = np.random.default_rng(7)
    ranks = rng.integers(0, 3, size=(9, 5))
    weights = np.array([0.0, 1, 2, 0, 1, 1, 3, 0, 1])
    pi = np.array([0.0, 0.5, 0.0, 0.25, 0.25])
    q = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    model = ua.RankingPopulation(ranks, weights)
    for ties in ua.TIES:
        for k in (1, 3, 6):
            u, g = model.utilities_vjp(pi, k, q, ties)
            np.testing.assert_allclose(u, oracle.utilities(ranks, weights, pi, k, ties), rtol=0, atol=1e-12)
            np.testing.assert_allclose(g, gradient_oracle(ranks, weights, pi, k, q, ties), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# Large k: the closed forms of f(L, E), df/dL, df/dE against mpmath
# ---------------------------------------------------------------------------
def exact_level(L, E, k, ties):
    """(f, df/dL, df/dE) at the exact binary values L, E, to 30 digits:
    strict L^k, weak (L+E)^k, half their mean, uniform ((L+E)^(k+1) - L^(k+1)) / ((k+1) E)
    (the digits its differences cancel are added to the working precision)."""
    L, E = mp.mpf(L), mp.mpf(E)  # exact: 53 bits
    a = mp.fadd(L, E, exact=True)  # a^k would magnify its rounding k-fold
    if ties == "strict":
        return L**k, k * L ** (k - 1), mp.mpf(0)
    if ties == "weak":
        return a**k, k * a ** (k - 1), k * a ** (k - 1)
    if ties == "half":
        return (L**k + a**k) / 2, k * (L ** (k - 1) + a ** (k - 1)) / 2, k * a ** (k - 1) / 2
    if E == 0:
        return L**k, k * L ** (k - 1), k * L ** (k - 1) / 2
    n = k + 1
    with mp.workdps(40 + 2 * int(mp.log10(a / E))):
        f = (a**n - L**n) / (n * E)
        dL = (a**k - L**k) / E
        dE = (n * E * a**k - (a**n - L**n)) / (n * E**2)
        return +f, +dL, +dE


def level_by_kernel(L, E, k, ties, voters):
    """(f, df/dL, df/dE) at (L, E) through the kernel: identical voters ranking
    0 > 1 > 2, pi = (0, E, L), q = e_1. `voters` = 4 takes the four-voter path, 1 the
    remainder. (The store takes any nonnegative pi: u is the polynomial.)"""
    model = ua.RankingPopulation([[0, 1, 2]] * voters)
    u, g = model._store.utilities_vjp(np.array([0.0, E, L]), np.array([0.0, 1.0, 0.0]), k, CODES[ties])
    return u[1], g[2], g[1]


PAIRS = [(0.75, 0.25), (0.3, 0.7), (0.0, 1.0), (1.0, 0.0), (0.5, 0.5 - 2**-53), (0.9999999, 1e-7),
         (1 - 2**-53, 2**-60), (1 - 1e-12, 1e-12), (0.2, 0.8 - 1e-9), (1 - 3e-16, 3e-16), (0.0, 0.0), (0.4, 0.0)]


def _relative_error(got, exact):
    exact = float(exact)
    return abs(got - exact) / abs(exact) if abs(exact) > 1e-300 else abs(got - exact)


@pytest.mark.parametrize("k", LARGE_KS)
def test_large_k_closed_forms_against_mpmath(k):
    mp.mp.dps = 30
    pairs = PAIRS + [(1 - 1 / k, 1 / k), (1 - 5 / k, 3 / k), (1 - 1e-3 / k, 1e-3 / k), (1 - 50 / k, 10 / k)]
    rng = np.random.default_rng(k % 1000)
    for _ in range(6):  # a near 1, where a^k is neither 0 nor 1, and E/a from 1 down to 1e-30
        a = 1 - 10 ** rng.uniform(-16, 0) / k ** rng.uniform(0, 1)
        E = a * 10 ** rng.uniform(-30, 0)
        pairs.append((a - E, E))
    for L, E in pairs:
        for ties in ua.TIES:
            exact = exact_level(L, E, k, ties)
            for voters in (1, 4):
                got = level_by_kernel(L, E, k, ties, voters)
                for name, x, y in zip(("f", "df/dL", "df/dE"), got, exact):
                    assert np.isfinite(x)
                    assert _relative_error(x, y) < 1e-12, (k, L, E, ties, voters, name, x, float(y))


def test_large_k_never_overflows_or_loses_digits_to_subnormals():
    """k L^(k-1) for huge k: 0 where it underflows (no 0 * inf), and full digits where
    it is normal though L^(k-1) alone is subnormal."""
    for k in (2**52, K_MAX):
        for L in (0.0, 2**-1074, 0.5, 1 - 2**-53, 1.0):
            for ties in ua.TIES:
                got = level_by_kernel(L, 1.0 - L, k, ties, 4)
                assert all(np.isfinite(got)), (k, L, ties, got)
    k = 10**6
    L = math.exp(-709.5 / (k - 1))  # L^(k-1) ~ 7e-309 is subnormal, k L^(k-1) ~ 7e-303 is not
    _, dL, _ = level_by_kernel(L, 0.0, k, "strict", 1)
    assert _relative_error(dL, exact_level(L, 0.0, k, "strict")[1]) < 1e-12


# ---------------------------------------------------------------------------
# Identities, for every k
# ---------------------------------------------------------------------------
def dyadic_population(seed):
    """Weak and strict orders with a policy whose every partial sum is exact in binary,
    so that L and E are exact and the identities hold to rounding for any k: masses
    eps, 1/8, 1/8, 1/4, 1/2 - eps with eps = 2^-53 (then (1 - eps)^(2^62) = e^-512)."""
    rng = np.random.default_rng(seed)
    n, m = 11, 5
    ranks = np.concatenate([np.argsort(rng.random((6, m)), axis=1), rng.integers(0, 3, size=(n - 6, m))])
    eps = 2.0**-53
    pi = np.array([eps, 0.125, 0.125, 0.25, 0.5 - eps])[rng.permutation(m)]
    assert math.fsum(pi) == 1.0
    return ua.RankingPopulation(ranks, rng.random(n) + 0.5), pi


@pytest.mark.parametrize("k", (1, 2, 7, 64) + LARGE_KS)
def test_uniform_identities(k):
    """Under uniform ties sum_y pi_y u_y(pi) = s^(k+1)/(k+1) for every pi >= 0 with
    s = sum pi (per voter the levels telescope: sum_r E_r f_r = sum_r (a_r^(k+1) -
    L_r^(k+1))/(k+1)). Its gradient is u + g(q = pi) = s^k: on the simplex u + g = 1,
    so (u + g).v = 0 for every tangent v (sum v = 0)."""
    for seed in range(3):
        model, pi = dyadic_population(seed)
        u, g = model.utilities_vjp(pi, k, pi)
        assert abs(math.fsum(pi * u) * (k + 1) - 1) < 1e-12
        np.testing.assert_allclose(u + g, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", (1, 3, 9, 64) + LARGE_KS)
def test_euler_identity(k):
    """sum_y q_y u_y is homogeneous of degree k in pi, so pi . g = k q . u (Euler),
    for every convention; per level it is L df/dL + E df/dE = k f."""
    rng = np.random.default_rng(k % 997)
    for seed in range(2):
        model, pi = dyadic_population(seed)
        q = rng.standard_normal(pi.size)
        for ties in ua.TIES:
            u, g = model.utilities_vjp(pi, k, q, ties)
            scale = k * math.fsum(np.abs(q) * u) + 1e-300
            assert abs(math.fsum(pi * g) - k * math.fsum(q * u)) <= 1e-12 * scale, ties


@pytest.mark.parametrize("k", (5, 200))
def test_gradient_matches_finite_differences_of_utilities(k):
    """g against central differences of u along tangent directions (sum v = 0), on
    random (non-dyadic) policies: a check independent of the closed forms' algebra."""
    rng = np.random.default_rng(k % 1009)
    n, m = 40, 6
    ranks = rng.integers(0, 4, size=(n, m))
    model = ua.RankingPopulation(ranks, rng.random(n))
    pi = random_policy(rng, m, zeros=False)
    q = rng.standard_normal(m)
    for ties in ua.TIES:
        _, g = model.utilities_vjp(pi, k, q, ties)
        for _ in range(3):
            v = rng.standard_normal(m)
            v -= v.mean()
            h = 1e-5 / k
            up = model.utilities(pi + h * v, k, ties)
            down = model.utilities(pi - h * v, k, ties)
            fd = (q @ up - q @ down) / (2 * h)
            assert abs(fd - g @ v) <= 1e-5 * (1 + abs(g @ v)), (ties, fd, g @ v)


# ---------------------------------------------------------------------------
# u is utilities' result; threads do not change bits; large k is O(1)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", (1, 2, 8, 33, 64))
def test_u_is_utilities_bit_for_bit(k):
    rng = np.random.default_rng(k)
    n, m = 1031, 37  # several chunks of voters and remainders after the groups of four
    ranks = rng.integers(0, 12, size=(n, m))
    ranks[: n // 2] = np.argsort(rng.random((n // 2, m)), axis=1)
    model = ua.RankingPopulation(ranks, rng.random(n) ** 2)
    pi = random_policy(rng, m)
    for ties in ua.TIES:
        u, _ = model.utilities_vjp(pi, k, rng.standard_normal(m), ties)
        assert u.tobytes() == model.utilities(pi, k, ties).tobytes(), ties


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import ualign as ua

    rng = np.random.default_rng(20240607)
    n, m = 5003, 50
    ranks = rng.integers(0, 12, size=(n, m))
    ranks[: n // 2] = np.argsort(rng.random((n // 2, m)), axis=1)
    weights = rng.random(n) ** 3
    weights[rng.random(n) < 0.05] = 0.0
    pi = rng.random(m) * (rng.random(m) < 0.6)
    pi /= pi.sum()
    q = rng.standard_normal(m)
    model = ua.RankingPopulation(ranks, weights)
    out = {"max_threads": np.array([ua._core.max_threads()])}
    for ties in ua.TIES:
        for k in (1, 4, 9, 64, 65, 10**9):
            out[f"u_{ties}_{k}"], out[f"g_{ties}_{k}"] = model.utilities_vjp(pi, k, q, ties)
    np.savez(sys.argv[1], **out)
""")


def test_thread_count_does_not_change_any_bit(tmp_path):
    results = outputs_by_thread_count(tmp_path, SCRIPT, (1, 2, 3))
    if ua.has_openmp:
        for threads, out in results.items():
            assert int(out["max_threads"][0]) == threads
    keys = sorted(key for key in results[1] if key != "max_threads")
    assert len(keys) == 48
    for threads in (2, 3):
        for key in keys:
            assert results[1][key].tobytes() == results[threads][key].tobytes(), f"{key}: 1 vs {threads} threads"


TIMING = textwrap.dedent("""
    import time
    import numpy as np
    import ualign as ua

    rng = np.random.default_rng(3)
    n, m = 1000, 100
    model = ua.RankingPopulation(rng.integers(0, 30, size=(n, m)))
    pi = rng.random(m)
    pi /= pi.sum()
    q = rng.standard_normal(m)
    for ties in ua.TIES:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            u, g = model.utilities_vjp(pi, 10**9, q, ties)
            best = min(best, time.perf_counter() - start)
        print(ties, best)
""")


def test_large_k_takes_constant_time_per_level(tmp_path):
    """k = 10^9 at n = 1000, m = 100 (an O(k) sum per level would take minutes)."""
    script = tmp_path / "timing.py"
    script.write_text(TIMING)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, timeout=120,
                          capture_output=True, text=True)
    lines = done.stdout.strip().split("\n")
    assert [line.split()[0] for line in lines] == list(ua.TIES)
    for line in lines:
        assert float(line.split()[1]) < 1.0, line
