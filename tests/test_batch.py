"""The batch layer every solver iterates on (ualign.batch.PromptBatch and the
compiled batch kernels) and the solvers across prompts: the per-prompt values bit
for bit, Jacobian blocks equal to vector-Jacobian products, and every prompt's
result certified by the per-prompt code."""

from __future__ import annotations

from typing import List

import numpy as np
import pytest

import ualign as ua
from ualign import _core
from ualign.batch import PromptBatch, project_rows
from ualign.operands import _products
from ualign.solvers import rlhf_policy_batch, solve_mpne_batch, solve_nlhf_batch, solve_optimal_batch

TIES = {"uniform": 0, "half": 1, "strict": 2, "weak": 3}


def ragged(seed: int, count: int = 12, with_pl: bool = True) -> List[ua.PreferenceModel]:
    """Ragged prompts: strict and weak orders with weights, one voter, one response,
    all tied, and (optionally) a Plackett-Luce mixture (the per-prompt kernel path)."""
    rng = np.random.default_rng(seed)
    models: List[ua.PreferenceModel] = []
    for p in range(count):
        n, m = int(rng.integers(1, 30)), int(rng.integers(1, 12))
        if p % 4 == 0:
            models.append(ua.RankingPopulation.from_orders(np.argsort(rng.random((n, m)), axis=1)))
        elif p % 4 == 1:
            models.append(ua.RankingPopulation(rng.integers(0, 3, size=(n, m)), weights=rng.random(n) + 0.1))
        elif p % 4 == 2:
            models.append(ua.RankingPopulation(np.zeros((n, m), dtype=np.int64)))
        elif with_pl:
            models.append(ua.PlackettLuceMixture(rng.normal(size=(3, m)), rng.random(3) + 0.1))
        else:
            models.append(ua.RankingPopulation(rng.integers(0, 2, size=(n, m))))
    return models


def policies(batch: PromptBatch, rng: np.random.Generator) -> np.ndarray:
    pi = np.where(batch.mask, rng.random(batch.mask.shape), 0.0)
    pi[rng.random(pi.shape) < 0.3] = 0.0
    pi[np.arange(len(batch)), 0] += 1e-3   # every row keeps some mass
    return pi / pi.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("ties", list(TIES))
def test_batch_kernels_are_the_per_prompt_kernels(ties: str) -> None:
    rng = np.random.default_rng(1)
    batch = PromptBatch(ragged(1))
    pi, q = policies(batch, rng), rng.random((len(batch), batch.width)) * batch.mask
    code = TIES[ties]
    for k in (1, 3, 9, 100):  # 100: past the four-voter path
        u = batch.utilities(pi, k, code, batch.all)
        u2, g = batch.utilities_vjp(pi, q, k, code, batch.all)
        for p, model in enumerate(batch.models):
            m = model.n_responses
            expected = model._beats(_products(pi[p, None, :m], np.ones(1), k), code)
            assert u[p, :m].tobytes() == expected.tobytes()
            assert not u[p, m:].any() and not g[p, m:].any()
            u_ref, g_ref = model._utilities_vjp(np.ascontiguousarray(pi[p, :m]), np.ascontiguousarray(q[p, :m]), k,
                                                code)
            assert u2[p, :m].tobytes() == np.asarray(u_ref).tobytes()
            assert g[p, :m].tobytes() == np.asarray(g_ref).tobytes()


@pytest.mark.parametrize("ties", list(TIES))
def test_batch_pairwise_is_each_models_pairwise(ties: str) -> None:
    """The batch's pairwise matrices (rankings in one pass, other models one by one)
    have the bits of model.pairwise, prompt by prompt."""
    batch = PromptBatch(ragged(3))
    matrices = batch.pairwise(ties)
    assert len(matrices) == len(batch)
    for M, model in zip(matrices, batch.models):
        assert M.shape == (model.n_responses,) * 2 and M.tobytes() == model.pairwise(ties).tobytes()


