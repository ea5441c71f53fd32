"""`ualign audit` and `ualign reproduce` in a subprocess: the built-in default,
a PrefLib sample, many prompts, JSON/CSV/PNG outputs and errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import oracle
import pytest

import ualign as ua
from ualign import io
from ualign.cli import COMMITTEE_DEFAULT_K_MAX, COMMITTEE_DEFAULT_PROMPTS_MAX, K_MAX, _methods, main
from ualign.datasets import default_groups, default_population

DATA = Path(__file__).resolve().parent / "data"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ualign.cli", *args], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=120)


def level_table(stdout: str) -> tuple[list[str], dict[int, dict[str, float]]]:
    """(methods, {k: {"bound": .., method: level}}) from the robust-level table."""
    lines = stdout.splitlines()
    start = next(j for j, line in enumerate(lines) if line.split()[:2] == ["k", "k/(k+1)"])
    methods = lines[start].split()[2:]
    table = {}
    for line in lines[start + 1:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        table[int(cells[0])] = {"bound": float(cells[1]), **{m: float(c) for m, c in zip(methods, cells[2:])}}
    return methods, table


def policy_table(stdout: str) -> dict[int, list[float]]:
    """{k: [level, opponent, win rate, best response, exploitability]} of the audited policy."""
    lines = stdout.splitlines()
    start = next(j for j, line in enumerate(lines) if line.split()[:3] == ["k", "robust", "level"])
    table = {}
    for line in lines[start + 1:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        table[int(cells[0])] = [float(c) for c in cells[1:]]
    return table


def test_default_is_consistent(tmp_path: Path) -> None:
    # (its speed is bench/'s business: a wall-clock limit here fails on a loaded or instrumented machine)
    result = run_cli("audit", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "built-in default population" in result.stdout
    methods, table = level_table(result.stdout)
    assert "uniform" in methods and "given" not in methods
    assert sorted(table) == list(range(1, 9))
    population = default_population()
    uniform = np.full(population.n_responses, 1.0 / population.n_responses)
    for k, row in table.items():
        assert row["bound"] == pytest.approx(k / (k + 1), abs=1e-6)
        assert row["uniform"] == pytest.approx(ua.robust_level(population, uniform, k), abs=1e-6)
        for method in methods:
            if method != "committee":  # no single-output policy beats k/(k+1) under uniform ties
                assert row[method] <= row["bound"] + 1e-6
    for k, (level, opponent, win, _best, _expl) in policy_table(result.stdout).items():
        assert level + win == pytest.approx(1.0, abs=2e-6)
        assert ua.worst_case_opponent(population, uniform, k)[0] == int(opponent)


def test_default_reports_its_groups(tmp_path: Path) -> None:
    """The default audit's worst-group table: for the uniform policy, the group and
    level the oracle finds on each group alone; the labels follow the voters' orders."""
    population = default_population()
    groups = default_groups()
    orders = np.argsort(np.asarray(population.ranks), axis=1)
    favourites = {label: set(orders[groups == label, 0].tolist()) for label in ("majority", "minority", "reversed")}
    assert favourites == {"majority": {0, 1}, "minority": {6, 7}, "reversed": {11, 10}}
    result = run_cli("audit", "--methods", "uniform", "--k", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "voter groups: 3 (majority, minority, reversed)" in result.stdout
    lines = result.stdout.split("worst group and its robust level")[1].splitlines()[2:5]
    ranks, weights = np.asarray(population.ranks), np.asarray(population.weights)
    uniform = np.full(population.n_responses, 1.0 / population.n_responses)
    for k, line in zip((1, 2, 3), lines):
        levels = {label: oracle.robust_level(ranks[groups == label], weights[groups == label], uniform, k)
                  for label in ("majority", "minority", "reversed")}
        worst = min(levels, key=levels.get)
        assert line.split() == [str(k), worst, f"{levels[worst]:.6f}"]


def test_preflib_sample_with_outputs(tmp_path: Path) -> None:
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    args = ["audit", str(DATA / "sample.toi"), "--k", "4", "--methods", "uniform", "--json", str(out_json),
            "--csv", str(out_csv)]
    if _has("matplotlib"):
        args += ["--plot", str(out_png)]
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 responses" in result.stdout
    model = io.load(DATA / "sample.toi")["sample"]
    _, table = level_table(result.stdout)
    report = json.loads(out_json.read_text())
    assert report["ks"] == [1, 2, 3, 4] and report["methods"] == ["uniform"] and report["prompts"] == 1
    assert len(report["rows"]) == 4
    for row in report["rows"]:
        assert row["prompt"] == "sample" and row["method"] == "uniform"
        level = ua.robust_level(model, np.full(5, 0.2), row["k"])
        assert row["robust_level"] == level  # JSON keeps every bit
        assert table[row["k"]]["uniform"] == pytest.approx(level, abs=1e-6)
        assert row["opponent_label"] in ("apple", "banana", "cherry", "date", "elderberry")
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["robust_level"]) for r in rows] == [r["robust_level"] for r in report["rows"]]
    if _has("matplotlib"):
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_many_prompts_with_policies(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    models = {f"q{j}": ua.RankingPopulation(rng.integers(0, 3, size=(6, m))) for j, m in enumerate([3, 4, 5])}
    policies = {key: rng.dirichlet(np.ones(model.n_responses)) for key, model in models.items()}
    dataset = io.Dataset(models, policies)
    io.write_table(tmp_path / "t.csv", dataset, policy_path=tmp_path / "p.csv")
    result = run_cli("audit", "t.csv", "--policy", "p.csv", "--k", "3", "--methods", "given,uniform",
                     "--json", "out.csv", "--ties", "weak", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 prompts" in result.stdout and "mean robust level" in result.stdout
    methods, table = level_table(result.stdout)
    assert methods == ["given", "uniform"]
    back = io.load(tmp_path / "t.csv", policy=tmp_path / "p.csv")
    for k in (1, 2, 3):
        mean = np.mean([ua.robust_level(back[key], back.policies[key], k, "weak") for key in back])
        assert table[k]["given"] == pytest.approx(mean, abs=1e-6)
    with open(tmp_path / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2 * 3 and rows[0]["prompt"] == "q0"


def test_npz_input_keeps_first_version_behaviour(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    orders = np.argsort(rng.random((30, 6)), axis=1)
    weights, policy = rng.random(30), rng.dirichlet(np.ones(6))
    np.savez(tmp_path / "population.npz", orders=orders, weights=weights, policy=policy)
    result = run_cli("audit", "population.npz", "--k", "4", "--ties", "weak", "--methods", "given,uniform",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model = ua.RankingPopulation.from_orders(orders, weights)
    _, table = level_table(result.stdout)
    given = policy_table(result.stdout)
    for k in range(1, 5):
        assert table[k]["given"] == pytest.approx(ua.robust_level(model, policy, k, ties="weak"), abs=1e-6)
        assert int(given[k][1]) == ua.worst_case_opponent(model, policy, k, ties="weak")[0]


@pytest.mark.parametrize("args, message", [
    (["audit", "missing.toi"], "No such file"),
    (["audit", str(DATA / "sample.toi"), "--methods", "best"], "--methods: unknown method 'best'"),
    (["audit", str(DATA / "sample.toi"), "--methods", "given"], "'given' needs an input with a policy"),
    (["audit", "--policy", "p.csv"], "--policy: needs an input table"),
])
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--k", "100000000000000000000", f"expected an integer from 1 to {K_MAX}"),  # was a traceback
    ("--k", "300", f"expected an integer from 1 to {K_MAX}"),  # ran for minutes
    ("--k", str(K_MAX + 1), f"expected an integer from 1 to {K_MAX}"),
    ("--k", "0", f"expected an integer from 1 to {K_MAX}"),
    ("--k", "-1", f"expected an integer from 1 to {K_MAX}"),
    ("--k", "\u00b2", f"expected an integer from 1 to {K_MAX}"),
    ("--k", "\u0663", f"expected an integer from 1 to {K_MAX}"),  # int() reads it as 3
    ("--k", "1e3", f"expected an integer from 1 to {K_MAX}"),
    ("--k", "", f"expected an integer from 1 to {K_MAX}"),
    ("--rlhf-beta", "nan", "expected a finite number > 0"),
    ("--rlhf-beta", "-1", "expected a finite number > 0"),
    ("--rlhf-beta", "1e999", "expected a finite number > 0"),
    ("--rlhf-beta", "x", "expected a finite number > 0"),
])
def test_cli_bad_arguments_are_argparse_errors(capsys: pytest.CaptureFixture, option: str, value: str,
                                               message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        main(["audit", option, value])
    assert info.value.code == 2
    assert time.perf_counter() - start < 5.0
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"ualign audit: error: argument {option}: {message}, got {value!r}"
    assert "Traceback" not in err


def test_cli_huge_k_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    result = run_cli("audit", "--k", "100000000000000000000", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("ualign audit: error: argument --k: ")


def test_default_methods_at_the_largest_k_stay_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    result = run_cli("audit", "--k", str(K_MAX), cwd=tmp_path)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert elapsed < 60.0  # the committee at every k up to K_MAX would take many minutes
    methods, table = level_table(result.stdout)
    assert "committee" not in methods and {"nlhf", "rlhf", "mpne", "optimal", "uniform"} <= set(methods)
    assert sorted(table) == list(range(1, K_MAX + 1))
    assert f"note: committee left out: by default it runs only for K <= {COMMITTEE_DEFAULT_K_MAX}" in result.stdout


def test_default_methods_by_k() -> None:
    assert _methods(None, False, COMMITTEE_DEFAULT_K_MAX) == (("nlhf", "rlhf", "mpne", "optimal", "committee",
                                                                "uniform"), None)
    assert _methods(None, True, COMMITTEE_DEFAULT_K_MAX + 1)[0] == ("given", "nlhf", "rlhf", "mpne", "optimal",
                                                                    "uniform")
    assert _methods("committee,uniform", False, K_MAX) == (("committee", "uniform"), None)  # asked for: kept


def test_default_methods_by_prompt_count(tmp_path: Path) -> None:
    """Many prompts: the committee (up to seconds per prompt and k) leaves the default."""
    several = _methods(None, False, 8, n_prompts=COMMITTEE_DEFAULT_PROMPTS_MAX)
    assert several == (("nlhf", "rlhf", "mpne", "optimal", "committee", "uniform"), None)
    many, note = _methods(None, False, 8, n_prompts=COMMITTEE_DEFAULT_PROMPTS_MAX + 1)
    assert "committee" not in many and note is not None and f"{COMMITTEE_DEFAULT_PROMPTS_MAX} prompts" in note
    assert _methods("committee", False, 8, n_prompts=10**4) == (("committee",), None)
    rng = np.random.default_rng(3)
    rows = ["prompt,voter,response,rank"] + [f"p{p},v{v},{y},{r}" for p in range(COMMITTEE_DEFAULT_PROMPTS_MAX + 1)
                                             for v in range(3) for y, r in enumerate(rng.permutation(4))]
    table = tmp_path / "many.csv"
    table.write_text("\n".join(rows) + "\n")
    result = run_cli("audit", str(table), "--k", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    methods, _ = level_table(result.stdout)
    assert "committee" not in methods and "mpne" in methods
    assert f"at most {COMMITTEE_DEFAULT_PROMPTS_MAX} prompts" in result.stdout


def test_cli_reports_bad_file_location(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "bad.soc"
    path.write_text("# NUMBER ALTERNATIVES: 3\n2: 1,2,{3}\n1: 1,4,2\n")
    assert main(["audit", str(path)]) == 2
    assert f"{path}: line 3, column 6: alternative 4 is out of range 1..3" in capsys.readouterr().err


def test_help_documents_inputs(tmp_path: Path) -> None:
    result = run_cli("audit", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for word in ("ranks", "orders", "scores", "weights", "policy", ".soc", ".toi", ".csv", ".parquet",
                 "--scheduler", "--plot", "--json", "default population"):
        assert word in result.stdout
    text = " ".join(result.stdout.split())  # argparse wraps the option help
    assert f"an integer from 1 to {K_MAX}" in text and f"K <= {COMMITTEE_DEFAULT_K_MAX}" in text


def test_reproduce_quick(tmp_path: Path) -> None:
    result = run_cli("reproduce", "--quick", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Property 1 (1)", "Property 1 (4)", "Prop 3.2", "Prop 3.3", "Prop 4.1", "Thm 4.3/4.4", "Thm 4.5",
                 "Prop D.3", "Thm D.6"):
        assert name in result.stdout
    assert "FAIL" not in result.stdout
    assert " 0 failed" in result.stdout


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("use_tqdm", [False, None])
def test_progress_bar(use_tqdm: object) -> None:
    import io as text_io

    from ualign._progress import Progress

    stream = text_io.StringIO()
    with Progress(10, enabled=True, delay=0.0, stream=stream, use_tqdm=use_tqdm) as bar:  # type: ignore[arg-type]
        for _ in range(10):
            bar.update(1)
    assert "10/10" in stream.getvalue()
    quiet = text_io.StringIO()
    with Progress(10, enabled=True, delay=60.0, stream=quiet, use_tqdm=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_audit_says_when_the_maximal_lottery_is_not_unique(tmp_path: Path) -> None:
    # two opposite voters: every lottery over the three responses is maximal
    path = tmp_path / "split.soc"
    path.write_text("# DATA TYPE: soc\n# NUMBER ALTERNATIVES: 3\n# NUMBER VOTERS: 2\n# NUMBER UNIQUE ORDERS: 2\n"
                    "1: 1,2,3\n1: 3,2,1\n")
    result = run_cli("audit", str(path), "--k", "3", "--methods", "nlhf,uniform", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: the maximal lottery is not unique on 1 prompt" in result.stdout
    assert "2: 0.500000-0.666667, 3: 0.500000-0.750000" in result.stdout
    cycle = tmp_path / "cycle.soc"   # a Condorcet cycle: the uniform lottery is the only maximal one
    cycle.write_text("# DATA TYPE: soc\n# NUMBER ALTERNATIVES: 3\n# NUMBER VOTERS: 3\n# NUMBER UNIQUE ORDERS: 3\n"
                     "1: 1,2,3\n1: 2,3,1\n1: 3,1,2\n")
    unique = run_cli("audit", str(cycle), "--k", "3", "--methods", "nlhf", cwd=tmp_path)
    assert unique.returncode == 0 and "not unique" not in unique.stdout
