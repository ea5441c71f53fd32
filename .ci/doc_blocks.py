#!/usr/bin/env python3
"""Run the code blocks of README.md and docs/**/*.md, each as its own script.

    python .ci/doc_blocks.py [FILE ...] [--with TEXT] [--without TEXT] [--list]

With no FILE: README.md and every docs/**/*.md (docs/_build excluded), from the
repository root. Each block is written to ``block_N.py`` (or ``block_N.sh``) in a
fresh temporary directory and run there in a subprocess, so a block sees only
what it creates itself, exactly as a reader who pastes it into a file would.

Which blocks run:

* every fenced ``python`` block, as ``python block_N.py`` with this interpreter
  (so a block that starts a Dask ``LocalCluster`` must guard its entry point with
  ``if __name__ == "__main__":``, as a reader's script must);
* from fenced ``bash`` blocks, only the lines whose command (comment stripped) is
  in ``SHELL_COMMANDS``: commands that read no input file and write nothing
  outside the temporary directory. ``ualign`` is run as ``python -m ualign`` with
  this interpreter, so the ualign under test is the one that runs. Every other
  shell line — installs and the test command (CI runs those itself), commands on
  the example files of a guide (``votes.csv``, ``council.toc``) or on a cluster
  address — is listed as not run.

``--with`` / ``--without`` keep only the blocks whose text contains / lacks TEXT.
A failing block is reported with its file and line (and its output); the script
exits 1 if any block failed or if no block was selected at all.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Shell commands of the docs that are run (exactly these, after stripping comments).
SHELL_COMMANDS = ("ualign audit", "ualign reproduce", "ualign --version", "python -m ualign --version")

#: Longest a block may run.
TIMEOUT_SECONDS = 600

#: An opening fence and its info string (a language, or a MyST directive such as ``{toctree}``).
_FENCE = re.compile(r"^(`{3,})\s*(\S*)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    language: str  # "python" or "bash"
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced ``python`` and ``bash`` blocks of a Markdown file, in order."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    j = 0
    while j < len(lines):
        opening = _FENCE.match(lines[j])
        if opening is None:
            j += 1
            continue
        fence, language, start = opening.group(1), opening.group(2), j
        j += 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        if j == len(lines):
            raise SystemExit(f"{path}:{start + 1}: unclosed code fence")
        if language in ("python", "bash"):
            blocks.append(Block(path, start + 1, language, "\n".join(lines[start + 1:j]) + "\n"))
        j += 1
    return blocks


def shell_lines(block: Block) -> tuple[list[str], list[str]]:
    """(commands run, lines not run) of a bash block."""
    run, skipped = [], []
    for raw in block.code.splitlines():
        command = raw.split("#", 1)[0].strip()
        if command:
            (run if command in SHELL_COMMANDS else skipped).append(command)
    return run, skipped


def script_of(block: Block) -> str | None:
    """The script a block runs as, or None when nothing of it runs."""
    if block.language == "python":
        return block.code
    run, _ = shell_lines(block)
    if not run:
        return None
    python = f'"{sys.executable}"'
    commands = [python + " -m ualign" + c[len("ualign"):] if c.startswith("ualign") else
                python + c[len("python"):] for c in run]
    return "set -euo pipefail\n" + "\n".join(commands) + "\n"


def default_files() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
    return [ROOT / "README.md", *docs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--with", dest="with_text", help="only blocks containing TEXT")
    parser.add_argument("--without", dest="without_text", help="only blocks not containing TEXT")
    parser.add_argument("--list", action="store_true", help="list the selected blocks, run nothing")
    args = parser.parse_args(argv)
    files = [f if f.is_absolute() else (Path.cwd() / f).resolve() for f in args.files] or default_files()

    selected: list[tuple[Block, str]] = []
    for path in files:
        for block in fenced_blocks(path):
            if args.with_text is not None and args.with_text not in block.code:
                continue
            if args.without_text is not None and args.without_text in block.code:
                continue
            script = script_of(block)
            if block.language == "bash":
                for command in shell_lines(block)[1]:
                    print(f"{block.where}: not run: {command}")
            if script is not None:
                selected.append((block, script))
    if not selected:
        print("no block selected", file=sys.stderr)
        return 1
    if args.list:
        for block, _ in selected:
            print(f"{block.where}: {block.language}")
        return 0

    env = dict(os.environ, MPLBACKEND="Agg")
    env.setdefault("OMP_NUM_THREADS", "2")
    failures = []
    start = time.perf_counter()
    for n, (block, script) in enumerate(selected, start=1):
        with tempfile.TemporaryDirectory(prefix="doc-block-") as folder:
            name = f"block_{n}.py" if block.language == "python" else f"block_{n}.sh"
            Path(folder, name).write_text(script, encoding="utf-8")
            command = [sys.executable, name] if block.language == "python" else ["bash", name]
            began = time.perf_counter()
            try:
                result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                                        timeout=TIMEOUT_SECONDS, check=False)
                status, output = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired as expired:
                partial = expired.stdout or b""  # bytes even with text=True
                partial = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
                status, output = "timeout", f"timed out after {TIMEOUT_SECONDS} s\n{partial}"
        seconds = time.perf_counter() - began
        print(f"{block.where}: {block.language} block {'ok' if status == 0 else 'FAILED'} ({seconds:.1f} s)")
        if status != 0:
            failures.append(block)
            print(f"--- {block.where}: exit status {status}; output:\n{output.rstrip()}\n---", file=sys.stderr)
    print(f"{len(selected) - len(failures)} passed, {len(failures)} failed "
          f"({len(selected)} blocks in {time.perf_counter() - start:.1f} s)")
    for block in failures:
        print(f"FAILED: {block.where}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