@pytest.mark.parametrize("ties", list(TIES))
def test_jacobian_blocks_are_vector_jacobian_products(ties: str) -> None:
    rng = np.random.default_rng(2)
    batch = PromptBatch(ragged(2))
    pi = policies(batch, rng)
    selected = batch.mask & (rng.random(batch.mask.shape) < 0.6)
    code = TIES[ties]
    for k in (1, 4):
        full = batch.jacobian(pi, k, code, batch.all, selected)
        square = batch.jacobian(pi, k, code, batch.all, selected, square=True)
        for p, model in enumerate(batch.models):
            m = model.n_responses
            members = np.flatnonzero(selected[p])
            for a, y in enumerate(members):
                e = np.zeros(m)
                e[y] = 1.0
                _, row = model._utilities_vjp(np.ascontiguousarray(pi[p, :m]), e, k, code)
                assert np.abs(full[p, a, :m] - row).max() <= 1e-13
                assert np.abs(square[p, a, :members.size] - row[members]).max() <= 1e-13
            assert not full[p, members.size:].any() and not square[p, members.size:].any()


@pytest.mark.parametrize("ties", list(TIES))
def test_ranking_jacobian_rows_in_one_pass(ties: str) -> None:
    """The solvers' Jacobian rows of a population (one batch-kernel pass) are the
    unit-row VJPs, in the order asked (repeats allowed), with the utilities."""
    rng = np.random.default_rng(5)
    model = ua.RankingPopulation(rng.integers(0, 4, size=(30, 7)), rng.random(30))
    pi = rng.dirichlet(np.ones(7))
    pi[2] = 0.0
    pi /= pi.sum()
    rows = np.array([5, 0, 5, 3])
    for k in (1, 3):
        u, J = model._jacobian_rows(pi, rows, k, TIES[ties])
        assert np.array_equal(u, model.utilities(pi, k, ties))
        for y, row in zip(rows, J):
            e = np.zeros(7)
            e[y] = 1.0
            assert np.abs(row - model._utilities_vjp(pi, e, k, TIES[ties])[1]).max() <= 1e-13


def test_plackett_luce_vjp_rows_share_one_pass() -> None:
    """A Plackett–Luce mixture's VJPs of several rows of q in one pass (how the batch
    takes its Jacobian rows) have the bits of one call per row, utilities included."""
    rng = np.random.default_rng(3)
    model = ua.PlackettLuceMixture(rng.normal(size=(4, 9)) * 3.0, rng.random(4) + 0.1)
    pi = rng.dirichlet(np.ones(9))
    pi[2] = 0.0
    q = rng.normal(size=(5, 9))
    q[1] = 0.0
    q[3] = np.eye(9)[4]
    for k in (1, 2, 7):
        u, G = model._utilities_vjps(pi, q, k, TIES["uniform"])
        assert G.shape == (5, 9)
        for r in range(5):
            u_row, g_row = model._utilities_vjp(pi, np.ascontiguousarray(q[r]), k, TIES["uniform"])
            assert u.tobytes() == u_row.tobytes() and G[r].tobytes() == g_row.tobytes()
    with pytest.raises(ValueError, match="q: expected a 1-d or 2-d array"):
        model._store.utilities_vjp(pi, q[None], 2, TIES["uniform"])
    with pytest.raises(ValueError, match="q: entries must be finite"):
        model._store.utilities_vjp(pi, np.where(q > 1.0, np.inf, q), 2, TIES["uniform"])


def test_jacobian_against_finite_differences_of_the_oracle() -> None:
    from oracle import utilities as oracle_utilities

    rng = np.random.default_rng(3)
    ranks = rng.integers(0, 3, size=(5, 4))
    weights = rng.random(5) + 0.2
    model = ua.RankingPopulation(ranks, weights=weights)
    batch = PromptBatch([model])
    pi = rng.dirichlet(np.ones(4))[None, :]
    for ties, code in TIES.items():
        J = batch.jacobian(pi, 3, code, batch.all, np.ones((1, 4), dtype=bool))[0]
        h = 1e-6
        for z in range(4):
            step = np.zeros(4)
            step[z] = h
            plus = oracle_utilities(ranks, weights / weights.sum(), pi[0] + step, 3, ties)
            minus = oracle_utilities(ranks, weights / weights.sum(), pi[0] - step, 3, ties)
            assert np.abs(J[:, z] - (plus - minus) / (2 * h)).max() <= 1e-7


def test_project_rows_is_the_euclidean_projection() -> None:
    rng = np.random.default_rng(4)
    v = rng.normal(size=(50, 7)) * 3
    mask = np.arange(7)[None, :] < rng.integers(1, 8, size=50)[:, None]
    x = project_rows(v, mask)
    assert np.allclose(x.sum(axis=1), 1.0, atol=1e-12) and (x >= 0).all() and not x[~mask].any()
    for p in range(50):   # KKT: x = max(v - theta, 0) on the valid entries, with one theta
        free = mask[p] & (x[p] > 0)
        theta = (v[p] - x[p])[free]
        assert np.ptp(theta) <= 1e-12
        assert (v[p][mask[p] & ~free] <= theta[0] + 1e-12).all()


