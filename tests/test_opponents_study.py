"""examples/opponents_study.py --quick runs (the CI-sized grid) and checks its claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ualign as ua

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "opponents_study.py"


def test_quick_study(tmp_path: Path) -> None:
    target = tmp_path / "study.json"
    env = dict(os.environ, PYTHONPATH=str(Path(ua.__file__).resolve().parent.parent))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(target)], cwd=tmp_path, env=env,
                   check=False, timeout=120, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - start < 60
    rows = json.loads(target.read_text())
    assert {r["instance"] for r in rows} == {"prop 3.2", "prop 3.3 (m=4)", "random 0"}
    for r in rows:
        assert r["lower_bound"] - 1e-9 <= r["mpne"] <= r["optimum"] + 1e-8 <= r["upper_bound_general"] + 1e-8
        # distributions over k-multisets include every pi^{⊗k}; for k = 1 they are the policies
        assert r["optimum"] - 1e-8 <= r["committee"] <= r["committee_bound"] + 1e-12
        if r["k"] == 1:
            assert abs(r["committee"] - r["optimum"]) <= 1e-8
        if r["instance"] == "prop 3.2":  # equal rewards: the uniform policy's level is k/(k+l) exactly
            assert abs(r["optimum"] - r["k"] / (r["k"] + r["l"])) <= 1e-12
