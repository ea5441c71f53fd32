"""CPU dispatch: every instruction set the build carries gives the same bits.

The kernels are compiled once per instruction set (src/dispatch.hpp) and one is
chosen at import, capped by the environment variable UALIGN_MAX_ISA. Each run
below is a fresh interpreter (the choice is made once per process), outside the
source tree so that it imports the installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ualign as ua

# Every kernel family on random instances (strict and weak orders, weights, zero
# policy mass; m = 37 and 300 so that the vector loops and their tails both run),
# saved as raw arrays together with the instruction set that computed them.
SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import ualign as ua

    def policy(rng, m):
        pi = rng.random(m) * (rng.random(m) < 0.7)
        pi[0] += 0.1
        return pi / pi.sum()

    def outputs():
        rng = np.random.default_rng(20240611)
        out = {}
        for m in (37, 300):
            n = 600
            strict = np.argsort(rng.random((n, m)), axis=1)
            weak = rng.integers(0, max(2, m // 5), size=(n, m))
            weights = rng.random(n) ** 2
            weights[rng.random(n) < 0.05] = 0.0
            pi, sigma = policy(rng, m), policy(rng, m)
            q = rng.standard_normal(m)
            multiset = list(rng.integers(0, m, size=4))
            for order, ranks in (("strict", strict), ("weak", weak)):
                model = ua.RankingPopulation(ranks, weights)
                for ties in ua.TIES:
                    key = f"{order}_{m}_{ties}"
                    for k in (1, 5, 100):
                        out[f"utilities_{key}_{k}"] = model.utilities(pi, k, ties)
                        u, g = model.utilities_vjp(pi, k, q, ties)
                        out[f"vjp_{key}_{k}"] = np.concatenate([u, g])
                    out[f"beats_{key}"] = model.beats(multiset, ties)
                    out[f"win_rate_{key}"] = np.array([
                        model.win_rate(ua.Product(pi, 3), ua.Product(sigma, 7), ties),
                        model.win_rate(multiset, ua.Product(sigma, 2), ties)])
                    out[f"pairwise_{key}"] = model.pairwise(ties)
            # the batch audit (fused several-k pass), given and uniform policies
            models = [ua.RankingPopulation(weak[i::5], weights[i::5]) for i in range(5)]
            models.append(ua.RankingPopulation(strict, weights))
            policies = [policy(rng, m) for _ in models]
            for ties in ua.TIES:
                frame = ua.audit_many(models, policies, ks=[1, 2, 3, 8, 70], ties=ties)
                for column in ("robust_level", "opponent", "best_response", "best_utility", "exploitability"):
                    out[f"audit_{m}_{ties}_{column}"] = frame[column].to_numpy()
            # Plackett-Luce mixture
            rewards = rng.standard_normal((6, m)) * 3.0
            pl = ua.PlackettLuceMixture(rewards, rng.random(6) + 0.1)
            for ties in ua.TIES:
                for k in (1, 4):
                    out[f"pl_utilities_{m}_{ties}_{k}"] = pl.utilities(pi, k, ties)
                out[f"pl_win_rate_{m}_{ties}"] = np.array([
                    pl.win_rate(ua.Product(pi, 2), ua.Product(sigma, 3), ties),
                    pl.win_rate(multiset, ua.Product(sigma, 2), ties)])
                out[f"pl_pairwise_{m}_{ties}"] = pl.pairwise(ties)
        return out

    if __name__ == "__main__":
        out = outputs()
        out["isa"] = np.array([ua._core.isa()])
        np.savez(sys.argv[1], **out)
""")


def _run(tmp_path, max_isa):
    script = tmp_path / "compute.py"
    script.write_text(SCRIPT)
    target = tmp_path / f"out_{max_isa or 'default'}.npz"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("UALIGN_MAX_ISA", None)
    if max_isa is not None:
        env["UALIGN_MAX_ISA"] = max_isa
    subprocess.run([sys.executable, str(script), str(target)], cwd=tmp_path, env=env, check=True, timeout=600)
    with np.load(target) as data:
        return {key: data[key] for key in data.files}


def test_available_isas_and_choice():
    available = ua._core.available_isas()
    assert available[0] == "baseline"
    assert set(available) <= {"baseline", "avx2"}
    assert ua._core.isa() in available
    if "UALIGN_MAX_ISA" not in os.environ:
        assert ua._core.isa() == available[-1]


def test_baseline_gives_the_same_bits_as_the_default(tmp_path):
    baseline = _run(tmp_path, "baseline")
    assert str(baseline["isa"][0]) == "baseline"
    default = _run(tmp_path, None)
    assert str(default["isa"][0]) == ua._core.available_isas()[-1]
    if str(default["isa"][0]) == "baseline":
        pytest.skip("this CPU (or build) has no AVX2: only the baseline kernels can run, nothing to compare")
    keys = sorted(key for key in default if key != "isa")
    assert len(keys) > 200
    for key in keys:
        assert default[key].dtype == baseline[key].dtype, key
        assert default[key].tobytes() == baseline[key].tobytes(), f"{key}: avx2 and baseline differ"


@pytest.mark.parametrize("value", ["sse2", "AVX2", " baseline", "avx512"])
def test_invalid_max_isa_fails_the_import_with_its_name(tmp_path, value):
    env = dict(os.environ, UALIGN_MAX_ISA=value)
    result = subprocess.run([sys.executable, "-c", "import ualign"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: UALIGN_MAX_ISA must be 'baseline' or 'avx2'"), result.stderr


def test_empty_max_isa_means_no_cap(tmp_path):
    env = dict(os.environ, UALIGN_MAX_ISA="")
    result = subprocess.run([sys.executable, "-c", "import ualign; print(ualign._core.isa())"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == ua._core.available_isas()[-1]
