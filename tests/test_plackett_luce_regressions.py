"""PlackettLuceMixture on the inputs that fuzzing broke, checked against closed
forms and 30-digit mpmath (``pl_reference``) at tight tolerances:

* the vector-Jacobian product when the policy sits ~745 below the row maximum
  (NaN gradients: a rate capped at e^700 times a large coefficient overflowed,
  and inf * e^{-a} = inf * 0);
* rewards far below their row maximum (1e8 ... 1e300): shifting a row by its
  maximum rounded 0 and log 2 under a maximum of 1e16 to the same value;
* very large k (up to 2^63 - 1): (sum pi)^k with the rounded sum of pi was off
  by ~k m eps, and P[pi^k > pi] by 2.3e-10 already at k = 2^20;
* exceptions inside the OpenMP regions of the kernels.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import mpmath as mp
import numpy as np
import pytest

import pl_oracle
import pl_reference
import ualign as ua
from ualign._validate import K_MAX

PL = ua.PlackettLuceMixture
ATOL = 1e-12


def _one_point(rewards, z0, k, q):
    """u_y = P[y > pi^k] and g_z = k sum_y q_y P[y > {z} + pi^(k-1)] when pi puts
    all its mass on z0 (pi^k is k copies of z0), at 40 digits."""
    with mp.workdps(40):
        top = max(mp.mpf(float(r)) for r in rewards)
        e = [mp.exp(mp.mpf(float(r)) - top) for r in rewards]
        K = mp.mpf(k)
        u = [e[y] / (e[y] + K * e[z0]) for y in range(len(e))]
        g = [K * mp.fsum(mp.mpf(float(q[y])) * e[y] / (e[y] + e[z] + (K - 1) * e[z0]) for y in range(len(e)))
             for z in range(len(e))]
        return np.array([float(x) for x in u]), np.array([float(x) for x in g])


# ---------------------------------------------------------------------------
# NaN gradients: policy mass ~745 below the row maximum
# ---------------------------------------------------------------------------
FUZZ_VJP = [
    ([-1.3888153462483683, -1.5905407310181103, -737.3230992992516], 2, 1000,
     [1.1280697985471762, 0.5698114114359822, 0.7713171674623776]),
    ([2.9261684259342493, -744.9655095835276, -0.3402190074465059], 1, 1000,
     [1.9461958624531686, -1.7940144995372673, 0.569667279877561]),
    ([-742.509019857433, -2.279679897188506, 1.4090885822458343], 0, 1000,
     [-0.7922642898038712, -0.4989972988654981, 2.5049664119260746]),
    ([-747.5913807376093, -1.4639431787656076], 0, 1000, [-0.4184794798074207, 2.147519522120403]),
] + [([0.0, -1.0, -gap], 2, k, [1.0, -0.5, 0.3])
     for gap in (700.0, 745.0, 745.2, 746.0, 800.0, 1e4, 1e16) for k in (1, 1000, 2 ** 40)]


@pytest.mark.parametrize("rewards, z0, k, q", FUZZ_VJP)
def test_vjp_with_mass_far_below_the_maximum(rewards, z0, k, q):
    pi = np.zeros(len(rewards))
    pi[z0] = 1.0
    u, g = PL([rewards]).utilities_vjp(pi, k, q)
    assert np.isfinite(u).all() and np.isfinite(g).all()
    exact_u, exact_g = _one_point(rewards, z0, k, q)
    np.testing.assert_allclose(u, exact_u, rtol=0, atol=ATOL)
    assert (np.abs(g - exact_g) <= ATOL * np.maximum(1.0, np.abs(exact_g))).all()


def test_vjp_with_mass_far_below_against_enumeration():
    """A spread policy, k = 3 and large q (the overflow did not need a large k)."""
    rewards = np.array([[0.0, -1.0, -745.5, 3.0], [-746.0, 2.0, 0.5, -0.25]])
    weights = np.array([0.3, 0.7])
    pi = np.array([0.1, 0.2, 0.4, 0.3])
    q = np.array([1e5, -2e5, 3e5, 1e5])
    u, g = PL(rewards, weights).utilities_vjp(pi, 3, q)
    np.testing.assert_allclose(u, pl_oracle.utilities(rewards, weights, pi, 3), rtol=0, atol=ATOL)
    exact = pl_oracle.utilities_gradient(rewards, weights, pi, 3, q)
    assert (np.abs(g - exact) <= ATOL * np.maximum(1.0, np.abs(exact))).all()


# ---------------------------------------------------------------------------
# rewards far below their row maximum
# ---------------------------------------------------------------------------
GAPS = [1e8, 1e10, 1e12, 1e16, 1e300]


@pytest.mark.parametrize("gap", GAPS)
def test_huge_reward_gaps_closed_forms(gap):
    """Rewards 0 and log 2 under a maximum of `gap`: P[1 > 2] = 1/3 (the shifted
    rows gave 0.5 at 1e16); multisets against multisets; the top pair too."""
    model = PL([[gap, 0.0, math.log(2.0), -1.5]])
    third = 1.0 / 3.0
    assert abs(model.win_rate(1, 2) - third) <= 1e-15
    assert abs(model.pairwise()[1, 2] - third) <= 1e-15
    assert abs(model.pairwise()[2, 1] - 2 * third) <= 1e-15
    assert abs(model.beats(2)[1] - third) <= 1e-15
    assert abs(model.win_rate([1, 1], [2, 2, 2, 2]) - 0.2) <= 1e-15  # 2 / (2 + 4 * 2)
    assert abs(model.win_rate([1, 3], [2]) - (1 + math.exp(-1.5)) / (3 + math.exp(-1.5))) <= 1e-15
    assert model.win_rate(0, [1, 2, 3]) == 1.0
    # two top members of equal reward: log W({0, 0}) = gap + log 2 must not round to gap
    twins = PL([[gap, gap, 0.0]])
    assert abs(twins.win_rate([0, 0], 1) - 2 * third) <= 1e-15
    assert abs(twins.win_rate([0, 2], [1, 1, 1]) - 0.25) <= 1e-15
    np.testing.assert_allclose(twins.beats([0, 0]), [third, third, 0.0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("gap", [1e10, 1e16, 1e300])
def test_huge_reward_gaps_against_mpmath(gap):
    """Products whose members sit far below the maximum (and one that has mass on
    the maximum too) against 30-digit integrals in each window's own frame."""
    rewards = [gap, 0.0, math.log(2.0), -1.5]
    model = PL([rewards])
    pi = np.array([0.0, 0.3, 0.5, 0.2])
    sigma = np.array([0.1, 0.5, 0.0, 0.4])
    for k in (1, 3):
        u = model.utilities(pi, k)
        for y in range(4):
            assert abs(u[y] - float(pl_reference.utility(rewards, pi, k, y))) <= ATOL
        assert abs(float(pi @ u) - 1 / (k + 1)) <= ATOL
        exact = float(pl_reference.product_win(rewards, pi, k, sigma, 2))
        assert abs(model.win_rate(ua.Product(pi, k), ua.Product(sigma, 2)) - exact) <= ATOL
        assert abs(model.win_rate(ua.Product(sigma, 2), ua.Product(pi, k)) - (1 - exact)) <= ATOL
    # sigma draws the top response with probability 0.1 per draw: everything else
    # beats sigma^2 only when neither draw is the top, then as in the lower group
    u = model.utilities(sigma, 2)
    lower = PL([rewards[1:]]).utilities(sigma[1:] / 0.9, 2)
    np.testing.assert_allclose(u[1:], 0.81 * lower, rtol=0, atol=ATOL)


