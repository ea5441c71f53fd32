"""The README's examples run, and the `ualign audit` command works as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ualign as ua
from ualign.cli import audit_rows, main

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_has_examples() -> None:
    assert readme_python_blocks()


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_example_runs(index: int) -> None:
    exec(compile(readme_python_blocks()[index], f"README block {index}", "exec"), {})


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines == ['pip install . && ualign audit', 'pip install ".[test]" && pytest']


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ualign.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_audit_default_subprocess(tmp_path: Path) -> None:
    result = run_cli("audit", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "built-in default population" in result.stdout
    table = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [int(row[0]) for row in table] == list(range(1, 9))
    for row in table:
        k, level, bound, win = int(row[0]), float(row[1]), float(row[2]), float(row[4])
        assert bound == pytest.approx(k / (k + 1), abs=1e-6)
        assert level + win == pytest.approx(1.0, abs=2e-6)
        assert level <= bound + 1e-6  # no single-output policy beats k/(k+1) under uniform ties


def test_audit_matches_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    orders = np.argsort(rng.random((30, 6)), axis=1)
    weights = rng.random(30)
    policy = rng.dirichlet(np.ones(6))
    path = tmp_path / "population.npz"
    np.savez(path, orders=orders, weights=weights, policy=policy)
    result = run_cli("audit", str(path), "--k", "4", "--ties", "weak", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model = ua.RankingPopulation.from_orders(orders, weights)
    table = [line.split() for line in result.stdout.splitlines()[2:]]
    assert len(table) == 4
    for row, expected in zip(table, audit_rows(model, policy, 4, "weak")):
        assert float(row[1]) == pytest.approx(ua.robust_level(model, policy, expected["k"], ties="weak"), abs=1e-6)
        assert int(row[3]) == expected["opponent"]


@pytest.mark.parametrize("contents, message", [
    ({"weights": np.ones(3)}, "exactly one of"),
    ({"ranks": np.zeros((2, 3)), "scores": np.zeros((2, 3))}, "exactly one of"),
    ({"orders": np.array([[0, 0, 1]])}, "orders"),
    ({"ranks": np.array([[0, 1]]), "policy": np.array([0.5, 0.6])}, "policy"),
])
def test_audit_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture, contents: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **contents)
    assert main(["audit", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_audit_help_documents_input(tmp_path: Path) -> None:
    result = run_cli("audit", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for word in ("ranks", "orders", "scores", "weights", "policy", "default population"):
        assert word in result.stdout
