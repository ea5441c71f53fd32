"""Packaging behaviour: the compiled core's build information and the message
users get when the core is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import ualign as ua

PACKAGE = Path(ua.__file__).resolve().parent


def test_missing_core_says_how_to_build(tmp_path: Path) -> None:
    # A copy of the Python sources without the extension, as in a source checkout.
    copy = tmp_path / "ualign"
    copy.mkdir()
    for source in PACKAGE.glob("*.py"):
        shutil.copy(source, copy / source.name)
    result = subprocess.run([sys.executable, "-S", "-c", "import ualign"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "compiled core (ualign._core) is missing" in result.stderr
    assert "pip install ." in result.stderr
