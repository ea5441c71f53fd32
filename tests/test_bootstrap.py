"""Bootstrap intervals of audit_many: replicates share the rankings, every
replicate value equals the brute-force oracle on the reweighted population, the
intervals are the percentiles of those values, seeded runs repeat bit for bit (for
any thread count), and the intervals cover a known population's level."""

from __future__ import annotations

import itertools
import math

import numpy as np
import oracle
import pl_oracle
import pytest
from helpers import outputs_by_thread_count, random_instance, random_policy, random_weights

import ualign as ua
from ualign.audit import BOOTSTRAP_COLUMNS, _audit_fixed, audit_columns
from ualign.bootstrap import BootstrapPlan, audit_replicates, bootstrap_models, replicate_models, reweighted

TIES = ("uniform", "half", "strict", "weak")


def test_replicates_share_the_ranks_and_equal_a_fresh_population() -> None:
    rng = np.random.default_rng(3)
    ranks = rng.integers(0, 4, size=(40, 6))
    population = ua.RankingPopulation(ranks, rng.random(40))
    counts = rng.multinomial(40, population.weights, size=3).astype(float)
    pi = random_policy(rng, 6)
    for row, replicate in zip(counts, replicate_models(population, counts)):
        assert np.shares_memory(replicate.ranks, population.ranks)
        fresh = ua.RankingPopulation(ranks, row)
        assert np.array_equal(replicate.weights, fresh.weights)
        for ties in TIES:
            assert ua.robust_level(replicate, pi, 3, ties) == ua.robust_level(fresh, pi, 3, ties)


def test_plackett_luce_replicates_reweight_the_types() -> None:
    rng = np.random.default_rng(4)
    rewards = rng.normal(size=(5, 4)) * 1e3  # kept as given, not shifted
    mixture = ua.PlackettLuceMixture(rewards, rng.random(5))
    counts = np.array([0.0, 2.0, 0.0, 3.0, 0.0])
    replicate = reweighted(mixture, counts)
    fresh = ua.PlackettLuceMixture(rewards, counts)
    pi = random_policy(rng, 4)
    assert np.array_equal(replicate.weights, fresh.weights)
    assert np.array_equal(replicate.utilities(pi, 5), fresh.utilities(pi, 5))


@pytest.mark.parametrize("seed", range(8))
def test_intervals_are_the_percentiles_of_brute_force_replicates(seed: int) -> None:
    rng, ranks, weights = random_instance(seed, n_max=5, m_max=4)
    population = ua.RankingPopulation(ranks, weights)
    m = population.n_responses
    pi = random_policy(rng, m)  # zero-probability responses
    ks = [1, 2, 3]
    ties = TIES[seed % 4]
    n_boot, ci = 9, 0.8
    columns, _ = audit_columns([population], [pi], ks, ["given"], ties=ties, n_boot=n_boot, seed=seed, ci=ci)
    plan = BootstrapPlan.create(n_boot, seed, ci)
    counts = plan.counts(population, 0)
    assert counts.shape == (n_boot, population.n_voters) and (counts.sum(axis=1) == population.n_voters).all()
    for j, k in enumerate(ks):
        levels = [oracle.robust_level(ranks, row, pi, k, ties) for row in counts]
        expl = [oracle.exploitability(ranks, row, pi, k, ties) for row in counts]
        alpha = 0.5 * (1 - ci)
        low, high = np.quantile(levels, [alpha, 1 - alpha])
        assert columns["level_ci_low"][j] == pytest.approx(low, abs=1e-12)
        assert columns["level_ci_high"][j] == pytest.approx(high, abs=1e-12)
        e_low, e_high = np.quantile(expl, [alpha, 1 - alpha])
        assert columns["exploitability_ci_low"][j] == pytest.approx(e_low, abs=1e-12)
        assert columns["exploitability_ci_high"][j] == pytest.approx(e_high, abs=1e-12)
        responses = [ua.best_response(ua.RankingPopulation(ranks, row), pi, k, ties)[0] for row in counts]
        expected = np.mean(np.array(responses) == columns["best_response"][j])
        assert columns["best_response_freq"][j] == expected


