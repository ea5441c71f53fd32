"""audit_many on a Dask cluster (a LocalCluster of two worker processes) gives
exactly the local results."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

import ualign as ua

pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       worker_dashboard_address=None, silence_logs=40, timeout="60s")
    try:
        with distributed.Client(cluster, timeout="60s") as dask_client:
            dask_client.wait_for_workers(2, timeout=60)
            yield dask_client
    finally:
        cluster.close(timeout=30)


def prompts(seed: int, count: int) -> Any:
    rng = np.random.default_rng(seed)
    models, policies = {}, {}
    for p in range(count):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 20))
        if p % 2:
            model = ua.RankingPopulation(rng.integers(0, max(1, m // 2), size=(n, m)), weights=rng.random(n) + 0.1)
        else:
            model = ua.RankingPopulation.from_orders(np.argsort(rng.random((n, m)), axis=1))
        models[f"p{p}"] = model
        if p % 7:
            policies[f"p{p}"] = rng.dirichlet(np.ones(m))
    return models, policies


def test_cluster_equals_local(client: Any) -> None:
    models, policies = prompts(21, 60)
    local = ua.audit_many(models, policies, ks=range(1, 9))
    # chunks of 7 prompts: 9 tasks spread over both workers
    remote = ua.audit_many(models, policies, ks=range(1, 9), client=client, chunk_size=7)
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    for column in ("robust_level", "best_utility", "exploitability"):
        assert remote[column].to_numpy().tobytes() == local[column].to_numpy().tobytes()


def test_cluster_default_chunks_and_ties(client: Any) -> None:
    models, policies = prompts(22, 25)
    positional_models = list(models.values())
    positional_policies = [policies.get(key) for key in models]
    local = ua.audit_many(positional_models, positional_policies, ks=[1, 4], ties="strict")
    remote = ua.audit_many(positional_models, positional_policies, ks=[1, 4], ties="strict", client=client)
    pd.testing.assert_frame_equal(remote, local, check_exact=True)


def test_cluster_validation(client: Any) -> None:
    models, _ = prompts(23, 2)
    with pytest.raises(ValueError, match="chunk_size"):
        ua.audit_many(models, client=client, chunk_size=0)
    with pytest.raises(TypeError, match="client: expected a dask.distributed.Client"):
        ua.audit_many(models, client=object())


def test_cluster_solver_methods(client: Any) -> None:
    models, _ = prompts(24, 6)
    # The solvers run on the workers: their policies are reproducible only to the
    # solvers' tolerance (1e-8 on the exploitability; iterative methods with BLAS
    # whose rounding depends on the process's threads). Downstream of a policy
    # everything is exact.
    local = ua.audit_many(models, ks=[1, 2], methods=["mpne", "rlhf"], rlhf_beta=0.3)
    remote = ua.audit_many(models, ks=[1, 2], methods=["mpne", "rlhf"], rlhf_beta=0.3, client=client, chunk_size=2)
    # (the argmax columns are left out: an MPNE equalises the utilities of its support,
    # so the best response among them is decided by rounding)
    floats = ["robust_level", "bound", "best_utility", "exploitability"]
    pd.testing.assert_frame_equal(remote[["prompt", "method", "k"]], local[["prompt", "method", "k"]])
    pd.testing.assert_frame_equal(remote[floats], local[floats], check_exact=False, rtol=0, atol=1e-7)


def test_cli_scheduler(client: Any, tmp_path: Any, capsys: Any) -> None:
    from ualign.cli import main

    address = client.scheduler.address
    assert main(["audit", "--k", "3", "--methods", "uniform", "--json", str(tmp_path / "remote.json"),
                 "--scheduler", address]) == 0
    assert main(["audit", "--k", "3", "--methods", "uniform", "--json", str(tmp_path / "local.json")]) == 0
    out = capsys.readouterr().out
    assert f"on {address}" in out
    import json

    remote = json.loads((tmp_path / "remote.json").read_text())["rows"]
    local = json.loads((tmp_path / "local.json").read_text())["rows"]
    assert remote == local
