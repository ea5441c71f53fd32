"""Imports the compiled core once, with a message that says how to build it."""

from __future__ import annotations

from types import ModuleType
from typing import Optional

_BUILD_HINT = (
    "ualign's compiled core (ualign._core) is missing. Install the package so that it is "
    "built: `pip install .` from the repository root (needs a C++17 compiler and CMake; "
    "they are fetched automatically by pip's build isolation). If you are running from a "
    "source checkout, run your code or `pytest` from a directory where `import ualign` "
    "finds the installed package rather than the source tree (e.g. use `pytest`, not "
    "`python -m pytest`, from the repository root)."
)


_loaded: Optional[ModuleType] = None


def core() -> ModuleType:
    """The ``ualign._core`` extension module (imported on first use, then kept: the
    solvers ask for it thousands of times per batch)."""
    global _loaded
    if _loaded is None:
        try:
            from . import _core
        except ImportError as error:
            if str(error).startswith("UALIGN_MAX_ISA"):
                raise  # the core is there; the environment variable is invalid
            raise ImportError(f"{_BUILD_HINT}\n(original error: {error})") from error
        _loaded = _core
    return _loaded