def test_seeded_runs_repeat_and_prompts_do_not_depend_on_each_other() -> None:
    rng = np.random.default_rng(11)
    models = [ua.RankingPopulation(rng.integers(0, 5, size=(30, 5))) for _ in range(3)]
    first = ua.audit_many(models, ks=[1, 4], n_boot=25, seed=7)
    again = ua.audit_many(models, ks=[1, 4], n_boot=25, seed=7)
    for name in BOOTSTRAP_COLUMNS:
        assert np.array_equal(first[name].to_numpy(), again[name].to_numpy())
    other = ua.audit_many(models, ks=[1, 4], n_boot=25, seed=8)
    assert not np.array_equal(first["level_ci_low"].to_numpy(), other["level_ci_low"].to_numpy())


# -- fixed policies: every replicate from the voters' values, summed with the replicate's weights ----

MIRROR = {"strict": "weak", "weak": "strict", "half": "half", "uniform": "uniform"}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ties", TIES)
def test_replicate_audits_equal_brute_force(seed: int, ties: str) -> None:
    rng, ranks, weights = random_instance(seed, n_max=7, m_max=4)  # weak orders, zero weights
    population = ua.RankingPopulation(ranks, weights)
    n, m = population.n_voters, population.n_responses
    policy = random_policy(rng, m) if seed % 3 else None  # zero-probability responses; None: uniform
    pi = policy if policy is not None else np.full(m, 1.0 / m)
    counts = rng.multinomial(n, population.weights, size=4).astype(float)
    counts[0] = 0.0
    counts[0, int(np.argmax(population.weights))] = 2.0  # a replicate of one voter
    ks = [1, 2, 3]
    out = audit_replicates(population, policy, counts, ks, ties)
    for b, row in enumerate(counts):
        for j, k in enumerate(ks):
            u = oracle.utilities(ranks, row, pi, k, ties)
            loss = oracle.utilities(ranks, row, pi, k, MIRROR[ties])
            assert out["robust_level"][b, j] == pytest.approx(1.0 - loss.max(), abs=1e-12)
            assert loss[out["opponent"][b, j]] == pytest.approx(loss.max(), abs=1e-12)
            assert u[out["best_response"][b, j]] == pytest.approx(u.max(), abs=1e-12)
            assert out["best_utility"][b, j] == pytest.approx(u.max(), abs=1e-12)
            assert out["exploitability"][b, j] == pytest.approx(u.max() - float(pi @ u), abs=1e-12)


@pytest.mark.parametrize("ties", TIES)
def test_replicate_audits_equal_the_per_replicate_kernels(ties: str) -> None:
    # several panels of voters, a tail of two voters, k beyond the four-voter path
    rng = np.random.default_rng(21)
    n, m = 1030, 300
    ranks = rng.integers(0, 40, size=(n, m))
    population = ua.RankingPopulation(ranks, rng.random(n) * (rng.random(n) < 0.8))
    pi = random_policy(rng, m)
    counts = BootstrapPlan.create(5, 3, 0.9).counts(population, 0)
    ks = np.array([1, 4, 64, 65, 300])
    new = audit_replicates(population, pi, counts, ks, ties)
    old = _audit_fixed(replicate_models(population, counts), [pi] * 5, ks, ties, lambda count: None)
    for field in ("robust_level", "best_utility", "exploitability"):
        assert np.abs(new[field] - old[field]).max() <= 1e-12, field