# ---------------------------------------------------------------------------
# very large k
# ---------------------------------------------------------------------------
HUGE_K = [2 ** 20, 2 ** 40, 10 ** 15, K_MAX]  # up to the supported range (ualign._validate.K_MAX)


@pytest.mark.parametrize("k", HUGE_K)
def test_huge_k_identities(k):
    """Win rates in [0, 1], sum_y pi(y) u_y = 1/(k+1), P[pi^k > pi] = k/(k+1),
    antisymmetry, on 20 responses over [-20, 20] (a 2-type mixture)."""
    rng = np.random.default_rng(3)
    m = 20
    model = PL(rng.uniform(-20, 20, size=(2, m)), [0.4, 0.6])
    pi = rng.random(m)
    pi /= pi.sum()
    sigma = rng.random(m) * (rng.random(m) < 0.5)
    sigma[0] = 0.3
    sigma /= sigma.sum()
    u = model.utilities(pi, k)
    assert (u >= -ATOL).all() and (u <= 1 + ATOL).all()
    assert abs(math.fsum(pi * u) - 1 / (k + 1)) <= ATOL
    u_vjp, g = model.utilities_vjp(pi, k, rng.normal(size=m))
    np.testing.assert_allclose(u_vjp, u, rtol=0, atol=ATOL)
    assert np.isfinite(g).all()
    assert abs(model.win_rate(ua.Product(pi, k), ua.Product(pi, 1)) - k / (k + 1)) <= ATOL
    singles = ua.MultisetPolicy([[y] for y in range(m)], pi)
    assert abs(model.win_rate(ua.Product(pi, k), singles) - k / (k + 1)) <= ATOL
    for other in (ua.Product(sigma, 7), ua.Product(sigma, k), ua.MultisetPolicy([[0, 1], [5]], [0.5, 0.5])):
        ab, ba = model.win_rate(ua.Product(pi, k), other), model.win_rate(other, ua.Product(pi, k))
        assert -ATOL <= ab <= 1 + ATOL and -ATOL <= ba <= 1 + ATOL
        assert abs(ab + ba - 1) <= ATOL
    beats = model.beats(ua.ProductMixture(np.stack([pi, sigma]), [0.5, 0.5], k))
    assert (beats >= -ATOL).all() and (beats <= 1 + ATOL).all()


