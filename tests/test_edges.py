"""The edges of the supported range: k up to K_MAX = 2**53 - 1, policies within the
sum tolerance, huge or overflowing arguments, exceptions inside parallel regions.

Large k cannot be enumerated, so the reference here evaluates the closed forms
of one voter's best level in 50-digit arithmetic (mpmath) on the exact values of
the float inputs: for a response y at level r, L = the policy mass strictly below
r and E = the mass at r (all draws independent),

    P[y > pi^k]  strict L^k, weak (L+E)^k, half their mean,
                 uniform E[1/(1+c)] = int_0^1 (L + E t)^k dt,  c = draws tied with y,

and P[best level of k draws >= r] = (mass at levels >= r)^k for win rates. The
reference is itself checked against the brute-force oracle at small k.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import mpmath
import numpy as np
import pytest

import oracle
import ualign as ua
from ualign._validate import K_MAX, SIMPLEX_TOLERANCE, as_distribution, as_distribution_batch

ATOL = 1e-12
LARGE_KS = (65, 10**6, 10**9, 10**12, K_MAX)
TIE_VALUE = {"strict": 0, "weak": 1, "half": mpmath.mpf(1) / 2}
MIRROR = {"uniform": "uniform", "half": "half", "strict": "weak", "weak": "strict"}


# ---------------------------------------------------------------------------
# 50-digit reference from the closed forms
# ---------------------------------------------------------------------------
def _exact(values):
    """Exact values of floats, normalised to sum 1 (the policy ualign uses)."""
    with mpmath.workdps(60):
        exact = [mpmath.mpf(float(v)) for v in values]
        total = mpmath.fsum(exact)
        return [v / total for v in exact]


def _levels(ranks):
    """Dense levels per voter, 0 the best."""
    return [np.unique(row, return_inverse=True)[1] for row in np.asarray(ranks)]


def ref_utilities(ranks, weights, pi, k, ties):
    with mpmath.workdps(50):
        w = _exact(np.ones(len(ranks)) if weights is None else weights)
        p = _exact(pi)
        m = len(p)
        out = [mpmath.mpf(0)] * m
        for wi, row in zip(w, _levels(ranks)):
            for y in range(m):
                L = mpmath.fsum(p[z] for z in range(m) if row[z] > row[y])
                E = mpmath.fsum(p[z] for z in range(m) if row[z] == row[y])
                if ties == "strict":
                    value = L**k
                elif ties == "weak":
                    value = (L + E) ** k
                elif ties == "half":
                    value = (L**k + (L + E) ** k) / 2
                else:
                    value = ((L + E) ** (k + 1) - L ** (k + 1)) / ((k + 1) * E) if E > 0 else L**k
                out[y] += wi * value
        return np.array([float(v) for v in out])


def ref_win_rate(ranks, weights, pi, k, sigma, j, ties):
    """P[pi^k > sigma^j] for ties other than "uniform"."""
    with mpmath.workdps(50):
        w = _exact(np.ones(len(ranks)) if weights is None else weights)
        p, s = _exact(pi), _exact(sigma)
        total = mpmath.mpf(0)
        for wi, row in zip(w, _levels(ranks)):
            R = int(row.max()) + 1
            at_or_below_a = [mpmath.fsum(p[z] for z in range(len(p)) if row[z] >= r) ** k for r in range(R + 1)]
            at_or_below_b = [mpmath.fsum(s[z] for z in range(len(s)) if row[z] >= r) ** j for r in range(R + 1)]
            for r in range(R):
                best_a = at_or_below_a[r] - at_or_below_a[r + 1]
                best_b = at_or_below_b[r] - at_or_below_b[r + 1]
                total += wi * best_a * (at_or_below_b[r + 1] + TIE_VALUE[ties] * best_b)
        return float(total)


def _instance(seed):
    """Strict or weak orders, weights, zero-probability responses, a tiny-mass
    response, and a policy off its sum by up to SIMPLEX_TOLERANCE / 2."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 5)), int(rng.integers(2, 13))
    if seed % 2:
        ranks = rng.integers(0, int(rng.integers(1, m + 1)), size=(n, m))
    else:
        ranks = np.stack([rng.permutation(m) for _ in range(n)])
    weights = rng.random(n) + 0.1 if seed % 2 else None
    pi = rng.random(m) * (rng.random(m) < 0.8)
    pi[int(rng.integers(0, m))] = 1.0
    if seed % 3 == 0:  # a response of mass ~1e-13: at k ~ 1e12..1e16 its level's complement is all that matters
        pi[int(rng.integers(0, m))] = 1e-13 * pi.sum()
    pi = pi / pi.sum() * (1 + SIMPLEX_TOLERANCE / 2 * rng.uniform(-1, 1))
    sigma = rng.random(m) + 0.01
    return ranks, weights, pi, sigma / sigma.sum()