def test_replicate_audit_arguments() -> None:
    population = ua.RankingPopulation([[0, 1, 1], [2, 0, 1]])
    counts = np.array([[1.0, 1.0]])
    with pytest.raises(TypeError, match="^model"):
        audit_replicates(object(), None, counts, [1])
    with pytest.raises(ValueError, match="^policy"):
        audit_replicates(population, [0.5, 0.5], counts, [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(population, None, np.ones((2, 3)), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(population, None, np.ones(2), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(population, None, np.array([[1.0, -1.0]]), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(population, None, np.array([[1.0, np.nan]]), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(population, None, np.zeros((1, 2)), [1])
    with pytest.raises(TypeError, match="^counts"):
        audit_replicates(population, None, np.array([["a", "b"]]), [1])
    with pytest.raises(ValueError, match="^ks"):
        audit_replicates(population, None, counts, [])


# -- fixed policies on a Plackett–Luce mixture: every type's values, summed with the replicate's weights --

def mixture_instance(seed: int, n_max: int = 4, m_max: int = 4):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, n_max + 1)), int(rng.integers(2, m_max + 1))
    rewards = rng.uniform(-6.0, 6.0, size=(n, m))
    if seed % 3 == 0:
        rewards[:, 1] = rewards[:, 0]  # equal rewards
    return rng, rewards, random_weights(rng, n)  # weights with zeros


def mixture_counts(rng: np.random.Generator, mixture, n_boot: int) -> np.ndarray:
    """Multinomial type counts, one replicate of a single type and one that gives
    every type with weight a count (types of weight zero stay at zero)."""
    n = mixture.n_types
    counts = rng.multinomial(n, mixture.weights, size=n_boot).astype(float)
    counts[0] = 0.0
    counts[0, int(np.argmax(mixture.weights))] = 3.0
    counts[1] = (mixture.weights > 0) * rng.integers(1, 4, size=n)
    return counts


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ties", TIES)
def test_mixture_replicate_audits_equal_brute_force(seed: int, ties: str) -> None:
    rng, rewards, weights = mixture_instance(seed)
    mixture = ua.PlackettLuceMixture(rewards, weights)
    m = mixture.n_responses
    policy = random_policy(rng, m) if seed % 3 else None  # zero-probability responses; None: uniform
    pi = policy if policy is not None else np.full(m, 1.0 / m)
    counts = mixture_counts(rng, mixture, 4)
    ks = [3, 1, 2]
    out = audit_replicates(mixture, policy, counts, ks, ties)
    for b, row in enumerate(counts):
        for j, k in enumerate(ks):
            u = pl_oracle.utilities(rewards, row, pi, k)  # no ties: the loss is the utility
            assert out["robust_level"][b, j] == pytest.approx(1.0 - u.max(), abs=1e-12)
            assert u[out["opponent"][b, j]] == pytest.approx(u.max(), abs=1e-12)
            assert u[out["best_response"][b, j]] == pytest.approx(u.max(), abs=1e-12)
            assert out["best_utility"][b, j] == pytest.approx(u.max(), abs=1e-12)
            assert out["exploitability"][b, j] == pytest.approx(u.max() - math.fsum(pi * u), abs=1e-12)


@pytest.mark.parametrize("ties", TIES)
def test_mixture_replicate_audits_equal_the_per_replicate_audits(ties: str) -> None:
    # enough types and responses for several lanes and node blocks per type in the
    # per-replicate kernel; k from 1 to far beyond m
    rng = np.random.default_rng(31)
    n, m = 300, 40
    rewards = rng.normal(size=(n, m)) * 3.0
    mixture = ua.PlackettLuceMixture(rewards, rng.random(n) * (rng.random(n) < 0.8))
    pi = random_policy(rng, m)
    counts = mixture_counts(rng, mixture, 5)
    ks = np.array([1, 2, 7, 64, 10**6])
    new = audit_replicates(mixture, pi, counts, ks, ties)
    old = _audit_fixed(replicate_models(mixture, counts), [pi] * 5, ks, ties, lambda count: None)
    for field in ("robust_level", "best_utility", "exploitability"):
        assert np.abs(new[field] - old[field]).max() <= 1e-12, field
    for field in ("opponent", "best_response"):  # no near ties among these utilities
        assert np.array_equal(new[field], old[field]), field


def test_mixture_intervals_are_the_percentiles_of_the_replicates() -> None:
    rng, rewards, weights = mixture_instance(5, n_max=6, m_max=5)
    mixture = ua.PlackettLuceMixture(rewards, weights)
    pi = random_policy(rng, mixture.n_responses)
    ks, n_boot, ci = [1, 4], 11, 0.8
    columns, _ = audit_columns([mixture], [pi], ks, ["given"], ties="weak", n_boot=n_boot, seed=4, ci=ci)
    counts = BootstrapPlan.create(n_boot, 4, ci).counts(mixture, 0)
    for j, k in enumerate(ks):
        levels = [ua.robust_level(replicate, pi, k, "weak") for replicate in replicate_models(mixture, counts)]
        low, high = np.quantile(levels, [0.1, 0.9])
        assert columns["level_ci_low"][j] == pytest.approx(low, abs=1e-12)
        assert columns["level_ci_high"][j] == pytest.approx(high, abs=1e-12)


def test_mixture_replicate_audit_arguments() -> None:
    mixture = ua.PlackettLuceMixture(np.zeros((2, 3)))
    counts = np.array([[1.0, 1.0]])
    with pytest.raises(ValueError, match="^policy"):
        audit_replicates(mixture, [0.5, 0.5], counts, [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(mixture, None, np.ones((1, 3)), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(mixture, None, np.array([[1.0, np.inf]]), [1])
    with pytest.raises(ValueError, match="^counts"):
        audit_replicates(mixture, None, np.zeros((1, 2)), [1])
    with pytest.raises(ValueError, match="^ks"):
        audit_replicates(mixture, None, counts, [0])
    with pytest.raises(ValueError, match="^ties"):
        audit_replicates(mixture, None, counts, [1], "ties")


REPLICATES_SCRIPT = """
import sys
import numpy as np
import ualign as ua
from ualign.bootstrap import BootstrapPlan, audit_replicates
rng = np.random.default_rng(8)
model = ua.RankingPopulation(rng.integers(0, 12, size=(3001, 40)), rng.random(3001))
counts = BootstrapPlan.create(30, 4, 0.9).counts(model, 0)
pi = rng.dirichlet(np.ones(40))
out = {}
mixture = ua.PlackettLuceMixture(rng.normal(size=(301, 40)) * 2, rng.random(301))
mixture_counts = BootstrapPlan.create(30, 4, 0.9).counts(mixture, 0)
for label, data, rows in (("rankings", model, counts), ("mixture", mixture, mixture_counts)):
    for ties in ("uniform", "strict"):
        first = audit_replicates(data, pi, rows, [1, 2, 5, 8, 70], ties)
        again = audit_replicates(data, pi, rows, [1, 2, 5, 8, 70], ties)
        for name, values in first.items():
            assert np.array_equal(values, again[name]), name
            out[label + ties + name] = values
np.savez(sys.argv[1], **out)
"""


def test_replicate_audit_bits_do_not_depend_on_threads(tmp_path) -> None:
    runs = outputs_by_thread_count(tmp_path, REPLICATES_SCRIPT, [1, 2])
    for name, values in runs[1].items():
        assert np.array_equal(values, runs[2][name]), name


SCRIPT = """
import sys
import numpy as np
import ualign as ua
rng = np.random.default_rng(5)
models = [ua.RankingPopulation(rng.integers(0, 6, size=(n, 8))) for n in (40, 2000)]
frame = ua.audit_many(models, ks=[1, 3, 9], methods=["uniform", "mpne"], n_boot=8, seed=99)
np.savez(sys.argv[1], **{name: frame[name].to_numpy(dtype=float) for name in
                         ("robust_level", "level_ci_low", "level_ci_high", "exploitability_ci_low",
                          "exploitability_ci_high", "best_response_freq")})
"""


def test_bootstrap_bits_do_not_depend_on_threads(tmp_path) -> None:
    runs = outputs_by_thread_count(tmp_path, SCRIPT, [1, 2])
    for name, values in runs[1].items():
        assert np.array_equal(values, runs[2][name]), name


def test_solver_methods_resolve_every_replicate() -> None:
    rng = np.random.default_rng(2)
    model = ua.RankingPopulation(rng.integers(0, 4, size=(25, 4)))
    frame = ua.audit_many([model], ks=[2], methods=["optimal", "nlhf"], ties="weak", n_boot=6, seed=1)
    plan = BootstrapPlan.create(6, 1, 0.95)
    replicates = replicate_models(model, plan.counts(model, 0))
    levels = [ua.solve_optimal(rep, 2, ties="weak").robust_level for rep in replicates]
    low, high = np.quantile(levels, [0.025, 0.975])
    row = frame[frame.method == "optimal"].iloc[0]
    # the solver's certified optimum: warm starts may land on another optimal policy
    assert row.level_ci_low == pytest.approx(low, abs=1e-7)
    assert row.level_ci_high == pytest.approx(high, abs=1e-7)


def test_bad_bootstrap_arguments() -> None:
    model = ua.RankingPopulation([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="^n_boot"):
        ua.audit_many([model], n_boot=0)
    with pytest.raises(ValueError, match="^ci"):
        ua.audit_many([model], n_boot=5, ci=1.0)
    with pytest.raises(TypeError, match="^seed"):
        ua.audit_many([model], n_boot=5, seed=-1)
    with pytest.raises(TypeError, match="^model"):
        bootstrap_models(object(), 3)


# -- coverage ----------------------------------------------------------------------------------------

def plackett_luce_rankings(rewards: np.ndarray, type_weights: np.ndarray):
    """Every ranking of m responses (as orders) and its probability under the mixture."""
    m = rewards.shape[1]
    orders = np.array(list(itertools.permutations(range(m))))
    probability = np.zeros(len(orders))
    for w, r in zip(type_weights, np.exp(rewards)):
        for j, order in enumerate(orders):
            p = 1.0
            for position in range(m):
                p *= r[order[position]] / r[order[position:]].sum()
            probability[j] += w * p
    return orders, probability


def coverage(n_samples: int, n_voters: int, n_boot: int, ci: float, seed: int, ties: str = "uniform",
             k: int = 2) -> float:
    """Fraction of samples of n_voters rankings from a two-type Plackett–Luce mixture
    whose bootstrap interval holds the mixture's level."""
    rewards = np.array([[1.2, 0.6, 0.0, -0.4], [-0.2, 0.9, 0.3, 0.0]])
    type_weights = np.array([0.6, 0.4])
    orders, probability = plackett_luce_rankings(rewards, type_weights)
    truth_population = ua.RankingPopulation.from_orders(orders, probability)
    pi = np.array([0.45, 0.35, 0.15, 0.05])
    truth = ua.robust_level(truth_population, pi, k, ties)
    rng = np.random.default_rng(seed)
    samples = [ua.RankingPopulation.from_orders(orders[rng.choice(len(orders), size=n_voters, p=probability)])
               for _ in range(n_samples)]
    columns, _ = audit_columns(samples, [pi] * n_samples, [k], ["given"], ties=ties, n_boot=n_boot, seed=seed,
                               ci=ci)
    inside = (columns["level_ci_low"] <= truth) & (truth <= columns["level_ci_high"])
    return float(inside.mean())


def test_the_mixture_is_the_ranking_population_it_samples() -> None:
    """At k = 1 (no repeated draws) the Plackett–Luce kernels and the enumerated
    ranking population agree: the truth of the coverage test is the mixture's."""
    rewards = np.array([[1.2, 0.6, 0.0, -0.4], [-0.2, 0.9, 0.3, 0.0]])
    orders, probability = plackett_luce_rankings(rewards, np.array([0.6, 0.4]))
    mixture = ua.PlackettLuceMixture(rewards, [0.6, 0.4])
    population = ua.RankingPopulation.from_orders(orders, probability)
    assert np.allclose(mixture.pairwise(), population.pairwise(), atol=1e-12, rtol=0)


def test_percentile_intervals_cover_the_mixture_level() -> None:
    # 300 samples of 150 rankings, 100 replicates each, nominal 95%: the empirical
    # coverage is Binomial(300, c)/300; 4 standard deviations at c = 0.95 is 0.050
    # (bench/bench_bootstrap.py --coverage runs a larger sample).
    observed = coverage(n_samples=300, n_voters=150, n_boot=100, ci=0.95, seed=2024)
    tolerance = 4 * math.sqrt(0.95 * 0.05 / 300)
    assert abs(observed - 0.95) <= tolerance, observed


def test_cluster_chunks_draw_the_replicates_of_the_whole_run() -> None:
    """A chunk of a cluster run (prompts a..b) seeds prompt p with its position in
    the whole audit and carries its groups: its columns are the local run's rows."""
    from ualign.audit import _audit_part, _pack

    rng = np.random.default_rng(8)
    models = [ua.RankingPopulation(rng.integers(0, 4, size=(15, 4))) for _ in range(5)]
    groups = [rng.integers(0, 2, size=15) for _ in range(5)]
    plan = BootstrapPlan.create(10, 3, 0.9)
    local, _ = audit_columns(models, None, [1, 2], ["uniform"], n_boot=10, seed=3, ci=0.9, groups=groups)
    chunk = _pack(models[2:], {}, [2, 3, 4], first=2, groups=local_groups(groups[2:], models[2:]))
    part = _audit_part(chunk, np.array([1, 2]), ("uniform",), "uniform", {"rlhf_beta": 0.1, "bootstrap": plan})
    for name, values in part.items():
        expected = local[name][4:] if name != "prompt" else local[name][4:] - 2
        assert np.array_equal(np.asarray(values, dtype=object), np.asarray(expected, dtype=object)), name


def local_groups(groups, models):
    from ualign.groups import as_group_labels

    return [as_group_labels(row, model) for row, model in zip(groups, models)]
