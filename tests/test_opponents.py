"""Opponents with several outputs (Cai & Zheng, arXiv:2601.08777, §D.7): the level
``f_l(pi, k) = min_{|Y| = l} P[pi^{⊗k} ≻ Y]``, its worst opponent and the search's
certificate, against brute force (tests/oracle.py enumerates every multiset Y,
every k-tuple of draws and every voter) under all four tie conventions, on strict,
weak, non-dense and all-tied orders with zero weights and zero-probability
responses; the gradient behind the cutting planes; the optimal policy against
l-output opponents and its certified gap."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import oracle
import pytest
from helpers import random_ranks

import ualign as ua
from ualign._validate import tie_code


def instance(seed: int, n_max: int = 4, m_max: int = 4) -> tuple:
    """(model, ranks, weights, pi): some zero weights, some zero-probability responses."""
    rng = np.random.default_rng(900 + seed)
    n, m = int(rng.integers(1, n_max + 1)), int(rng.integers(1, m_max + 1))
    style = ("strict", "weak", "nondense", "all_tied")[seed % 4] if m > 1 else "weak"
    ranks = random_ranks(rng, n, m, style)
    weights = rng.random(n) + 0.05
    weights[rng.random(n) < 0.3] = 0.0
    if not weights.sum() > 0:
        weights[-1] = 1.0
    pi = rng.random(m) * (rng.random(m) < 0.7)
    if not pi.sum() > 0:
        pi[int(rng.integers(m))] = 1.0
    pi = pi / pi.sum()
    return ua.RankingPopulation(ranks, weights), ranks, weights, pi


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ties", oracle.TIES)
def test_level_against_brute_force(seed: int, ties: str) -> None:
    model, ranks, weights, pi = instance(seed)
    m = model.n_responses
    for k in (1, 2, 3):
        for ell in (1, 2, 3):
            level, worst = oracle.opponent_level(ranks, weights, pi, k, ell, ties)
            got = ua.robust_level(model, pi, k, ties, opponent_k=ell)
            assert abs(got - level) <= 1e-12
            Y, value = ua.worst_case_opponent(model, pi, k, ties, opponent_k=ell)
            assert value == got
            if ell == 1:  # today's answer, bit for bit
                assert got == ua.robust_level(model, pi, k, ties)
                assert (Y, value) == ua.worst_case_opponent(model, pi, k, ties)
                continue
            assert isinstance(Y, tuple) and len(Y) == ell and list(Y) == sorted(Y) and max(Y) < m
            # the opponent found attains the level, by the oracle's count
            assert abs(oracle.win_rate(ranks, weights, oracle.prod(pi, k), list(Y), ties) - level) <= 1e-12
            search = ua.opponent_search(model, pi, k, ell, ties)
            assert search.exact and search.lower_bound == search.level == got
            assert search.method == "branch and bound" and search.opponent == Y


@pytest.mark.parametrize("ties", oracle.TIES)
def test_multi_output_policies_against_brute_force(ties: str) -> None:
    """Committees and self-play mixtures against l-output opponents."""
    rng = np.random.default_rng(77)
    for seed in range(6):
        model, ranks, weights, pi = instance(seed, n_max=4, m_max=4)
        m = model.n_responses
        multisets = [list(rng.integers(0, m, size=s)) for s in (1, 2, 2, 3)]
        probabilities = rng.dirichlet(np.ones(4))
        committee = ua.MultisetPolicy(multisets, probabilities)
        sigma = rng.dirichlet(np.ones(m))
        mixture = ua.ProductMixture([pi, sigma], [0.3, 0.7], 2)
        cases = [(committee, oracle.multi(multisets, probabilities)),
                 (mixture, oracle.mix([pi, sigma], [0.3, 0.7], 2))]
        for policy, reference in cases:
            for ell in (2, 3):
                level, _ = oracle.opponent_level(ranks, weights, reference, None, ell, ties)
                assert abs(ua.robust_level(model, policy, ties=ties, opponent_k=ell) - level) <= 1e-12


def test_repeated_members_matter_only_under_uniform_ties() -> None:
    """Two copies of the policy's only response against it: under uniform ties the
    opponent's pair wins 2/3 of the tie with one draw (the policy keeps 1/3)."""
    model = ua.RankingPopulation([[0, 1]])
    pi = np.array([1.0, 0.0])
    assert ua.worst_case_opponent(model, pi, 1, "uniform", opponent_k=2) == ((0, 0), pytest.approx(1 / 3, abs=1e-15))
    assert ua.robust_level(model, pi, 1, "uniform", opponent_k=2) == pytest.approx(1 / 3, abs=1e-15)
    for ties, level in (("half", 0.5), ("strict", 0.0), ("weak", 1.0)):
        Y, value = ua.worst_case_opponent(model, pi, 1, ties, opponent_k=2)
        assert 0 in Y and value == pytest.approx(level, abs=1e-15)