@pytest.mark.parametrize("game", ["uniform", "strict"])
def test_mpne_batch_certifies_every_prompt(game: str) -> None:
    models = ragged(5)
    level_ties = "weak" if game == "strict" else "uniform"
    previous = None
    for k in (1, 2, 5):
        results = solve_mpne_batch(models, k, game, init=previous)
        previous = [result.policy for result in results]
        for model, result in zip(models, results):
            assert result.converged and result.exploitability <= 1e-8
            assert result.certificate == ua.certify(model, result.policy, k, ties=level_ties)
            assert result.robust_level >= k / (k + 1) - result.exploitability - 1e-12


def test_mpne_batch_of_one_is_solve_mpne() -> None:
    model = ragged(6, 1)[0]
    for k in (1, 3):
        single, batched = ua.solve_mpne(model, k), solve_mpne_batch([model], k)[0]
        assert single.policy.tobytes() == batched.policy.tobytes()
        assert single.certificate == batched.certificate


def test_optimal_and_nlhf_and_rlhf_batches() -> None:
    models = ragged(7)
    for ties in ("uniform", "weak"):
        for model, result in zip(models, solve_optimal_batch(models, 2, ties)):
            assert result.converged and result.gap <= 1e-8
            assert result.certificate == ua.certify(model, result.policy, 2, ties=ties)
    for model, result in zip(models, solve_nlhf_batch(models)):
        assert result.exploitability <= 1e-10
        assert (result.policy @ model.pairwise()).min() >= 0.5 - 1e-10
        assert result.certificate == ua.certify(model, result.policy, 1, tol=1e-10)
    for model, result in zip(models, rlhf_policy_batch(models, 0.3)):
        assert result.certificate == ua.certify(model, result.policy, 1, tol=1e-10)
        single = ua.rlhf_policy(model, 0.3)
        assert np.abs(single.reward - result.reward).max() <= 1e-9
        assert np.abs(single.policy - result.policy).max() <= 1e-9


