"""The command line's entry points: ``python -m ualign`` and ``--version``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ualign as ua

PACKAGE_PARENT = str(Path(ua.__file__).resolve().parents[1])


def run(command: list, tmp_path: Path) -> subprocess.CompletedProcess:
    # Run outside the source tree, importing the same ualign as this test session.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path, env=env, timeout=120)


@pytest.mark.parametrize("module", ["ualign", "ualign.cli"])
def test_version_flag(module: str, tmp_path: Path) -> None:
    result = run([sys.executable, "-m", module, "--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ualign {ua.__version__}\n"


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "ualign", "audit", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ualign audit")
    bad = run([sys.executable, "-m", "ualign", "audit", "--k", "0"], tmp_path)
    assert bad.returncode == 2 and "--k" in bad.stderr


def test_console_script_version(tmp_path: Path) -> None:
    script = shutil.which("ualign", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if script is None:
        pytest.skip("the ualign console script is not installed (source-tree run)")
    result = run([script, "--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ualign {ua.__version__}\n"