def test_more_outputs_than_responses() -> None:
    """l > m: outside uniform ties every response is in Y (repeats fill it up)."""
    model, ranks, weights, pi = instance(1, n_max=3, m_max=3)
    m = model.n_responses
    for ties in oracle.TIES:
        for ell in (m + 1, m + 2):
            level, _ = oracle.opponent_level(ranks, weights, pi, 2, ell, ties)
            Y, value = ua.worst_case_opponent(model, pi, 2, ties, opponent_k=ell)
            assert len(Y) == ell and abs(value - level) <= 1e-12


def test_gradient_against_brute_force() -> None:
    """The cutting planes' gradient: d/dpi_z P[Y ≻ pi^{⊗k}] term by term (oracle)."""
    core = ua._core
    for seed in range(10):
        model, ranks, weights, pi = instance(seed, n_max=4, m_max=4)
        m = model.n_responses
        for k in (1, 2, 3):
            for ell in (1, 2, 3):
                for Y in itertools.combinations_with_replacement(range(m), ell):
                    for ties in oracle.TIES:
                        value, grad = core.opponent_gradient(model._store, np.array(Y), pi, k, tie_code(ties))
                        assert abs(value - oracle.win_rate(ranks, weights, list(Y), oracle.prod(pi, k), ties)) <= 1e-12
                        reference = oracle.multiset_gradient(ranks, weights, Y, pi, k, ties)
                        assert np.abs(grad - reference).max() <= 1e-12


def test_plackett_luce_enumeration() -> None:
    """Other models enumerate every multiset; a search stopped early still brackets
    the level (the greedy bound: the opponent's win rate is DR-submodular in Y)."""
    rng = np.random.default_rng(4)
    model = ua.PlackettLuceMixture(rng.normal(size=(3, 5)), weights=[0.5, 0.3, 0.2])
    pi = rng.dirichlet(np.ones(5))
    for ell in (2, 3):
        values = {Y: model.win_rate(ua.Product(pi, 3), list(Y))
                  for Y in itertools.combinations_with_replacement(range(5), ell)}
        search = ua.opponent_search(model, pi, 3, ell)
        assert search.exact and search.method == "enumeration"
        assert search.level == pytest.approx(min(values.values()), abs=1e-12)
        assert values[search.opponent] == pytest.approx(search.level, abs=1e-12)
        stopped = ua.opponent_search(model, pi, 3, ell, time_limit=1e-9)
        assert not stopped.exact and stopped.method == "enumeration (stopped by the time limit)"
        assert stopped.lower_bound <= search.level + 1e-12 <= stopped.level + 2e-12
        with pytest.raises(TimeoutError, match="^time_limit"):
            ua.robust_level(model, pi, 3, opponent_k=ell, time_limit=1e-9)


def test_stopped_search_is_certified() -> None:
    """A pool too large to finish in the time given: the result says so, and its
    bounds bracket the exact level of a search that finishes."""
    rng = np.random.default_rng(8)
    model = ua.RankingPopulation(rng.integers(0, 6, size=(300, 40)))
    pi = rng.dirichlet(np.ones(40))
    for ties in oracle.TIES:
        exact = ua.opponent_search(model, pi, 3, 4, ties)
        assert exact.exact
        stopped = ua.opponent_search(model, pi, 3, 4, ties, time_limit=1e-9)
        if stopped.exact:  # the first nodes already proved it
            assert stopped.level == exact.level
            continue
        assert stopped.method == "branch and bound (stopped by the time limit)"
        assert stopped.lower_bound <= exact.level + 1e-12 and exact.level <= stopped.level + 1e-12
        with pytest.raises(TimeoutError, match="^time_limit"):
            ua.worst_case_opponent(model, pi, 3, ties, opponent_k=4, time_limit=1e-9)


def test_bad_input() -> None:
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0]])
    pi = [0.5, 0.5, 0.0]
    with pytest.raises(ValueError, match="^opponent_k"):
        ua.robust_level(model, pi, 2, opponent_k=0)
    with pytest.raises(TypeError, match="^opponent_k"):
        ua.robust_level(model, pi, 2, opponent_k=2.0)
    with pytest.raises(TypeError, match="^opponent_k"):
        ua.worst_case_opponent(model, pi, 2, opponent_k=True)
    with pytest.raises(ValueError, match="^time_limit"):
        ua.robust_level(model, pi, 2, opponent_k=2, time_limit=0.0)
    with pytest.raises(ValueError, match="^time_limit"):
        ua.robust_level(model, pi, 2, time_limit=-1.0)
    with pytest.raises(ValueError, match="^ties"):
        ua.opponent_search(model, pi, 2, 2, ties="often")
    with pytest.raises(ValueError, match="^opponent_k"):  # uniform-tie win rates: at most 10,000 draws
        ua.opponent_search(model, pi, 9000, 1001)
    core = ua._core
    with pytest.raises(ValueError, match="^multiset"):
        core.opponent_gradient(model._store, np.array([3]), np.array(pi), 2, 0)
    with pytest.raises(ValueError, match="^multiset"):
        core.opponent_gradient(model._store, np.zeros(0, dtype=np.int64), np.array(pi), 2, 0)
    with pytest.raises(ValueError, match="^policy"):
        core.opponent_gradient(model._store, np.array([1]), np.array([0.5, -0.5, 1.0]), 2, 0)
    with pytest.raises(ValueError, match="^k"):
        core.opponent_gradient(model._store, np.array([1]), np.array(pi), 0, 0)


