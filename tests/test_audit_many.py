"""audit_many: the batch (C++, OpenMP across prompts) results equal the
per-prompt API bit for bit; validation; pickling of populations."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from typing import Any, List, Tuple

import numpy as np
import pytest

import ualign as ua
from ualign import _core
from ualign.audit import COLUMNS, METHODS, audit_columns

pd = pytest.importorskip("pandas")


class Delegate(ua.PreferenceModel):
    """A model that is not a RankingPopulation (so audit_many takes the per-prompt
    Python path) but computes exactly what the wrapped population computes."""

    def __init__(self, inner: ua.RankingPopulation) -> None:
        self.inner = inner

    @property
    def n_voters(self) -> int:
        return self.inner.n_voters

    @property
    def n_responses(self) -> int:
        return self.inner.n_responses

    def _beats(self, operand: Any, ties: int) -> Any:
        return self.inner._beats(operand, ties)

    def _win_rate(self, a: Any, b: Any, ties: int) -> float:
        return self.inner._win_rate(a, b, ties)

    def _pairwise(self, ties: int) -> Any:
        return self.inner._pairwise(ties)

    def _utilities_vjp(self, policy: Any, q: Any, k: int, ties: int) -> Any:
        return self.inner._utilities_vjp(policy, q, k, ties)


def ragged_prompts(seed: int, count: int) -> Tuple[List[ua.RankingPopulation], List[Any]]:
    """Populations of ragged sizes (strict, weak, all-tied, one voter, one response;
    uint8 and uint16 storage; one population large enough to use several lanes)."""
    rng = np.random.default_rng(seed)
    models, policies = [], []
    for p in range(count):
        n, m = int(rng.integers(1, 60)), int(rng.integers(1, 40))
        kind = p % 4
        if kind == 0:
            model = ua.RankingPopulation.from_orders(np.argsort(rng.random((n, m)), axis=1))
        elif kind == 1:
            model = ua.RankingPopulation(rng.integers(0, max(1, m // 3), size=(n, m)), weights=rng.random(n) + 0.01)
        elif kind == 2:
            model = ua.RankingPopulation.from_scores(rng.normal(size=(n, m)).round(1), weights=rng.random(n))
        else:
            model = ua.RankingPopulation(np.zeros((n, m), dtype=np.int64))
        models.append(model)
        policy = rng.dirichlet(np.full(m, 0.3)) if m > 1 else np.ones(1)
        if p % 5 == 0:  # a point mass
            policy = np.zeros(m)
            policy[rng.integers(0, m)] = 1.0
        policies.append(policy)
    # a population with more voters than one lane holds (runs with its own threads)
    models.append(ua.RankingPopulation.from_orders(np.argsort(rng.random((3000, 300)), axis=1)))
    policies.append(rng.dirichlet(np.ones(300)))
    return models, policies


def per_prompt(model: Any, policy: np.ndarray, k: int, ties: str) -> Tuple[float, int, int, float, float]:
    opponent, level = ua.worst_case_opponent(model, policy, k, ties)
    best, utility = ua.best_response(model, policy, k, ties)
    return (ua.robust_level(model, policy, k, ties), opponent, best, utility,
            ua.exploitability(model, policy, k, ties))


@pytest.mark.parametrize("ties", ua.TIES)
def test_batch_equals_per_prompt_api_bitwise(ties: str) -> None:
    models, policies = ragged_prompts(11, 30)
    ks = [1, 2, 3, 5, 8, 70]  # 70: beyond the interleaved kernel's uniform-tie k
    frame = ua.audit_many(models, policies, ks=ks, ties=ties)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(models) * 2 * len(ks)
    for row in frame.itertuples(index=False):
        model = models[row.prompt]
        m = model.n_responses
        policy = policies[row.prompt] if row.method == "given" else np.full(m, 1.0 / m)
        expected = per_prompt(model, policy, row.k, ties)
        got = (row.robust_level, row.opponent, row.best_response, row.best_utility, row.exploitability)
        assert got == expected, (row.prompt, row.method, row.k)  # bit for bit
        assert row.bound == row.k / (row.k + 1)


def test_batch_equals_python_path_bitwise() -> None:
    models, policies = ragged_prompts(12, 16)
    delegates = [Delegate(model) for model in models]
    for ties in ("uniform", "strict"):
        fast = ua.audit_many(models, policies, ks=range(1, 5), ties=ties)
        slow = ua.audit_many(delegates, policies, ks=range(1, 5), ties=ties)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)


def test_rows_order_keys_and_missing_policies() -> None:
    models, policies = ragged_prompts(13, 4)
    named = {f"prompt-{j}": model for j, model in enumerate(models)}
    given = {f"prompt-{j}": policy for j, policy in enumerate(policies) if j != 2}
    frame = ua.audit_many(named, given, ks=[2, 1], methods=["uniform", "given"])
    keys = list(named)
    expected = []
    for j, key in enumerate(keys):
        for method in ("uniform", "given"):
            if method == "given" and j == 2:
                continue
            expected += [(key, method, 2), (key, method, 1)]
    assert list(zip(frame.prompt, frame.method, frame.k)) == expected
    positional = ua.audit_many(models, [p if j != 2 else None for j, p in enumerate(policies)], ks=[2, 1],
                               methods=["uniform", "given"])
    assert list(positional.prompt) == [keys.index(key) for key in frame.prompt]
    np.testing.assert_array_equal(positional.robust_level.to_numpy(), frame.robust_level.to_numpy())


def test_default_methods() -> None:
    models, policies = ragged_prompts(14, 2)
    assert set(ua.audit_many(models).method) == {"uniform"}
    assert list(dict.fromkeys(ua.audit_many(models, policies).method)) == ["given", "uniform"]


def test_batch_is_thread_count_independent() -> None:
    script = (
        "import numpy as np, ualign as ua, sys\n"
        "sys.path.insert(0, %r)\n"
        "from test_audit_many import ragged_prompts\n"
        "models, policies = ragged_prompts(15, 40)\n"
        "f = ua.audit_many(models, policies, ks=range(1, 9))\n"
        "sys.stdout.write(f[['robust_level', 'best_utility', 'exploitability']].to_numpy().tobytes().hex())\n"
    ) % os.path.dirname(__file__)
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        # Run from tests/, so that `import ualign` finds the installed package and
        # not the source tree of the repository root (which has no compiled core).
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                timeout=120, cwd=os.path.dirname(__file__))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


def test_pickled_population_is_bit_identical() -> None:
    rng = np.random.default_rng(16)
    for model in (ua.RankingPopulation(rng.integers(0, 5, size=(20, 7)), weights=rng.random(20)),
                  ua.RankingPopulation.from_orders(np.argsort(rng.random((5, 300)), axis=1)),
                  ua.RankingPopulation(np.zeros((3, 70000), dtype=np.int64))):
        copy = pickle.loads(pickle.dumps(model))
        assert copy.ranks.dtype == model.ranks.dtype
        assert np.array_equal(copy.ranks, model.ranks)
        assert copy.weights.tobytes() == model.weights.tobytes()
        pi = np.full(model.n_responses, 1.0 / model.n_responses)
        assert copy.utilities(pi, 3).tobytes() == model.utilities(pi, 3).tobytes()


def exact_sum(x: np.ndarray) -> float:
    """The compiled correctly rounded sum of one row."""
    return float(_core.exact_sums(x, np.array([0, x.shape[0]]))[0])


def test_exact_sum_is_fsum() -> None:
    import math

    rng = np.random.default_rng(17)
    for size in (0, 1, 2, 10, 1000):
        x = rng.random(size) * 10.0 ** rng.integers(-20, 20, size)
        assert exact_sum(x) == math.fsum(x)
    assert exact_sum(np.array([1.0, 1e100, 1.0, -1e100])) == 2.0
    # near and at rounding midpoints (ties to even), signed zeros, wide ranges
    cases = [[1.0, 2.0 ** -53], [1.0, 2.0 ** -53, 2.0 ** -100], [1.0, 2.0 ** -53, -2.0 ** -100],
             [1.0 + 2.0 ** -52, 2.0 ** -53], [0.0], [-0.0], [-0.0, -0.0], [1e308, 1e307, -1e308],
             [2.0 ** -1074] * 3, [0.1] * 10, [1.0, -1.0, 1e-30]]
    for case in cases:
        x = np.array(case)
        assert exact_sum(x) == math.fsum(case), case  # (a zero sum's sign varies with Python)
        if math.fsum(case) != 0:
            assert exact_sum(x).hex() == math.fsum(case).hex()
    for _ in range(200):
        x = rng.standard_normal(int(rng.integers(1, 80))) * 10.0 ** rng.integers(-30, 30)
        x[rng.random(x.shape[0]) < 0.3] *= 2.0 ** -60
        assert exact_sum(x) == math.fsum(x)
        pi, u = rng.dirichlet(np.ones(64)), rng.random(64)
        assert exact_sum(pi * u) == math.fsum(pi * u)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, p: ua.audit_many(m[0], None), TypeError, "models: expected a sequence or mapping"),
    (lambda m, p: ua.audit_many([], None), ValueError, "models: needs at least one prompt"),
    (lambda m, p: ua.audit_many([m[0], "x"], None), TypeError, r"models\[1\]: expected a preference model"),
    (lambda m, p: ua.audit_many(m, p[:-1]), ValueError, "policies: expected one policy per prompt"),
    (lambda m, p: ua.audit_many(m, [p[0], p[0]]), ValueError, r"policies\[1\]: expected"),
    (lambda m, p: ua.audit_many(m, [p[0], p[1] * 2]), ValueError, r"policies\[1\]: must sum to 1"),
    (lambda m, p: ua.audit_many(m, [p[0], -p[1]]), ValueError, r"policies\[1\]: has negative entries"),
    (lambda m, p: ua.audit_many(m, [p[0], p[1] + np.nan]), ValueError, r"policies\[1\]: contains NaN"),
    (lambda m, p: ua.audit_many(m, p, ks=[]), ValueError, "ks: needs at least one k"),
    (lambda m, p: ua.audit_many(m, p, ks=[0]), ValueError, r"ks\[0\]: must be >= 1"),
    (lambda m, p: ua.audit_many(m, p, ks=[1, 1]), ValueError, "ks: repeated"),
    (lambda m, p: ua.audit_many(m, p, ks=[1.5]), TypeError, r"ks\[0\]: expected an integer"),
    (lambda m, p: ua.audit_many(m, p, methods=["best"]), ValueError, "methods: unknown 'best'"),
    (lambda m, p: ua.audit_many(m, None, methods=["given"]), ValueError, "methods: 'given' needs policies"),
    (lambda m, p: ua.audit_many(m, p, ties="fair"), ValueError, "ties: unknown"),
    (lambda m, p: ua.audit_many(m, {"a": p[0]}), TypeError, r"policies\[.a.\]: .* a mapping of prompts to policies needs models"),
    (lambda m, p: ua.audit_many({"a": m[0]}, {"b": p[0]}), ValueError, "policies: no model for prompt 'b'"),
])
def test_validation(call: Any, error: type, message: str) -> None:
    models = [ua.RankingPopulation([[0, 1, 2]]), ua.RankingPopulation([[1, 0], [0, 1]])]
    policies = [np.array([0.2, 0.3, 0.5]), np.array([0.5, 0.5])]
    with pytest.raises(error, match=message):
        call(models, policies)


def test_core_batch_validation() -> None:
    store = ua.RankingPopulation([[0, 1, 2]])._store
    ks = np.array([1, 2])
    with pytest.raises(TypeError, match=r"models\[0\]"):
        _core.audit_policies([object()], None, None, ks, 0)
    with pytest.raises(ValueError, match="offsets"):
        _core.audit_policies([store], np.array([0.5, 0.5, 0.0]), np.array([0, 2]), ks, 0)
    with pytest.raises(ValueError, match=r"policies\[0\]: expected 3 entries"):
        _core.audit_policies([store], np.array([0.5, 0.5]), np.array([0, 2]), ks, 0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        _core.audit_policies([store], np.array([0.5, 0.6, -0.1]), np.array([0, 3]), ks, 0)
    with pytest.raises(ValueError, match="ks"):
        _core.audit_policies([store], None, None, np.array([0]), 0)
    with pytest.raises(ValueError, match="ties"):
        _core.audit_policies([store], None, None, ks, 7)


def test_solver_methods_run() -> None:
    model = ua.RankingPopulation.from_orders([[0, 1, 2], [2, 1, 0], [1, 2, 0]])
    for method in METHODS[2:]:
        frame = ua.audit_many([model], methods=[method], ks=[1, 2])
        assert len(frame) == 2 and frame.robust_level.between(0, 1).all()


def test_columns_without_pandas_shape() -> None:
    models, policies = ragged_prompts(18, 3)
    columns, keys = audit_columns(models, policies, ks=[1, 2])
    assert keys is None
    assert all(len(columns[name]) == len(models) * 2 * 2 for name in COLUMNS)


def test_mixed_models_take_the_per_prompt_path() -> None:
    rng = np.random.default_rng(19)
    models: List[Any] = [ua.PlackettLuceMixture(rng.normal(0, 2, size=(3, 5)), rng.random(3) + 0.1),
                         ua.RankingPopulation(rng.integers(0, 3, size=(8, 4)))]
    policies = [rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(4))]
    frame = ua.audit_many(models, policies, ks=[1, 3])
    for row in frame.itertuples(index=False):
        model = models[row.prompt]
        m = model.n_responses
        policy = policies[row.prompt] if row.method == "given" else np.full(m, 1.0 / m)
        assert (row.robust_level, row.opponent, row.best_response, row.best_utility, row.exploitability) == \
            per_prompt(model, policy, row.k, "uniform")


def test_solver_methods_audit_what_the_solvers_return() -> None:
    rng = np.random.default_rng(20)
    models = [ua.RankingPopulation.from_orders(np.argsort(rng.random((12, 5)), axis=1)),
              ua.RankingPopulation(rng.integers(0, 3, size=(9, 4)), weights=rng.random(9) + 0.1)]
    frame = ua.audit_many(models, ks=[1, 3], methods=["nlhf", "rlhf", "mpne", "committee"], rlhf_beta=0.5)
    # the MPNEs of all prompts are solved together, each k warm-started from the previous one
    mpne: dict = {}
    previous = None
    for k in (1, 3):
        results = ua.solvers.solve_mpne_batch(models, k, init=previous)
        previous = [result.policy for result in results]
        mpne.update({(p, k): policy for p, policy in enumerate(previous)})
    for row in frame.itertuples(index=False):
        model = models[row.prompt]
        if row.method == "nlhf":
            policy = ua.solve_nlhf(model).policy
        elif row.method == "rlhf":
            policy = ua.rlhf_policy(model, 0.5).policy
        elif row.method == "mpne":
            policy = mpne[row.prompt, row.k]
        else:
            rho = ua.solve_committee(model, row.k).policy
            assert row.robust_level == ua.robust_level(model, rho)
            assert np.isnan(row.exploitability)
            continue
        assert (row.robust_level, row.opponent, row.best_response, row.best_utility, row.exploitability) == \
            per_prompt(model, policy, row.k, "uniform")
        if row.method == "mpne":
            assert row.robust_level == pytest.approx(row.k / (row.k + 1), abs=1e-7)
    with pytest.raises(ValueError, match="rlhf_beta"):
        ua.audit_many(models, methods=["rlhf"], rlhf_beta=0.0)


@pytest.mark.parametrize("ties", ["uniform", "weak"])
def test_mpne_and_optimal_in_one_audit_match_their_own_audits(ties: str) -> None:
    """Under uniform ties an audit with both methods solves once (the optimum is the
    MPNE); every row still equals the one of an audit with that method alone."""
    rng = np.random.default_rng(21)
    models = [ua.RankingPopulation.from_orders(np.argsort(rng.random((15, 6)), axis=1)),
              ua.RankingPopulation(rng.integers(0, 3, size=(10, 5)), weights=rng.random(10) + 0.1)]
    both = audit_columns(models, ks=[1, 2, 4], methods=["mpne", "optimal"], ties=ties)[0]
    for method in ("mpne", "optimal"):
        alone = audit_columns(models, ks=[1, 2, 4], methods=[method], ties=ties)[0]
        rows = both["method"] == method
        for name in COLUMNS:
            if name != "method":
                assert np.array_equal(both[name][rows], alone[name], equal_nan=True), (method, name)
    mpne, optimal = both["method"] == "mpne", both["method"] == "optimal"
    same = np.array_equal(both["robust_level"][mpne], both["robust_level"][optimal])
    assert same if ties == "uniform" else not same  # under the weak level the optimum beats the MPNE here


@pytest.mark.parametrize("ties", ["uniform", "strict"])
def test_many_ks_fused_and_per_k_paths_agree_bitwise(ties: str) -> None:
    # 66 values of k: beyond the fused pass's 64 (strict: all per k; uniform: the
    # 64 with k <= 64 fused, the others per k), in a shuffled order.
    rng = np.random.default_rng(21)
    models, policies = ragged_prompts(22, 3)
    ks = list(rng.permutation(np.arange(1, 67)))
    frame = ua.audit_many(models[:3], policies[:3], ks=ks, methods=["given"], ties=ties)
    for row in frame.itertuples(index=False):
        expected = per_prompt(models[row.prompt], policies[row.prompt], row.k, ties)
        assert (row.robust_level, row.opponent, row.best_response, row.best_utility, row.exploitability) == expected


def test_core_packed_validation() -> None:
    from ualign.audit import _pack, _audit_packed

    models, policies = ragged_prompts(23, 6)
    chunk = _pack(models[:6], {"given": policies[:6]}, list(range(6)))
    args = [chunk["levels"], chunk["shapes"], chunk["n_levels"], chunk["weights"], None, None, np.array([1, 2]), 0]
    ok = _core.audit_packed(*args)
    direct = _core.audit_policies([model._store for model in models[:6]], None, None, np.array([1, 2]), 0)
    for name in ok:
        assert ok[name].tobytes() == direct[name].tobytes()
    columns = _audit_packed(chunk, np.array([1, 2]), ["given", "uniform"], "uniform")
    assert len(columns["k"]) == 6 * 2 * 2
    bad_levels = chunk["levels"].copy()
    bad_levels[0] = 200
    bad_counts = chunk["n_levels"].copy()
    bad_counts[0] = 0
    for index, value, message in [(0, bad_levels, "levels: a level is not below"), (2, bad_counts, "n_levels"),
                                  (1, chunk["shapes"] * 50, "shapes"), (0, bad_levels.astype(np.int64), "uint8"),
                                  (3, -chunk["weights"], "weights")]:
        broken = list(args)
        broken[index] = value
        with pytest.raises((ValueError, TypeError), match=message):
            _core.audit_packed(*broken)


def test_mpne_under_the_weak_level_solves_the_strict_game() -> None:
    # The paper's robust level ("weak") is certified by the strict game's MPNE.
    from ualign.datasets import default_population

    frame = ua.audit_many([default_population()], ks=[1, 2, 4], methods=["mpne"], ties="weak")
    for k, level in zip(frame["k"], frame["robust_level"]):
        assert level >= k / (k + 1) - 1e-8


def test_nlhf_rows_report_the_level_range_of_all_maximal_lotteries() -> None:
    # Two voters with opposite orders: every lottery is maximal; at k samples the
    # levels range from 1/2 (a point mass) to k/(k+1) (the uniform lottery).
    split = ua.RankingPopulation.from_orders([[0, 1], [1, 0]])
    unique = ua.RankingPopulation.from_orders([[0, 1, 2], [1, 2, 0], [0, 2, 1]])
    frame = ua.audit_many([split, unique], ks=[1, 3], methods=["nlhf", "uniform"])
    for row in frame.itertuples(index=False):
        if row.method == "nlhf" and row.prompt == 0:
            assert row.level_low == pytest.approx(0.5, abs=1e-12)
            assert row.level_high == pytest.approx(row.k / (row.k + 1), abs=1e-9)
            assert row.level_low - 1e-12 <= row.robust_level <= row.level_high + 1e-12
        else:
            assert row.level_low == row.robust_level == row.level_high
