"""The README's examples run, and the `ualign audit` command works as documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ualign.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_readme_has_examples() -> None:
    assert readme_python_blocks()


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_example_runs(index: int) -> None:
    exec(compile(readme_python_blocks()[index], f"README block {index}", "exec"), {})  # noqa: S102 (the README's own code)


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    lines = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert lines == ['pip install . && ualign audit', 'pip install ".[test]" && pytest']


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
