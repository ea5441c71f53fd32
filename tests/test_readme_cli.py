"""The README's examples run, and the `ualign audit` command works as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ualign
from ualign.cli import main

ROOT = Path(__file__).resolve().parents[1]


DOC_BLOCKS = ROOT / ".ci" / "doc_blocks.py"


def run_readme_blocks(*selection: str) -> subprocess.CompletedProcess:
    """Run README.md's code blocks with .ci/doc_blocks.py (each as its own script, as
    CI runs them with the docs' blocks), importing the same ualign as this session."""
    package_parent = str(Path(ualign.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, str(DOC_BLOCKS), str(ROOT / "README.md"), *selection], capture_output=True,
                          text=True, check=False, env=env, timeout=900)


def test_readme_examples_run() -> None:
    result = run_readme_blocks("--without", "LocalCluster")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^[1-9]\d* passed, 0 failed", result.stdout, re.MULTILINE), result.stdout


def test_readme_dask_example_runs() -> None:
    result = run_readme_blocks("--with", "LocalCluster")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^1 passed, 0 failed", result.stdout, re.MULTILINE), result.stdout


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines == ['pip install . && ualign audit', 'pip install --group test && pytest']


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ualign.cli", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=120)


# The audit command's output is tested in test_cli_audit.py.


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
