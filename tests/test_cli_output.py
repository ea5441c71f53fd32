"""What `ualign audit` shows a person: voter counts, response labels, several
input files, plot formats and captions, progress only on a terminal, --quiet."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ualign as ua
from ualign import io
from ualign.audit import audit_columns
from ualign.cli import main
from ualign.plot import plot_levels, response_name

DATA = Path(__file__).resolve().parent / "data"

# 10 voters in 3 distinct orders of 3 named alternatives
ELECTION = ("# DATA TYPE: {kind}\n# NUMBER ALTERNATIVES: 3\n# NUMBER VOTERS: 10\n# NUMBER UNIQUE ORDERS: 3\n"
            "# ALTERNATIVE NAME 1: Sushi-X\n# ALTERNATIVE NAME 2: Maguro\n# ALTERNATIVE NAME 3: Ebi\n"
            "5: 1,2,3\n3: 2,3,1\n2: 3,1,2\n")


def write_election(path: Path) -> Path:
    path.write_text(ELECTION.format(kind=path.suffix.lstrip(".")))
    return path


def header(stdout: str) -> str:
    return stdout.splitlines()[0]


def policy_rows(stdout: str) -> dict[int, tuple[str, str]]:
    """{k: (opponent, best response)} as printed in the audited policy's table."""
    lines = stdout.splitlines()
    start = next(j for j, line in enumerate(lines) if line.split()[:3] == ["k", "robust", "level"])
    rows = {}
    number, response = r"\s+-?\d\.\d+(?:e[-+]\d+)?", r"(\d+(?: \(.*?\))?)"
    for line in lines[start + 1:]:
        match = re.fullmatch(rf"\s*(\d+){number}\s+{response}{number}\s+{response}{number}\s*", line)
        if match is None:
            break
        rows[int(match.group(1))] = (match.group(2), match.group(3))
    return rows


def test_header_counts_voters_not_distinct_orders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_election(tmp_path / "election.soc")
    assert main(["audit", str(path), "--k", "2", "--methods", "uniform"]) == 0
    assert io.load(path)["election"].n_voters == 3  # the model keeps one row per distinct order
    assert f"ualign audit: {path}: 10 voters, 3 responses;" in header(capsys.readouterr().out)