SEEDS = range(12)


@pytest.mark.parametrize("ties", ua.TIES)
def test_reference_matches_the_oracle(ties):
    """The closed-form reference is the brute-force definition at small k."""
    for seed in range(6):
        ranks, weights, pi, sigma = _instance(seed)
        policy = ua.Product(pi, 1).policy  # the renormalised policy the oracle must see
        for k in (1, 2, 3):
            np.testing.assert_allclose(ref_utilities(ranks, weights, policy, k, ties),
                                       oracle.utilities(ranks, weights, policy, k, ties), rtol=0, atol=ATOL)
            if ties != "uniform":
                assert math.isclose(ref_win_rate(ranks, weights, policy, k, sigma, 2, ties),
                                    oracle.win_rate(ranks, weights, oracle.prod(policy, k), oracle.prod(sigma, 2), ties),
                                    rel_tol=0, abs_tol=ATOL)


# ---------------------------------------------------------------------------
# accuracy and identities across the supported range
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", LARGE_KS)
@pytest.mark.parametrize("ties", ua.TIES)
def test_utilities_match_the_reference_at_large_k(ties, k):
    for seed in SEEDS:
        ranks, weights, pi, _ = _instance(seed)
        u = ua.RankingPopulation(ranks, weights).utilities(pi, k, ties)
        np.testing.assert_allclose(u, ref_utilities(ranks, weights, pi, k, ties), rtol=0, atol=ATOL,
                                   err_msg=f"seed {seed}")
        assert ((0.0 <= u) & (u <= 1.0)).all()


@pytest.mark.parametrize("k", LARGE_KS)
@pytest.mark.parametrize("ties", ua.TIES)
def test_mixtures_match_the_reference_at_large_k(ties, k):
    """Each product term of a mixture takes the same closed forms."""
    for seed in SEEDS:
        ranks, weights, pi, sigma = _instance(seed)
        mixture = ua.ProductMixture([pi, sigma], [0.25, 0.75], k)
        expected = (0.25 * ref_utilities(ranks, weights, mixture.policies[0], k, ties)
                    + 0.75 * ref_utilities(ranks, weights, sigma, k, ties))
        beats = ua.RankingPopulation(ranks, weights).beats(mixture, ties)
        np.testing.assert_allclose(beats, expected, rtol=0, atol=ATOL, err_msg=f"seed {seed}")


@pytest.mark.parametrize("k", LARGE_KS)
@pytest.mark.parametrize("ties", ["half", "strict", "weak"])
def test_win_rates_match_the_reference_at_large_k(ties, k):
    for seed in SEEDS:
        ranks, weights, pi, sigma = _instance(seed)
        model = ua.RankingPopulation(ranks, weights)
        for j in (1, 1000, k):
            win = model.win_rate(ua.Product(pi, k), ua.Product(sigma, j), ties)
            assert math.isclose(win, ref_win_rate(ranks, weights, pi, k, sigma, j, ties), rel_tol=0, abs_tol=ATOL)
            assert 0.0 <= win <= 1.0


@pytest.mark.parametrize("k", LARGE_KS)
@pytest.mark.parametrize("ties", ua.TIES)
def test_identities_hold_across_the_range(ties, k):
    for seed in SEEDS:
        ranks, weights, pi, sigma = _instance(seed)
        model = ua.RankingPopulation(ranks, weights)
        policy = ua.Product(pi, k).policy
        u = model.utilities(pi, k, ties)
        mirrored = model.utilities(pi, k, MIRROR[ties])
        if ties == "uniform":
            # sum_y pi(y) u_y = 1/(k+1), relative to 1/(k+1) too; the level certificate
            assert math.isclose((k + 1) * math.fsum(policy * u), 1.0, rel_tol=0, abs_tol=ATOL)
            assert math.isclose(ua.robust_level(model, pi, k), k / (k + 1) - ua.exploitability(model, pi, k),
                                rel_tol=0, abs_tol=ATOL)
        else:
            # P[pi^k > y] + P[y >' pi^k] = 1 (strict <-> weak), and the antisymmetry of
            # two products: P[a > b] + P[b >' a] = 1, e.g. P[a > b] + P[b > a] = 1 under "half"
            for y in range(len(policy)):
                assert math.isclose(model.win_rate(ua.Product(pi, k), y, ties) + mirrored[y], 1.0,
                                    rel_tol=0, abs_tol=ATOL)
            a, b = ua.Product(pi, k), ua.Product(sigma, k // 3 + 1)
            assert math.isclose(model.win_rate(a, b, ties) + model.win_rate(b, a, MIRROR[ties]), 1.0,
                                rel_tol=0, abs_tol=ATOL)
        assert math.isclose(ua.robust_level(model, pi, k, ties), 1.0 - mirrored.max(), rel_tol=0, abs_tol=0)


def test_uniform_win_rates_up_to_the_draw_limit():
    """Uniform ties need (k_a + k_b)/2 quadrature nodes: exact up to 10,000 draws."""
    for seed in SEEDS:
        ranks, weights, pi, _ = _instance(seed)
        model = ua.RankingPopulation(ranks, weights)
        u = model.utilities(pi, 9999)
        for y in range(len(pi)):
            win = model.win_rate(ua.Product(pi, 9999), y)
            assert 0.0 <= win <= 1.0
            assert math.isclose(win + u[y], 1.0, rel_tol=0, abs_tol=ATOL)


def test_uniform_draw_limit_cannot_overflow():
    model = ua.RankingPopulation([[0, 1, 1], [2, 0, 1]])
    pi = [0.2, 0.3, 0.5]
    for k in (10**4, 10**12, K_MAX):
        with pytest.raises(ValueError, match=r"^a, b: uniform-tie win rates are exact up to 10000 draws"):
            model.win_rate(ua.Product(pi, k), ua.Product(pi, k))
    store = model._store
    parts = (np.array([pi]), np.ones(1), np.array([K_MAX]), np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0))
    with pytest.raises(ValueError, match=r"^a, b: .*10000 draws"):
        store.win_rate(parts, parts, 0)


