"""Sphinx configuration of the ualign documentation.

Why these tools: the docstrings are numpy-style, so ``sphinx.ext.autodoc`` reads
them from the *installed* package (``pip install . --group docs``; the source tree has
no compiled core, so it is deliberately not put on ``sys.path``) and
``sphinx.ext.napoleon`` renders their sections; MyST-Parser lets every page be
Markdown, like the README, so ``.ci/doc_blocks.py`` runs the code blocks of both.

Build (warnings are errors):  sphinx-build -W --keep-going -b html docs docs/_build/html

At ``builder-inited`` the gallery scripts (``docs/gallery/*.py``) and
``ualign audit`` run into ``docs/_generated/`` (not committed), so the figures and
the audit output shown are those of the ualign being documented.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ualign

project = "ualign"
author = "the ualign developers"
copyright = "2026, the ualign developers"
release = version = ualign.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated/*.txt", "README.md", "gallery/*.py"]

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
# Signatures keep the annotations as written (``ArrayLike``, ``Optional[int]``);
# resolving them into cross-references would warn on numpy's private aliases.
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "alabaster"
html_title = f"ualign {release}"

DOCS = Path(__file__).resolve().parent
GENERATED = DOCS / "_generated"


def _run(command: list[str], output: Path | None = None) -> None:
    """Run ``command`` in ``GENERATED`` (Agg backend, one OpenMP thread: two commands
    run at once); its stdout goes to ``output`` when given. A failure fails the build."""
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=GENERATED, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    if output is not None:
        output.write_text(result.stdout)
    print(f"[ualign docs] {' '.join(command[1:])}: {time.perf_counter() - start:.1f} s")


def generate(app: object) -> None:
    GENERATED.mkdir(exist_ok=True)
    jobs = [([sys.executable, "-m", "ualign", "audit"], GENERATED / "audit.txt")]
    jobs += [([sys.executable, str(script)], None) for script in sorted((DOCS / "gallery").glob("*.py"))]
    # Results do not depend on the thread count, so two single-threaded jobs at a time
    # halve the wall time on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(_run, command, output) for command, output in jobs]:
            future.result()


def setup(app: object) -> None:
    app.connect("builder-inited", generate)  # type: ignore[attr-defined]