THREADS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import ualign as ua
    from ualign._validate import tie_code

    rng = np.random.default_rng(5)
    model = ua.RankingPopulation(rng.integers(0, 8, size=(3000, 24)), rng.random(3000))
    pi = rng.dirichlet(np.ones(24))
    out = []
    for ties in ua.TIES:
        search = ua.opponent_search(model, pi, 3, 3, ties)
        out += [search.level, float(sum(search.opponent))]
        value, grad = ua._core.opponent_gradient(model._store, np.array(search.opponent), pi, 3, tie_code(ties))
        out += [value, *grad]
    np.save(sys.argv[1], np.array(out))
""")


def test_thread_count_does_not_change_any_bit(tmp_path) -> None:
    script = tmp_path / "opponents.py"
    script.write_text(THREADS_SCRIPT)
    results = []
    for threads in (1, 2):
        target = tmp_path / f"out_{threads}.npy"
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, str(script), str(target)], cwd=tmp_path, env=env, check=True, timeout=300)
        results.append(np.load(target).tobytes())
    assert results[0] == results[1]


def test_mpne_guarantee() -> None:
    """Thm D.6's guarantee: an MPNE of the (k+1)-player game keeps a level of at least
    (k + 1 - l)/(k + 1) against l-output opponents (uniform ties, exactly)."""
    model, *_ = instance(3, n_max=6, m_max=5)
    for k in (2, 3, 4):
        mpne = ua.solve_mpne(model, k)
        for ell in (2, 3):
            level = ua.robust_level(model, mpne.policy, k, opponent_k=ell)
            assert level >= (k + 1 - ell) / (k + 1) - mpne.exploitability * ell - 1e-9


def grid_levels(ranks: np.ndarray, weights: np.ndarray, k: int, ell: int, ties: str, steps: int) -> float:
    """max of the oracle's f_l over the grid {pi : steps * pi integral} of the simplex."""
    m = ranks.shape[1]
    best = -1.0
    for counts in itertools.product(range(steps + 1), repeat=m - 1):
        if sum(counts) <= steps:
            pi = np.array([*counts, steps - sum(counts)], dtype=np.float64) / steps
            best = max(best, oracle.opponent_level(ranks, weights, pi, k, ell, ties)[0])
    return best


@pytest.mark.parametrize("ties", oracle.TIES)
def test_optimal_against_opponents(ties: str) -> None:
    """solve_optimal(opponent_k=l): the level re-checked by the oracle (1e-12), the gap
    closed, and the certified upper bound above the oracle's level on a simplex grid
    (and the level at most that bound: the grid's best point is no better than the
    optimum, which the level reaches within the gap)."""
    for seed, (k, ell) in enumerate([(1, 2), (2, 2), (3, 2), (2, 3)]):
        model, ranks, weights, _ = instance(seed + 20, n_max=4, m_max=3)
        result = ua.solve_optimal(model, k, ties, opponent_k=ell)
        assert isinstance(result, ua.solvers.OpponentOptimalResult)
        assert result.opponent_k == ell and result.exact and result.converged and result.gap <= 1e-8
        level, worst = oracle.opponent_level(ranks, weights, result.policy, k, ell, ties)
        assert abs(result.robust_level - level) <= 1e-12 and result.opponent in worst
        assert result.lower_bound == result.robust_level
        assert result.robust_level == ua.robust_level(model, result.policy, k, ties, opponent_k=ell)
        grid = grid_levels(ranks, weights, k, ell, ties, 24 if model.n_responses == 3 else 400)
        assert result.upper_bound >= grid - 1e-12
        assert result.robust_level >= grid - 1e-8


def test_optimal_against_one_output_is_today() -> None:
    model, *_ = instance(5, n_max=5, m_max=4)
    for ties in oracle.TIES:
        a = ua.solve_optimal(model, 3, ties)
        b = ua.solve_optimal(model, 3, ties, opponent_k=1)
        assert type(a) is type(b) and a.robust_level == b.robust_level and np.array_equal(a.policy, b.policy)


def test_optimal_against_opponents_bad_input() -> None:
    model = ua.RankingPopulation([[0, 1, 2], [2, 1, 0]])
    with pytest.raises(ValueError, match="^opponent_k"):
        ua.solve_optimal(model, 2, opponent_k=0)
    with pytest.raises(ValueError, match="^time_limit"):
        ua.solve_optimal(model, 2, opponent_k=2, time_limit=0)
    with pytest.raises(TypeError, match="^model"):
        ua.solve_optimal(ua.PlackettLuceMixture(np.zeros((1, 3))), 2, opponent_k=2)