# ---------------------------------------------------------------------------
# policies within the sum tolerance
# ---------------------------------------------------------------------------
def test_near_normalised_policy_stays_in_range():
    """Used as given, a policy 9e-10 off its sum had its error raised to the power
    k: utilities 1.23, a robust level of -0.23, a self-play win rate of 3."""
    model = ua.RankingPopulation([[0, 1], [1, 0]])
    pi = [0.5, 0.5 + 9e-10]
    k = 10**9
    for ties in ua.TIES:
        u = model.utilities(pi, k, ties)
        np.testing.assert_allclose(u, ref_utilities([[0, 1], [1, 0]], None, pi, k, ties), rtol=0, atol=ATOL)
        assert ((0.0 <= u) & (u <= 1.0)).all()
        assert 0.0 <= ua.robust_level(model, pi, k, ties) <= 1.0
    np.testing.assert_allclose(model.utilities(pi, k, "weak"), [0.5, 0.5], rtol=0, atol=ATOL)
    assert math.isclose(ua.robust_level(model, pi, k, "strict"), 0.5, rel_tol=0, abs_tol=ATOL)
    assert math.isclose(model.win_rate(ua.Product(pi, k), ua.Product(pi, k), "half"), 0.5, rel_tol=0, abs_tol=ATOL)
    policy = ua.Product(pi, 10**6).policy
    assert math.isclose(float(policy @ model.utilities(pi, 10**6)) * (10**6 + 1), 1.0, rel_tol=0, abs_tol=ATOL)


def _policies(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 40))
    pi = rng.random(m) * (rng.random(m) < 0.7)
    pi[int(rng.integers(0, m))] += 0.5
    return pi / pi.sum() * (1 + SIMPLEX_TOLERANCE * rng.uniform(-1, 1) * (seed % 3 != 0))


def test_renormalisation_is_exact_and_idempotent():
    changed = 0
    for seed in range(300):
        pi = _policies(seed)
        checked = as_distribution(pi, "policy")
        assert math.fsum(checked) == 1.0
        assert (checked >= 0).all() and ((checked == 0) == (pi == 0)).all()
        np.testing.assert_allclose(checked, pi, rtol=2 * SIMPLEX_TOLERANCE, atol=0)
        assert as_distribution(checked, "policy").tobytes() == checked.tobytes()
        if math.fsum(pi) == 1.0:
            assert checked.tobytes() == pi.tobytes()  # used exactly as given
        else:
            changed += 1
    assert changed > 150


def test_batch_renormalisation_equals_one_at_a_time():
    rows = [_policies(seed) for seed in range(200)]
    flat, offsets = as_distribution_batch(rows, [len(r) for r in rows], list(range(len(rows))), "policies")
    for p, row in enumerate(rows):
        assert flat[offsets[p]:offsets[p + 1]].tobytes() == as_distribution(row, "policy").tobytes()
    for p in (0, 1, 2):  # the caller's arrays are left alone
        assert rows[p].tobytes() == _policies(p).tobytes()


# ---------------------------------------------------------------------------
# the range of k: ValueErrors naming the argument, never a crash
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("k", [K_MAX + 1, 2**62, 2**63 - 1, 2**63, 2**64])
def test_k_beyond_the_range_names_k(k):
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0]])
    pi = [0.2, 0.3, 0.5]
    for call in (lambda: ua.Product(pi, k), lambda: ua.ProductMixture([pi], [1.0], k),
                 lambda: model.utilities(pi, k), lambda: ua.robust_level(model, pi, k),
                 lambda: model.utilities_vjp(pi, k, [1.0, 0.0, 0.0])):
        with pytest.raises(ValueError, match=r"^k: must be <= K_MAX"):
            call()
    with pytest.raises(ValueError, match=r"^ks\[1\]: must be <= K_MAX"):
        ua.audit_many([model], [pi], ks=[3, k], methods=["given"])