def test_solver_paths_do_not_depend_on_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The solvers choose their methods (Newton hand-off, Jacobian or SLSQP) from the
    models' fixed cost estimates: on an infinitely fast machine (a clock that stands
    still) or a very slow one (0.1 s per reading) every policy keeps its bits."""
    rng = np.random.default_rng(12)
    models = [ua.RankingPopulation(rng.integers(0, 6, size=(n, m))) for n, m in ((40, 8), (2000, 8), (300, 60))]
    models.append(ua.PlackettLuceMixture(rng.normal(size=(30, 50))))

    def policies() -> List[bytes]:
        out = []
        for k in (1, 3, 9):
            out += [r.policy.tobytes() for r in solve_mpne_batch(models, k)]
            out += [r.policy.tobytes() for r in solve_optimal_batch(models, k, "weak")]
        return out

    real = policies()
    monkeypatch.setattr("time.perf_counter", lambda: 0.0)
    assert policies() == real
    readings = iter(np.arange(1e7) * 0.1)
    monkeypatch.setattr("time.perf_counter", lambda: float(next(readings)))
    assert policies() == real


def test_batch_bad_input() -> None:
    models = ragged(8, 4, with_pl=False)
    with pytest.raises(ValueError, match="^init"):
        solve_mpne_batch(models, 2, init=[None])
    with pytest.raises(ValueError, match=r"^init\[1\]"):
        solve_mpne_batch(models, 2, init=[None, [2.0], None, None])
    with pytest.raises(ValueError, match="^models"):
        solve_mpne_batch([], 2)
    with pytest.raises(TypeError, match="^model"):
        solve_nlhf_batch([object()])
    with pytest.raises(ValueError, match="^reference"):
        rlhf_policy_batch(models, 0.1, reference=[None])
    stores = _core.StoreList([model._store for model in models])  # type: ignore[attr-defined]
    width = max(model.n_responses for model in models)
    rows = np.arange(4)
    ks = np.full(4, 2)
    pi = np.full((4, width), 0.1)
    with pytest.raises(ValueError, match="^policies"):
        _core.batch_utilities(stores, rows, np.full((3, width), 0.1), ks, 0)
    with pytest.raises(ValueError, match="^policies"):
        _core.batch_utilities(stores, rows, np.full(4 * width, 0.1), ks, 0)
    with pytest.raises(ValueError, match="^policies"):
        _core.batch_utilities(stores, rows, np.full((4, width), -0.1), ks, 0)
    with pytest.raises(ValueError, match="^policies"):
        _core.batch_utilities(stores, rows, np.full((4, width), np.nan), ks, 0)
    with pytest.raises(ValueError, match="^ks"):
        _core.batch_utilities(stores, rows, pi, np.full(3, 2), 0)
    with pytest.raises(ValueError, match="^rows"):
        _core.batch_utilities(stores, np.array([0, 1, 2, 4]), pi, ks, 0)
    with pytest.raises(ValueError, match="^rows"):
        _core.batch_utilities(stores, rows, np.full((4, 1), 0.1), ks, 0)
    with pytest.raises(ValueError, match="^q"):
        _core.batch_utilities_vjp(stores, rows, pi, np.full((4, width), np.inf), ks, 0)
    sizes = [model.n_responses for model in models]
    assert min(sizes) < width  # a prompt whose padding a selection can reach
    past = np.zeros((4, width), dtype=bool)
    past[int(np.argmin(sizes)), width - 1] = True
    with pytest.raises(ValueError, match="^selected"):
        _core.batch_jacobian(stores, rows, pi, past, ks, 0, True)
    with pytest.raises(ValueError, match="^selected"):
        _core.batch_jacobian(stores, rows, pi, np.zeros((4, width + 1), dtype=bool), ks, 0, True)
    with pytest.raises(ValueError, match="^rows"):
        _core.batch_strictly_better(stores, np.array([4]), width)
    with pytest.raises(ValueError, match="^rows"):
        _core.batch_strictly_better(stores, rows, 1)
    with pytest.raises(ValueError, match="^width"):
        _core.batch_strictly_better(stores, np.zeros(0, dtype=np.int64), -1)
    with pytest.raises(TypeError, match=r"^models\[0\]"):
        _core.StoreList([None])


def test_audit_utility_rows_from_the_definitions() -> None:
    """The batched audit of padded rows: level 1 - max loss and its (first) opponent,
    the first best response, the correctly rounded mean utility and the
    exploitability, from each row's first sizes[p] entries only (the padding holds
    values that would win, or NaN); bad shapes, sizes and values raise."""
    import math

    from ualign.game import audit_utility_rows

    rng = np.random.default_rng(12)
    sizes = np.array([1, 5, 3, 8, 8], dtype=np.int64)
    u = rng.random((5, 8)).round(1)  # rounding makes ties, so "first argmax" matters
    loss = rng.random((5, 8)).round(1)
    pi = rng.random((5, 8))
    padding = np.arange(8)[None, :] >= sizes[:, None]
    u[padding], loss[padding] = 2.0, 2.0
    pi /= np.where(padding, 0.0, pi).sum(axis=1, keepdims=True)
    for policy in (pi, None):
        level, opponent, best, best_utility, expl, mean = audit_utility_rows(u, loss, policy, sizes)
        for p, m in enumerate(sizes):
            assert level[p] == 1.0 - loss[p, :m].max() and opponent[p] == np.argmax(loss[p, :m])
            assert best[p] == np.argmax(u[p, :m]) and best_utility[p] == u[p, :m].max()
            if policy is None:
                assert math.isnan(mean[p]) and math.isnan(expl[p])
            else:
                assert mean[p] == math.fsum(pi[p, :m] * u[p, :m]) and expl[p] == u[p, :m].max() - mean[p]
    with pytest.raises(ValueError, match="^sizes"):
        audit_utility_rows(u, loss, pi, np.array([1, 5, 3, 8, 9]))
    with pytest.raises(ValueError, match="^sizes"):
        audit_utility_rows(u, loss, pi, np.array([1, 0, 3, 8, 8]))
    with pytest.raises(ValueError, match="^loss"):
        audit_utility_rows(u, loss[:4], pi, sizes)
    with pytest.raises(ValueError, match="^policy"):
        audit_utility_rows(u, loss, pi[:, :7], sizes)
    assert audit_utility_rows(np.where(padding, np.nan, u), loss, pi, sizes)[0].tolist() == level.tolist()
    inside = u.copy()
    inside[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        audit_utility_rows(inside, loss, pi, sizes)