@pytest.mark.parametrize("k", HUGE_K)
def test_huge_k_closed_forms(k):
    """Equal rewards: P[pi^k > sigma^l] = k / (k + l) for any pi, sigma (the best
    of k + l exchangeable draws); one-point policies: u_y = e(y) / (e(y) + k e(z0))."""
    rng = np.random.default_rng(4)
    m = 6
    pi, sigma = rng.random(m), rng.random(m)
    pi, sigma = pi / pi.sum(), sigma / sigma.sum()
    equal = PL(np.full((1, m), 3.0))
    for l in (1, 5, 3 ** 30, k):
        assert abs(equal.win_rate(ua.Product(pi, k), ua.Product(sigma, l)) - k / (k + l)) <= 1e-15
    rewards = rng.uniform(-5, 5, size=m)
    one_point = np.zeros(m)
    one_point[2] = 1.0
    q = rng.normal(size=m)
    u, g = PL([rewards]).utilities_vjp(one_point, k, q)
    exact_u, exact_g = _one_point(rewards, 2, k, q)
    np.testing.assert_allclose(u, exact_u, rtol=0, atol=1e-15)
    assert (np.abs(g - exact_g) <= ATOL * np.maximum(1.0, np.abs(exact_g))).all()


@pytest.mark.parametrize("k", [2 ** 20, 2 ** 40, K_MAX])
def test_huge_k_against_mpmath(k):
    rng = np.random.default_rng(5)
    m = 12
    rewards = rng.uniform(-20, 20, size=m)
    pi = rng.random(m)
    pi /= pi.sum()
    sigma = rng.random(m) * (rng.random(m) < 0.6)
    sigma[1] = 0.2
    sigma /= sigma.sum()
    model = PL(rewards[None, :])
    u = model.utilities(pi, k)
    for y in (int(np.argmax(rewards)), int(np.argmin(rewards)), 4):
        assert abs(u[y] - float(pl_reference.utility(rewards, pi, k, y))) <= ATOL
    for a, b, l in ((pi, sigma, 7), (sigma, pi, 3)):
        exact = float(pl_reference.product_win(rewards, a, k, b, l))
        assert abs(model.win_rate(ua.Product(a, k), ua.Product(b, l)) - exact) <= ATOL


def test_policy_sum_off_by_the_tolerance_moves_results_by_that_much():
    """A policy accepted with sum 1 + 1e-10 moves results by O(1e-10), not
    O(k 1e-10) (the degree-k polynomial would give e^110 at k = 2^40)."""
    rng = np.random.default_rng(6)
    m = 8
    model = PL(rng.uniform(-10, 10, size=(1, m)))
    pi = rng.random(m)
    pi /= pi.sum()
    bumped = pi.copy()
    bumped[3] += 1e-10
    for k in (1, 8, 2 ** 40, K_MAX):
        u, v = model.utilities(pi, k), model.utilities(bumped, k)
        assert (v >= -ATOL).all() and (v <= 1 + ATOL).all()
        np.testing.assert_allclose(v, u, rtol=0, atol=1e-9)
        w = model.win_rate(ua.Product(bumped, k), ua.Product(pi, 1))
        assert abs(w - k / (k + 1)) <= 1e-9


# ---------------------------------------------------------------------------
# no exception leaves an OpenMP region
# ---------------------------------------------------------------------------
MEMORY_SCRIPT = textwrap.dedent("""
    import resource
    import sys

    import numpy as np
    import ualign as ua

    m = 1 << 18  # 2 MiB per vector of responses
    model = ua.PlackettLuceMixture(np.zeros((1, m)))
    pi = np.full(m, 1.0 / m)
    a = ua.operands.as_operand(ua.Product(pi, 2), m, "a").parts()
    b = ua.operands.as_operand(ua.Product(pi, 3), m, "b").parts()
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    with open("/proc/self/status") as status:
        base = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    outcomes = []
    for step in range(160):
        resource.setrlimit(resource.RLIMIT_AS, (base + step * (2 << 20) // 8, hard))
        try:
            value = model._store.win_rate(a, b, 0)
        except MemoryError:
            outcomes.append("MemoryError")
            continue
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        assert abs(value - 0.4) <= 1e-12, value  # equal rewards: k / (k + l)
        outcomes.append("ok")
        break
    print(outcomes.count("MemoryError"), outcomes[-1])
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_AS and /proc")
def test_allocation_failures_inside_the_kernels_raise_memory_error(tmp_path):
    """Every address-space limit from "nothing left" up to "enough", in steps of
    1/8 of a response vector: an allocation that fails anywhere in the kernel --
    before its OpenMP region, in a worker's scratch, in a worker's call -- gives
    MemoryError, never std::terminate (an exception leaving the region)."""
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")  # no thread stacks or arenas in the address space
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    failures, last = run.stdout.split()
    assert last == "ok" and int(failures) >= 40, run.stdout