@pytest.mark.parametrize("k", [0, K_MAX + 1, 2**62, 2**63 - 1])
def test_core_checks_k_as_well(k):
    """The compiled core checks the same range as ualign's validation."""
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0]])
    store, pi = model._store, np.array([0.2, 0.3, 0.5])
    product = (pi[None], np.ones(1), np.array([k]), np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0))
    with pytest.raises(ValueError, match=r"^operand: k must be in \[1, 2\*\*53 - 1"):
        store.beat_probabilities(product, 1)
    with pytest.raises(ValueError, match=r"^a: k must be in"):
        store.win_rate(product, product, 1)
    with pytest.raises(ValueError, match=r"^k: must be in"):
        store.utilities_vjp(pi, pi, k, 1)
    with pytest.raises(ValueError, match=r"^ks\[1\]: must be in"):
        ua._core.audit_policies([store], pi, np.array([0, 3]), np.array([2, k]), 1)
    store.beat_probabilities(product[:2] + (np.array([K_MAX]),) + product[3:], 1)  # the largest k is accepted
    with pytest.raises(ValueError, match=r"^operand: a policy must have a positive total mass"):
        store.beat_probabilities((np.zeros((1, 3)),) + product[1:2] + (np.array([2]),) + product[3:], 1)


CRASH_SCRIPT = textwrap.dedent("""
    import numpy as np, ualign as ua
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0], [1, 1, 0]])
    pi = np.array([0.2, 0.3, 0.5])
    for ties in ua.TIES:
        for ks in ([2**33], [2**62], [2**63 - 1], [1, 70, {k_max}]):
            try:
                frame = ua.audit_many([model, model], [pi, pi], ks=ks, methods=["given"], ties=ties)
            except ValueError as error:
                print(ties, ks, "ValueError", str(error).split(":")[0])
                continue
            for row in frame.itertuples():
                assert row.robust_level == ua.robust_level(model, pi, row.k, ties)
                assert (row.best_response, row.best_utility) == ua.best_response(model, pi, row.k, ties)
                assert row.exploitability == ua.exploitability(model, pi, row.k, ties)
                assert 0 <= row.robust_level <= 1 and 0 <= row.best_utility <= 1
            print(ties, ks, "ok")
""")


def test_huge_ks_in_a_batch_audit_do_not_crash(tmp_path):
    """ks=[2**33] allocated a table of 2**33 entries inside a parallel region (the
    process died of std::bad_alloc); 2**63 - 1 overflowed k + 1."""
    result = subprocess.run([sys.executable, "-c", CRASH_SCRIPT.format(k_max=K_MAX)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 16
    for ties in ua.TIES:
        assert f"{ties} [8589934592] ok" in lines
        assert f"{ties} [4611686018427387904] ValueError ks[0]" in lines
        assert f"{ties} [9223372036854775807] ValueError ks[0]" in lines
        assert f"{ties} [1, 70, {K_MAX}] ok" in lines


MEMORY_SCRIPT = textwrap.dedent("""
    import resource
    import numpy as np, ualign as ua
    model = ua.RankingPopulation(np.arange(20000)[None, :] % 7)
    pi = np.full(20000, 1 / 20000)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:  # the quadrature tables of two 9,000-draw operands: 20,001 x 4,500 doubles, four times
        model.win_rate(ua.Product(pi, 4500), ua.Product(pi, 4500))
    except MemoryError:
        print("MemoryError")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_allocation_failure_inside_a_parallel_region_is_raised(tmp_path):
    """An exception thrown inside an OpenMP region used to terminate the process."""
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MemoryError"]


THREADS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, ualign as ua
    rng = np.random.default_rng(7)
    ranks = rng.integers(0, 9, size=(5000, 30))
    model = ua.RankingPopulation(ranks, rng.random(5000))
    pi = rng.random(30)
    pi /= pi.sum()
    out = [model.utilities(pi, k, ties) for ties in ua.TIES for k in (65, 10**9, {k_max})]
    out += [np.array([model.win_rate(ua.Product(pi, k), ua.Product(pi[::-1], 3), ties)])
            for ties in ("half", "strict", "weak") for k in (10**9, {k_max})]
    sys.stdout.write(np.concatenate(out).tobytes().hex())
""")


def test_large_k_results_do_not_depend_on_threads(tmp_path):
    def run(threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        return subprocess.run([sys.executable, "-c", THREADS_SCRIPT.format(k_max=K_MAX)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=True).stdout

    assert run(1) == run(2)
