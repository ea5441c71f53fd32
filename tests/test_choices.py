"""Plackett–Luce fits to choice data: only the shown responses compete.

The likelihood and the MM statistics are checked against a direct computation
from the definition P(c | S) = exp(u_c) / sum_{s in S} exp(u_s); recovery of known
one- and two-type models is checked within a few standard errors taken from the
Fisher information of the true model (so the tolerance follows from the design,
not from the observed error)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ualign as ua
from ualign import io
from ualign.plackett_luce import Choices, _ChoiceSets


def simulate(rng: np.random.Generator, utilities: np.ndarray, n_obs: int, sizes: tuple[int, ...],
             type_of: np.ndarray | None = None) -> tuple[list[int], list[list[int]]]:
    """Choices from random shown sets; observation j uses type type_of[j] (row of utilities)."""
    m = utilities.shape[1]
    chosen, shown = [], []
    for j in range(n_obs):
        subset = rng.choice(m, size=int(rng.choice(sizes)), replace=False)
        u = utilities[0 if type_of is None else type_of[j], subset]
        p = np.exp(u - u.max())
        chosen.append(int(subset[rng.choice(len(subset), p=p / p.sum())]))
        shown.append([int(s) for s in subset])
    return chosen, shown


def standard_errors(utilities: np.ndarray, shown: list[list[int]]) -> np.ndarray:
    """Asymptotic standard errors of the sum-zero utilities of one type: the
    pseudo-inverse of the Fisher information I = sum_S (diag(p_S) - p_S p_S^T),
    whose null space is the common shift (so the pseudo-inverse is the sum-zero
    gauge), computed as inv(I + J/m) - J/m with J the all-ones matrix."""
    m = utilities.shape[0]
    information = np.zeros((m, m))
    for subset in shown:
        u = utilities[subset]
        p = np.exp(u - u.max())
        p /= p.sum()
        information[np.ix_(subset, subset)] += np.diag(p) - np.outer(p, p)
    shift = np.full((m, m), 1.0 / m)
    return np.sqrt(np.diag(np.linalg.inv(information + shift) - shift))


def brute_log_likelihood(model: ua.PlackettLuceMixture, choices: Choices) -> float:
    """sum_v w_v log sum_t mix_t prod_{j of v} exp(r_t[c_j]) / sum_{s in S_j} exp(r_t[s]), in plain Python."""
    rewards, mix = model.rewards, model.weights
    total = 0.0
    for v in range(choices.n_voters):
        mixture = 0.0
        for t in range(model.n_types):
            product = 1.0
            for j in np.flatnonzero(choices.voters == v):
                shown = choices.shown(int(j)).tolist()
                product *= math.exp(rewards[t, choices.chosen[j]]) / math.fsum(math.exp(rewards[t, s]) for s in shown)
            mixture += mix[t] * product
        total += choices.weights[v] * math.log(mixture)
    return total


# -- the likelihood, exactly ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_statistics_match_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 7))
    n_obs = int(rng.integers(1, 30))
    chosen, shown = simulate(rng, rng.normal(size=(1, m)), n_obs, tuple(range(1, m + 1)))
    voters = rng.integers(0, max(1, n_obs // 3), size=n_obs)
    voters = np.unique(voters, return_inverse=True)[1]  # every voter 0..V-1 present
    choices = Choices(chosen, shown, n_responses=m + 1, voters=voters)  # response m is never shown
    data = _ChoiceSets(choices)
    theta = rng.normal(size=m + 1) * 3
    omega = rng.random(choices.n_voters)
    ll, wins, denominators = data.statistics(theta, omega)
    expected_ll = np.zeros(choices.n_voters)
    expected_wins = np.zeros(m + 1)
    expected_denominators = np.zeros(m + 1)
    for j in range(n_obs):
        members = choices.shown(j).tolist()
        total = math.fsum(math.exp(theta[s]) for s in members)
        v = int(choices.voters[j])
        expected_ll[v] += theta[chosen[j]] - math.log(total)
        expected_wins[chosen[j]] += omega[v]
        for s in members:
            expected_denominators[s] += omega[v] / total
    np.testing.assert_allclose(ll, expected_ll, rtol=0, atol=1e-12)
    np.testing.assert_allclose(wins, expected_wins, rtol=0, atol=1e-12)
    # the MM denominators are kept relative to exp(max theta) (see _mm_step)
    np.testing.assert_allclose(denominators / math.exp(theta.max()), expected_denominators, rtol=1e-12, atol=0)
    assert wins[m] == denominators[m] == 0.0  # the response never shown takes no part


@pytest.mark.parametrize("n_types", [1, 2, 3])
def test_reported_log_likelihood_matches_brute_force(n_types: int) -> None:
    rng = np.random.default_rng(10 + n_types)
    m, n_voters = 5, 12
    voters = np.repeat(np.arange(n_voters), 4)
    chosen, shown = simulate(rng, rng.normal(size=(1, m)), voters.shape[0], (2, 3, 5))
    weights = rng.random(n_voters) + 0.2
    choices = Choices(chosen, shown, voters=voters, weights=weights)
    fit = ua.fit_plackett_luce(choices, n_types, seed=3)
    assert abs(fit.log_likelihood - brute_log_likelihood(fit.model, choices)) < 1e-12
    assert fit.optimum == ("global" if n_types == 1 else "local")
    assert fit.responsibilities.shape == (n_voters, n_types)
    np.testing.assert_allclose(fit.utilities.sum(axis=1), 0.0, atol=1e-12)  # the gauge


def test_full_shown_sets_equal_top1_rankings() -> None:
    """Choosing from all m responses is the top-1 partial ranking (chosen first, the
    rest tied at the bottom): both data types give the same fit."""
    rng = np.random.default_rng(5)
    m = 6
    chosen, _ = simulate(rng, rng.normal(size=(1, m)), 300, (m,))
    choices = Choices(chosen, [list(range(m))] * len(chosen))
    ranks = np.ones((len(chosen), m), dtype=np.int64)
    ranks[np.arange(len(chosen)), chosen] = 0
    from_choices = ua.fit_plackett_luce(choices, tol=1e-14)
    from_rankings = ua.fit_plackett_luce(ua.RankingPopulation(ranks), tol=1e-14)
    np.testing.assert_allclose(from_choices.utilities, from_rankings.utilities, rtol=0, atol=1e-12)
    assert abs(from_choices.log_likelihood - from_rankings.log_likelihood) < 1e-12


def test_integer_weights_equal_repeated_voters() -> None:
    rng = np.random.default_rng(6)
    chosen, shown = simulate(rng, rng.normal(size=(1, 4)), 40, (2, 3))
    counts = rng.multinomial(40, np.full(40, 1 / 40))  # as many copies in total as voters (weights are relative)
    weighted = ua.fit_plackett_luce(Choices(chosen, shown, n_responses=4, weights=counts), tol=1e-15)
    repeated = ua.fit_plackett_luce(Choices(np.repeat(chosen, counts), [shown[j] for j in range(40)
                                                                       for _ in range(counts[j])], n_responses=4),
                                    tol=1e-15)
    np.testing.assert_allclose(weighted.utilities, repeated.utilities, rtol=0, atol=1e-7)
    assert abs(weighted.log_likelihood - repeated.log_likelihood) < 1e-9


# -- recovery of known models ---------------------------------------------------------------------------

def test_one_type_recovery_within_standard_errors() -> None:
    rng = np.random.default_rng(7)
    truth = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    chosen, shown = simulate(rng, truth[None], 4000, (2, 3, 4))
    fit = ua.fit_plackett_luce(Choices(chosen, shown))
    assert fit.converged and fit.optimum == "global"
    error = np.abs(fit.utilities[0] - (truth - truth.mean()))
    se = standard_errors(truth, shown)  # ~0.03-0.04 here
    # 4 standard errors: each coordinate fails with probability 6e-5 under the
    # asymptotic normal law; the prior (0.1 pseudo-counts against ~1600 choices of
    # each response) moves the estimate by far less than one standard error
    assert (error <= 4 * se).all(), (error, se)


def test_two_type_recovery_within_standard_errors() -> None:
    rng = np.random.default_rng(8)
    a = np.array([1.5, 0.5, 0.0, -0.5, -1.5])
    truth = np.stack([a, -a])
    n_voters, per_voter = 300, 25
    group = (rng.random(n_voters) < 0.35).astype(np.int64)  # type 1 with probability 0.35
    voters = np.repeat(np.arange(n_voters), per_voter)
    chosen, shown = simulate(rng, truth, voters.shape[0], (2, 3), type_of=group[voters])
    fit = ua.fit_plackett_luce(Choices(chosen, shown, voters=voters), n_types=2, seed=0)
    assert fit.converged and fit.optimum == "local"
    first = int(np.argmax(fit.utilities[:, 0]))  # the fitted type that prefers response 0
    for t, fitted in ((0, fit.utilities[first]), (1, fit.utilities[1 - first])):
        own = [shown[j] for j in range(len(shown)) if group[voters[j]] == t]
        se = standard_errors(truth[t], own)
        # 5 standard errors: the per-type errors of the true assignment, plus a little
        # for voters EM assigns to the wrong type (25 choices each: very few)
        assert (np.abs(fitted - truth[t]) <= 5 * se).all(), (t, fitted, se)
    share = group.mean()
    assert abs(fit.model.weights[1 - first] - share) < 0.02  # EM's share vs the sample's
    assert abs(share - 0.35) < 4 * math.sqrt(0.35 * 0.65 / n_voters)
    assignment = fit.responsibilities[:, 1 - first] > 0.5
    assert (assignment == (group == 1)).mean() > 0.97


def test_unshown_responses_are_not_tied_at_the_bottom() -> None:
    """C is never shown with the strong A: its estimate comes from its own
    comparisons (with B and D), not from an imagined defeat by A."""
    rng = np.random.default_rng(9)
    truth = np.array([4.0, 0.0, 1.0, 0.5])  # A, B, C, D
    pairs = [[0, 1]] * 1500 + [[1, 2]] * 1500 + [[2, 3]] * 1500
    chosen = []
    for pair in pairs:
        p = 1.0 / (1.0 + math.exp(truth[pair[1]] - truth[pair[0]]))
        chosen.append(pair[0] if rng.random() < p else pair[1])
    fit = ua.fit_plackett_luce(Choices(chosen, pairs))
    se = standard_errors(truth, pairs)
    centred = truth - truth.mean()
    assert (np.abs(fit.utilities[0] - centred) <= 4 * se).all(), (fit.utilities[0], centred, se)
    # Read as rankings (chosen first, every other response tied at the bottom) the
    # same data say something else: the test above can tell the two apart.
    ranks = np.ones((len(pairs), 4), dtype=np.int64)
    ranks[np.arange(len(pairs)), chosen] = 0
    as_rankings = ua.fit_plackett_luce(ua.RankingPopulation(ranks)).utilities[0]
    assert np.abs(as_rankings - centred).max() > 10 * se.max()


# -- validation -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"chosen": [0], "shown": [[1, 2]]}, ValueError, r"chosen\[0\]: response 0 is not among the shown \[1, 2\]"),
    ({"chosen": [0, 1], "shown": [[0, 1], [1, 1]]}, ValueError, r"shown\[1\]: response 1 appears twice"),
    ({"chosen": [0], "shown": [[0, -1]]}, ValueError, r"shown\[0\]: negative index"),
    ({"chosen": [0], "shown": [[0, 5]], "n_responses": 3}, ValueError, r"shown\[0\]: response index 5 is out of range"),
    ({"chosen": [0], "shown": [[0, 1], [0, 1]]}, ValueError, r"shown: expected one set per observation \(1\)"),
    ({"chosen": [], "shown": []}, ValueError, "chosen: needs at least one observation"),
    ({"chosen": [0.5], "shown": [[0, 1]]}, TypeError, "chosen: expected integers"),
    ({"chosen": [0], "shown": "01"}, TypeError, "shown: expected one sequence"),
    ({"chosen": [0], "shown": [[0, 1]], "voters": [1]}, ValueError, "voters: voter 0 has no observation"),
    ({"chosen": [0], "shown": [[0, 1]], "voters": [0, 0]}, ValueError, r"voters: expected 1 entries"),
    ({"chosen": [0], "shown": [[0, 1]], "weights": [0.0]}, ValueError, "weights: must not all be zero"),
    ({"chosen": [0], "shown": [[0, 1]], "labels": ["a"]}, ValueError, "labels: expected 2 labels"),
])
def test_choices_bad_input(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Choices(**kwargs)


def test_fit_rejects_other_data() -> None:
    with pytest.raises(TypeError, match="population: expected a RankingPopulation or Choices"):
        ua.fit_plackett_luce([[0, 1]])


# -- choice tables --------------------------------------------------------------------------------------

def test_choice_table_shown_sets(tmp_path: Path) -> None:
    path = tmp_path / "choices.csv"
    path.write_text("prompt,voter,shown,chosen,weight\n"
                    "p,ann,A|B|C,B,2\np,ann, C | D ,D,2\np,bob,A|D,A,1\nq,ann,x|y,y,1\n")
    data = io.load_choices(path)
    assert list(data) == ["p", "q"]
    p = data["p"]
    assert p.labels == ["A", "B", "C", "D"]
    assert p.chosen.tolist() == [1, 3, 0]
    assert [p.shown(j).tolist() for j in range(3)] == [[0, 1, 2], [2, 3], [0, 3]]
    assert p.voters.tolist() == [0, 0, 1]
    np.testing.assert_allclose(p.weights, [2 / 3, 1 / 3], rtol=0, atol=1e-15)
    assert data["q"].labels == ["x", "y"] and data["q"].n_voters == 1


def test_choice_table_pairs_in_memory() -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"chosen": ["a", "b", "a"], "rejected": ["b", "c", "c"]})
    for source in (frame, pa.Table.from_pandas(frame)):
        data = io.load_choices(source)
        assert list(data) == ["choices"]
        choices = data["choices"]
        assert choices.labels == ["a", "b", "c"] and choices.n_voters == 3
        assert [choices.shown(j).tolist() for j in range(3)] == [[0, 1], [1, 2], [0, 2]]


def test_fit_choices_gives_an_auditable_dataset(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    rng = np.random.default_rng(11)
    chosen, shown = simulate(rng, np.array([[1.0, 0.0, -1.0]]), 200, (2, 3))
    names = ["good", "fair", "poor"]
    path = tmp_path / "prefs.csv"
    path.write_text("shown,chosen\n" + "".join(f"{'|'.join(names[s] for s in subset)},{names[c]}\n"
                                                for c, subset in zip(chosen, shown)))
    dataset, fits = io.fit_choices(path, seed=1)
    assert list(dataset) == ["prefs"]
    order = dataset.responses["prefs"]
    direct = ua.fit_plackett_luce(io.load_choices(path)["prefs"], seed=1)
    assert np.array_equal(dataset["prefs"].rewards, direct.model.rewards)
    assert fits["prefs"].log_likelihood == direct.log_likelihood
    frame = ua.audit_many(dataset, ks=[1], methods=["uniform"])
    assert frame.best_response_label.iloc[0] == "good" == order[int(frame.best_response.iloc[0])]


@pytest.mark.parametrize("text, where, message", [
    ("shown,chosen\nA|B,C\n", "line 2, column 'chosen'", "'C' is not among the shown responses ['A', 'B']"),
    ("shown,chosen\nA|B|A,A\n", "line 2, column 'shown'", "position 5: response 'A' appears twice"),
    ("shown,chosen\nA||B,A\n", "line 2, column 'shown'", "position 3: empty response name"),
    ("shown,chosen\n,A\n", "line 2, column 'shown'", "missing value"),
    ("chosen,rejected\nA,A\n", "line 2, column 'rejected'", "the same response as chosen ('A')"),
    ("voter,chosen,rejected,weight\nv,A,B,1\nv,B,C,2\n", "line 3, column 'weight'", "voter 'v' of prompt"),
    ("chosen,rejected,weight\nA,B,-1\n", "line 2, column 'weight'", "must be >= 0"),
])
def test_choice_table_bad_rows(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        io.load_choices(path)
    assert str(info.value).startswith(f"{path}: {where}: ") and message in str(info.value)


def test_choice_table_bad_columns(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("shown,rejected,chosen\nA|B,B,A\n")
    with pytest.raises(ValueError, match="needs exactly one of the columns 'shown' and 'rejected'"):
        io.load_choices(path)
    path.write_text("shown\nA|B\n")
    with pytest.raises(ValueError, match="line 1: missing column 'chosen'"):
        io.load_choices(path)
    path.write_text("chosen,rejected,weight\nA,B,0\n")
    with pytest.raises(ValueError, match="all weights are zero"):
        io.load_choices(path)
    with pytest.raises(TypeError, match="source: expected a path, a pandas DataFrame or a pyarrow Table"):
        io.load_choices({"chosen": ["A"]})
