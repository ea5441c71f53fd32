"""Results do not depend on the number of OpenMP threads (bitwise), nor on
calling the kernels from several Python threads at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ualign as ua

# Builds a mid-size instance (ties, random weights) and saves every output as raw bytes.
SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import ualign as ua

    def instance():
        rng = np.random.default_rng(20240607)
        n, m = 5000, 50
        ranks = rng.integers(0, 12, size=(n, m))          # weak orders, many ties
        ranks[: n // 2] = np.argsort(rng.random((n // 2, m)), axis=1)  # and strict ones
        weights = rng.random(n) ** 3
        weights[rng.random(n) < 0.05] = 0.0
        pi = rng.random(m) * (rng.random(m) < 0.6)
        pi /= pi.sum()
        sigma = rng.random(m)
        sigma /= sigma.sum()
        policies = rng.random((3, m))
        policies /= policies.sum(axis=1, keepdims=True)
        multisets = [list(rng.integers(0, m, size=s)) for s in (0, 1, 3, 5, 5)]
        return ranks, weights, pi, sigma, policies, multisets

    def outputs():
        ranks, weights, pi, sigma, policies, multisets = instance()
        model = ua.RankingPopulation(ranks, weights)
        scored = ua.RankingPopulation.from_scores(-ranks.astype(float), weights)
        ordered = ua.RankingPopulation.from_orders(np.argsort(ranks, axis=1, kind="stable"), weights)
        mixture = ua.ProductMixture(policies, [0.5, 0.3, 0.2], 3)
        mpolicy = ua.MultisetPolicy(multisets, [0.1, 0.2, 0.3, 0.2, 0.2])
        out = {"levels": np.ascontiguousarray(model.ranks), "scored_levels": np.ascontiguousarray(scored.ranks),
               "ordered_levels": np.ascontiguousarray(ordered.ranks)}
        for ties in ua.TIES:
            out[f"utilities_{ties}"] = model.utilities(pi, 4, ties)
            out[f"utilities_k1_{ties}"] = model.utilities(sigma, 1, ties)
            out[f"beats_multiset_{ties}"] = model.beats(multisets[3], ties)
            out[f"beats_mixture_{ties}"] = model.beats(mixture, ties)
            out[f"beats_mpolicy_{ties}"] = model.beats(mpolicy, ties)
            out[f"pairwise_{ties}"] = model.pairwise(ties)
            out[f"ordered_pairwise_{ties}"] = ordered.pairwise(ties)
            out[f"win_products_{ties}"] = np.array([model.win_rate(ua.Product(pi, 3), ua.Product(sigma, 5), ties)])
            out[f"win_mixed_{ties}"] = np.array([model.win_rate(mixture, mpolicy, ties)])
            out[f"win_sets_{ties}"] = np.array([model.win_rate(multisets[2], multisets[4], ties)])
            out[f"robust_{ties}"] = np.array([ua.robust_level(model, pi, 4, ties)])
            out[f"expl_{ties}"] = np.array([ua.exploitability(model, pi, 4, ties)])
        return out

    if __name__ == "__main__":
        out = outputs()
        out["max_threads"] = np.array([ua._core.max_threads()])
        np.savez(sys.argv[1], **out)
""")


def _run(tmp_path, threads):
    script = tmp_path / "compute.py"
    script.write_text(SCRIPT)
    target = tmp_path / f"out_{threads}.npz"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    # cwd = tmp_path so that `import ualign` finds the installed package, not the source tree
    subprocess.run([sys.executable, str(script), str(target)], cwd=tmp_path, env=env, check=True, timeout=300)
    with np.load(target) as data:
        return {key: data[key] for key in data.files}


def test_thread_count_does_not_change_any_bit(tmp_path):
    results = {t: _run(tmp_path, t) for t in (1, 2, 3)}
    if ua.has_openmp:
        for t, out in results.items():
            assert int(out["max_threads"][0]) == t
    reference = results[1]
    keys = sorted(k for k in reference if k != "max_threads")
    assert len(keys) > 40
    for t in (2, 3):
        for key in keys:
            assert reference[key].dtype == results[t][key].dtype, key
            assert reference[key].tobytes() == results[t][key].tobytes(), f"{key}: 1 vs {t} threads"


def _namespace():
    namespace = {}
    exec(compile(SCRIPT.replace('if __name__ == "__main__":', "if False:"), "compute", "exec"), namespace)
    return namespace


def test_concurrent_python_threads_match_serial():
    ns = _namespace()
    ranks, weights, pi, sigma, policies, multisets = ns["instance"]()
    models = [ua.RankingPopulation(ranks, weights), ua.RankingPopulation(ranks[::-1].copy(), weights[::-1].copy())]
    mixture = ua.ProductMixture(policies, [0.5, 0.3, 0.2], 3)
    mpolicy = ua.MultisetPolicy(multisets, [0.1, 0.2, 0.3, 0.2, 0.2])

    def jobs():
        for model in models:
            for ties in ua.TIES:
                yield lambda model=model, ties=ties: model.utilities(pi, 4, ties)
                yield lambda model=model, ties=ties: model.beats(mixture, ties)
                yield lambda model=model, ties=ties: model.beats(mpolicy, ties)
                yield lambda model=model, ties=ties: model.pairwise(ties)
                yield lambda model=model, ties=ties: np.array(
                    [model.win_rate(ua.Product(pi, 3), ua.Product(sigma, 5), ties)])
                yield lambda model=model, ties=ties: np.array([model.win_rate(mixture, mpolicy, ties)])
        # construction concurrently as well
        yield lambda: np.ascontiguousarray(ua.RankingPopulation(ranks, weights).ranks)
        yield lambda: np.ascontiguousarray(ua.RankingPopulation.from_scores(-ranks, weights).ranks)

    tasks = list(jobs())
    serial = [task().tobytes() for task in tasks]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(2):
            concurrent = list(pool.map(lambda task: task().tobytes(), tasks * 2))
            assert concurrent == serial * 2


def test_core_honours_omp_num_threads(tmp_path):
    """The kernels' thread count follows OMP_NUM_THREADS (one thread without OpenMP)."""
    env = dict(os.environ, OMP_NUM_THREADS="3")
    result = subprocess.run([sys.executable, "-c", "import ualign; print(ualign._core.max_threads())"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120)
    assert int(result.stdout) == (3 if ua.has_openmp else 1)