def test_header_voters_of_tables_and_arrays(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ranks = np.array([[0, 1, 2], [2, 1, 0]])
    np.savez(tmp_path / "counts.npz", ranks=ranks, weights=np.array([4.0, 3.0]))
    np.savez(tmp_path / "shares.npz", ranks=ranks, weights=np.array([0.25, 0.75]))  # not counts: two voters
    np.savez(tmp_path / "plain.npz", ranks=ranks)
    dataset = io.load([tmp_path / "counts.npz", tmp_path / "shares.npz", tmp_path / "plain.npz"])
    assert dataset.voters == {"counts": 7, "plain": 2}
    with open(tmp_path / "t.csv", "w") as handle:
        handle.write("prompt,voter,response,rank,weight\n" + "".join(
            f"{p},{v},{y},{(y + v) % 3},{w}\n" for p, weights in (("a", (2, 5)), ("b", (0.5, 1)))
            for v, w in enumerate(weights) for y in range(3)))
    assert io.load(tmp_path / "t.csv").voters == {"a": 7}
    assert main(["audit", str(tmp_path / "t.csv"), "--k", "1", "--methods", "uniform"]) == 0
    assert ": 2 prompts, 3 responses, 2-7 voters;" in header(capsys.readouterr().out)


def test_policy_table_shows_response_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_election(tmp_path / "election.toc")
    assert main(["audit", str(path), "--k", "3", "--methods", "uniform", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    model, labels = io.load(path)["election"], ["Sushi-X", "Maguro", "Ebi"]
    rows = policy_rows(out)
    assert sorted(rows) == [1, 2, 3]
    uniform = np.full(3, 1 / 3)
    for k, (opponent, best) in rows.items():
        y = ua.worst_case_opponent(model, uniform, k)[0]
        assert opponent == f"{y} ({labels[y]})"
        assert re.fullmatch(r"(\d) \((.*)\)", best) is not None
        b = int(best.split()[0])
        assert best == f"{b} ({labels[b]})"
    report = json.loads((tmp_path / "r.json").read_text())
    assert [row["opponent_label"] for row in report["rows"]] == [rows[k][0].split(" (")[1][:-1] for k in (1, 2, 3)]


def test_response_name() -> None:
    assert response_name(3, None) == "3"
    assert response_name(3, [0, 1, 2, 3]) == "3"  # a label equal to the index says nothing more
    assert response_name(1, ["a", "b"]) == "1 (b)"
    assert response_name(0, [np.int64(7)]) == "0 (7)"  # PrefLib's unnamed alternatives are numbered from 1
    long = "x" * 100
    assert response_name(0, [long]) == "0 (" + "x" * 29 + "…)"


def test_many_files_have_a_short_header_and_title(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(write_election(tmp_path / (f"file-{j:02d}-" + "very-long-name" * 10 + ".soc"))) for j in range(12)]
    titles = []
    monkeypatch.setattr("ualign.plot.plot_levels", lambda *args, **kwargs: titles.append(kwargs["title"]))
    assert main(["audit", *paths, "--k", "1", "--methods", "uniform", "--plot", str(tmp_path / "p.png"),
                 "--json", str(tmp_path / "r.json")]) == 0
    first = header(capsys.readouterr().out)
    assert len(first) < 250
    assert first.startswith("ualign audit: 12 files: …") and ", …: 12 prompts, 3 responses, 10 voters;" in first
    assert titles == [first.split(": 12 prompts")[0] + " (12 prompts)"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["inputs"] == paths and report["source"] == first.split("ualign audit: ")[1].split(": 12 prompts")[0]


def test_two_files_are_both_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = [str(write_election(tmp_path / name)) for name in ("a.soc", "b.toc")]
    assert main(["audit", *paths, "--k", "1", "--methods", "uniform"]) == 0
    assert header(capsys.readouterr().out).startswith("ualign audit: 2 files: a.soc, b.toc: 2 prompts,")


def test_soi_and_toc_of_one_election_are_audited_together(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    soi, toc = write_election(tmp_path / "ED-00001.soi"), write_election(tmp_path / "ED-00001.toc")
    assert main(["audit", str(soi), str(toc), "--k", "2", "--methods", "uniform", "--json",
                 str(tmp_path / "r.json")]) == 0
    assert ": 2 prompts," in header(capsys.readouterr().out)
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert sorted({row["prompt"] for row in rows}) == ["ED-00001.soi", "ED-00001.toc"]


def test_prompt_names_of_files_are_unique(tmp_path: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        write_election(tmp_path / folder / "e.soc")
    write_election(tmp_path / "e.toc")
    write_election(tmp_path / "other.soc")
    paths = [tmp_path / "x" / "e.soc", tmp_path / "y" / "e.soc", tmp_path / "e.toc", tmp_path / "other.soc"]
    assert list(io.load(paths)) == [str(paths[0]), str(paths[1]), "e.toc", "other"]
    assert list(io.load(paths[2:])) == ["e", "other"]  # distinct stems keep the plain names
    with pytest.raises(ValueError, match="appears in more than one input"):
        io.load([paths[3], paths[3]])


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF"), (".SVG", b"<?xml")])
def test_plot_writes_the_format_of_its_extension(tmp_path: Path, suffix: str, magic: bytes) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / f"levels{suffix}"
    assert main(["audit", str(DATA / "sample.toi"), "--k", "2", "--methods", "uniform,committee",
                 "--plot", str(path)]) == 0
    data = path.read_bytes()
    assert data.startswith(magic)
    if suffix == ".SVG":
        assert b"<svg" in data


@pytest.mark.parametrize("name", ["levels.jpg", "levels", "levels.png.txt"])
def test_plot_other_extensions_are_argparse_errors(tmp_path: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "--plot", str(tmp_path / name)])
    assert info.value.code == 2
    assert (f"argument --plot: expected a path ending in .png, .pdf, .svg, got {str(tmp_path / name)!r}"
            in capsys.readouterr().err)
    assert not (tmp_path / name).exists()
    with pytest.raises(ValueError, match="^path: expected a file ending in .png, .pdf, .svg"):
        plot_levels({"method": [], "k": [], "robust_level": [], "prompt": [], "opponent": []}, str(tmp_path / name))


def test_plot_captions_name_opponents_and_explain_the_committee(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    path = write_election(tmp_path / "election.soc")
    columns, _ = audit_columns([io.load(path)["election"]], None, [1, 2, 3], ("uniform", "committee"))
    columns["prompt"] = np.array(["election"] * columns["k"].shape[0], dtype=object)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text, so it can be read back
        plot_levels(columns, str(tmp_path / "p.svg"), audited="uniform", labels=["Sushi-X", "Maguro", "Ebi"])
    svg = (tmp_path / "p.svg").read_text()
    text = " ".join(re.findall(r">([^<>]+)</text>", svg))
    assert "committee is multi-output" in text and "takes the best of them" in text
    assert "committee (multi-output, see below)" in text
    opponents = [ua.worst_case_opponent(io.load(path)["election"], np.full(3, 1 / 3), k)[0] for k in (1, 2, 3)]
    labels = ["Sushi-X", "Maguro", "Ebi"]
    assert f"worst-case opponent of the uniform policy: {opponents[0]} ({labels[opponents[0]]}) at k = 1" in text
    with pytest.raises(ValueError, match="^audited: 'given' is not a method"):
        plot_levels(columns, str(tmp_path / "p.png"), audited="given")


class _Terminal:
    """A stand-in for sys.stderr that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty, quiet, shown", [(True, False, True), (False, False, False), (True, True, False)])
def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tty: bool,
                                     quiet: bool, shown: bool) -> None:
    from ualign import audit

    calls: list[Any] = []
    real = audit.audit_columns

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["progress"])
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "audit_columns", spy)
    monkeypatch.setattr(sys, "stderr", _Terminal(tty))
    assert main(["audit", "--k", "1", "--methods", "uniform"] + (["--quiet"] if quiet else [])) == 0
    assert calls == [shown]


def test_quiet_drops_the_notes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "split.soc"  # two opposite voters: the maximal lottery is not unique
    path.write_text("# DATA TYPE: soc\n# NUMBER ALTERNATIVES: 3\n1: 1,2,3\n1: 3,2,1\n")
    assert main(["audit", str(path), "--k", "2", "--methods", "nlhf,uniform"]) == 0
    loud = capsys.readouterr().out
    assert main(["audit", str(path), "--k", "2", "--methods", "nlhf,uniform", "-q"]) == 0
    quiet = capsys.readouterr().out
    assert "note: the maximal lottery is not unique" in loud and "note:" not in quiet
    assert [line for line in loud.splitlines() if not line.startswith(("note:", "  split:", "("))] == \
        [line for line in quiet.splitlines() if not line.startswith("(")]
