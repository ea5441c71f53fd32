"""Voter groups from the data into audits: the group column of long tables (CSV,
Parquet, DataFrame, pyarrow), PrefLib labels files and files pooled by file, the
groups a Dataset carries in audit_many, and `ualign audit --groups/--group-by`.
Every group's level is checked against ua.group_levels and against the brute-force
oracle on the group's voters alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import oracle
import pl_oracle
import pytest
from helpers import random_policy

import ualign as ua
from ualign import io
from ualign.cli import main

TIES = oracle.TIES
ATOL = 1e-12


def oracle_level(ranks: Any, weights: Any, policy: Any, k: int, ties: str) -> float:
    return oracle.robust_level(ranks, weights, policy, k, ties)


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[repr(v) if isinstance(v, float) else v for v in row] for row in rows])
    return path


def random_table(seed: int) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """A shuffled long table of two prompts (ranks with ties, missing pairs, voter
    weights, a group column) and, per prompt, the oracle's view of it: ranks in the
    loader's voter and response order (first appearance), weights and groups."""
    rng = np.random.default_rng(seed)
    rows: list[list[Any]] = []
    for prompt in ("p", "q"):
        n, m = int(rng.integers(3, 7)), int(rng.integers(2, 5))
        ranks = rng.integers(0, 3, size=(n, m))
        present = rng.random((n, m)) < 0.8
        present[np.arange(n), rng.integers(0, m, size=n)] = True  # every voter rates something
        weights = rng.integers(1, 4, size=n).astype(float) * rng.choice([0.5, 1.0])
        groups = rng.choice(np.array(["red", "blue", "green"]), size=n)
        groups[:2] = ["red", "blue"]
        for i in range(n):
            for y in range(m):
                if present[i, y]:
                    rows.append([prompt, f"v{i}", f"r{y}", int(ranks[i, y]), float(weights[i]), str(groups[i])])
    rows = [rows[j] for j in rng.permutation(len(rows))]
    views: dict[str, Any] = {}
    for prompt in ("p", "q"):
        mine = [row for row in rows if row[0] == prompt]
        voters = list(dict.fromkeys(row[1] for row in mine))
        responses = list(dict.fromkeys(row[2] for row in mine))
        cells = {(row[1], row[2]): row[3] for row in mine}
        full = np.zeros((len(voters), len(responses)), dtype=np.int64)
        for i, voter in enumerate(voters):
            worst = max(rank for (who, _), rank in cells.items() if who == voter)
            full[i] = [cells.get((voter, response), worst + 1) for response in responses]
        weight = {row[1]: row[4] for row in mine}
        group = {row[1]: row[5] for row in mine}
        views[prompt] = {"ranks": full, "weights": np.array([weight[v] for v in voters]),
                         "groups": np.array([group[v] for v in voters]), "responses": responses}
    return ["prompt", "voter", "response", "rank", "weight", "group"], rows, views


def check_group_levels(data: io.Dataset, prompt: Any, ranks: Any, weights: Any, groups: Any, rng: Any,
                       ks: tuple[int, ...] = (1, 2, 3)) -> None:
    """Every group's level of a random policy, from ua.group_levels and from audit_many
    on the loaded data, against the oracle on the group's voters alone."""
    model = data[prompt]
    pi = random_policy(rng, model.n_responses)
    assert np.array_equal(np.asarray(data.groups[prompt]), np.asarray(groups))
    for ties in TIES:
        result = ua.group_levels(model, pi, list(ks), data.groups[prompt], ties)
        report = ua.audit_many(data, {prompt: pi}, ks=list(ks), methods=["given"], ties=ties)
        report = report[report.prompt == prompt]
        assert sorted(result.groups.tolist()) == sorted(set(np.asarray(groups).tolist()))
        for g, label in enumerate(result.groups.tolist()):
            members = np.asarray(groups) == label
            for j, k in enumerate(ks):
                mass = None if weights is None else np.asarray(weights)[members]
                expected = oracle_level(np.asarray(ranks)[members], mass, pi, k, ties)
                assert abs(result.levels[g, j] - expected) <= ATOL, (ties, label, k)
                row = report[report.k == k].iloc[0]
                assert abs(row.group_levels[label] - expected) <= ATOL
        for j, k in enumerate(ks):
            row = report[report.k == k].iloc[0]
            assert row.worst_group == result.worst_group[j]
            assert row.worst_group_level == result.worst_level[j]


# -- long tables ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_group_column_of_a_csv_table_gives_each_groups_exact_levels(tmp_path: Path, seed: int) -> None:
    header, rows, views = random_table(seed)
    data = io.load(write_csv(tmp_path / "votes.csv", header, rows))
    assert set(data.groups) == {"p", "q"}
    rng = np.random.default_rng(100 + seed)
    for prompt, view in views.items():
        assert data.responses[prompt] == view["responses"]
        check_group_levels(data, prompt, view["ranks"], view["weights"], view["groups"], rng)


def test_dataframe_pyarrow_and_parquet_inputs_carry_the_same_groups(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    header, rows, views = random_table(11)
    frame = pd.DataFrame(rows, columns=header)
    frame["group"] = frame["group"].map({"red": 1, "blue": 2, "green": 3})  # numbers are labels too
    frame.to_parquet(tmp_path / "votes.parquet", index=False)
    loaded = [io.load_table(frame), io.load_table(pa.Table.from_pandas(frame)), io.load(frame),
              io.load(tmp_path / "votes.parquet")]
    rng = np.random.default_rng(3)
    for data in loaded:
        for prompt, view in views.items():
            numbers = np.array([{"red": 1, "blue": 2, "green": 3}[g] for g in view["groups"]])
            assert data.groups[prompt].tolist() == numbers.tolist()
    check_group_levels(loaded[1], "p", views["p"]["ranks"], views["p"]["weights"],
                       [{"red": 1, "blue": 2, "green": 3}[g] for g in views["p"]["groups"]], rng, ks=(2,))


def test_a_voter_whose_rows_disagree_on_the_group_is_an_error(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    rows = [["p", "ann", "x", 0, "a"], ["p", "ann", "y", 1, "a"], ["p", "bob", "x", 1, "b"], ["p", "bob", "y", 0, "c"]]
    header = ["prompt", "voter", "response", "rank", "team"]
    path = write_csv(tmp_path / "votes.csv", header, rows)
    with pytest.raises(ValueError, match=r"votes\.csv: line 5, column 'team': voter 'bob' of prompt 'p' has team "
                                         r"'b' at line 4 and 'c' here"):
        io.load_table(path, group_column="team")
    with pytest.raises(ValueError, match=r"^source: row 3, column 'team': voter 'bob' of prompt 'p' has team 'b' at "
                                         r"row 2 and 'c' here"):
        io.load_table(pd.DataFrame(rows, columns=header), group_column="team")
    # without naming the column, 'team' is just another column
    assert io.load_table(path).groups == {}
    with pytest.raises(ValueError, match=r"^group_column: .*votes\.csv has no column 'cohort'"):
        io.load(path, group_column="cohort")
    with pytest.raises(ValueError, match=r"^group_column: 'voter' cannot hold groups"):
        io.load_table(path, group_column="voter")
    with pytest.raises(TypeError, match=r"^group_column: expected a column name"):
        io.load_table(path, group_column=3)  # type: ignore[arg-type]


def test_missing_and_bad_group_cells_and_empty_groups_are_errors(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    header = ["prompt", "voter", "response", "rank", "weight", "group"]
    rows = [["p", "ann", "x", 0, 1.0, "a"], ["p", "bob", "x", 0, 1.0, ""]]
    with pytest.raises(ValueError, match=r"votes\.csv: line 3, column 'group': missing value"):
        io.load(write_csv(tmp_path / "votes.csv", header, rows))
    frame = pd.DataFrame({"prompt": ["p", "p"], "voter": ["ann", "bob"], "response": ["x", "x"], "rank": [0, 0],
                          "group": [("a", 1), "b"]})
    with pytest.raises(TypeError, match=r"^source: row 0, column 'group': expected a group label"):
        io.load_table(frame)
    rows = [["p", "ann", "x", 0, 1.0, "a"], ["p", "bob", "x", 0, 0.0, "b"]]  # group 'b' weighs nothing
    with pytest.raises(ValueError, match=r"zero\.csv: prompt 'p': column 'group': group 'b' has zero total weight"):
        io.load(write_csv(tmp_path / "zero.csv", header, rows))


def test_weak_order_rows_are_annotators_with_a_group_each(tmp_path: Path) -> None:
    rows = [["a>b=c", "x"], ["c>a", "y"], ["b", "x"], ["a=b>c", "y"], ["c", "y"]]
    path = write_csv(tmp_path / "orders.csv", ["ranking", "group"], rows)
    for data in (io.load(path), io.load_weak_orders(path)):
        assert data.groups["orders"].tolist() == ["x", "y", "x", "y", "y"]
        ranks = io.parse_weak_orders([row[0] for row in rows]).population.ranks
        check_group_levels(data, "orders", ranks, None, ["x", "y", "x", "y", "y"], np.random.default_rng(4))


def test_score_tables_group_the_raters_that_is_the_types(tmp_path: Path) -> None:
    rows = [["p", "rm1", "a", 2.0, "helpful"], ["p", "rm1", "b", 0.5, "helpful"], ["p", "rm1", "c", -1.0, "helpful"],
            ["p", "rm2", "a", 0.0, "safe"], ["p", "rm2", "b", 1.5, "safe"], ["p", "rm2", "c", 1.0, "safe"],
            ["p", "rm3", "a", 1.0, "helpful"], ["p", "rm3", "b", 1.0, "helpful"], ["p", "rm3", "c", 3.0, "helpful"]]
    path = write_csv(tmp_path / "scores.csv", ["prompt", "rater", "response", "score", "group"], rows)
    for data in (io.load_scores(path, temperature=0.5), io.load(path, model="plackett-luce", temperature=0.5)):
        labels = data.groups["p"]
        assert labels.tolist() == ["helpful", "safe", "helpful"]
        rewards = np.array([[2.0, 0.5, -1.0], [0.0, 1.5, 1.0], [1.0, 1.0, 3.0]]) / 0.5
        pi = np.array([0.2, 0.5, 0.3])
        result = ua.group_levels(data["p"], pi, [1, 2], labels)
        report = ua.audit_many(data, {"p": pi}, ks=[1, 2], methods=["given"])
        for g, label in enumerate(result.groups.tolist()):
            members = labels == label
            for j, k in enumerate((1, 2)):
                expected = min(pl_oracle.win_rate(rewards[members], None, oracle.prod(pi, k), y) for y in range(3))
                assert abs(result.levels[g, j] - expected) <= ATOL
                assert abs(report.group_levels.iloc[j][label] - expected) <= ATOL
    rows[4][4] = "safe"  # rm2 is 'safe' on its first row: rm1 changes group on its second
    with pytest.raises(ValueError, match=r"line 3, column 'group': rater 'rm1' of prompt 'p' has group 'helpful' at "
                                         r"line 2 and 'safe' here"):
        io.load_scores(write_csv(tmp_path / "bad.csv", ["prompt", "rater", "response", "score", "group"],
                                 [rows[0], [*rows[1][:4], "safe"], *rows[2:]]))


def test_choice_tables_cannot_carry_groups(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "choices.csv", ["chosen", "rejected", "group"], [["a", "b", "x"], ["b", "a", "y"]])
    for call in (io.load_choices, io.fit_choices):
        with pytest.raises(ValueError, match=r"choices\.csv: line 1: column 'group': choice data cannot carry voter "
                                             r"groups .*fit each group's rows on their own"):
            call(path)
    plain = write_csv(tmp_path / "plain.csv", ["chosen", "rejected"], [["a", "b"], ["b", "a"]])
    assert io.fit_choices(plain)[0].groups == {}


def test_merge_keeps_groups_and_audit_many_uses_them_unless_told_not_to(tmp_path: Path) -> None:
    header, rows, views = random_table(5)
    grouped = io.load(write_csv(tmp_path / "votes.csv", header, rows))
    table = io.load_table(write_csv(tmp_path / "plain.csv", header[:5], [row[:5] for row in rows if row[0] == "p"]))
    assert table.groups == {}
    plain = io.Dataset({"other": table["p"]})
    merged = io.merge([grouped, plain])
    assert set(merged.groups) == {"p", "q"} and merged.groups["p"] is grouped.groups["p"]
    report = ua.audit_many(merged, ks=[1, 2])
    assert {"worst_group", "worst_group_level", "group_levels"} <= set(report.columns)
    assert report[report.prompt == "other"].worst_group.isna().all()
    assert report[report.prompt != "other"].worst_group.notna().all()
    assert "worst_group" not in ua.audit_many(merged, ks=[1], groups=False).columns
    # explicit groups replace the dataset's
    ones = {"p": ["all"] * merged["p"].n_voters}
    mine = ua.audit_many(merged, ks=[1], groups=ones)
    assert mine[mine.prompt == "p"].worst_group.tolist() == ["all"]
    assert mine[mine.prompt == "q"].worst_group.isna().all()
    level = mine[mine.prompt == "p"].iloc[0]
    assert level.worst_group_level == level.robust_level


# -- PrefLib -------------------------------------------------------------------------------------------

ELECTION = ("# DATA TYPE: toc\n# NUMBER ALTERNATIVES: 3\n# ALTERNATIVE NAME 1: Ada\n# ALTERNATIVE NAME 2: Bo\n"
            "# ALTERNATIVE NAME 3: Cy\n")


def election(path: Path, lines: list[tuple[int, str]], header: str = ELECTION) -> Path:
    path.write_text(header + "".join(f"{count}: {order}\n" for count, order in lines))
    return path


LINES = [(3, "1,2,3"), (2, "{2,3},1"), (1, "3,1,2")]
# each line's order as ranks (0 best) over Ada, Bo, Cy
LINE_RANKS = [[0, 1, 2], [1, 0, 0], [1, 2, 0]]


def test_a_labels_file_with_one_label_per_voter_splits_lines_by_group(tmp_path: Path) -> None:
    path = election(tmp_path / "town.toc", LINES)
    voters = ["old", "young", "old", "young", "young", "old"]  # 3 + 2 + 1 voters, line by line
    (tmp_path / "ages.txt").write_text("\n".join(f"  {label} " for label in voters) + "\n\n")
    expanded = [LINE_RANKS[line] for line, (count, _) in enumerate(LINES) for _ in range(count)]
    for data in (io.load_preflib(path, groups=tmp_path / "ages.txt"), io.load(path, group_labels=voters),
                 io.load(path, group_labels=str(tmp_path / "ages.txt"))):
        model = data["town"]
        assert data.voters == {"town": 6}
        assert data.groups["town"].tolist() == ["old", "young", "young", "old"]  # line 1 splits in two
        assert model.ranks.tolist() == [[0, 1, 2], [0, 1, 2], [1, 0, 0], [1, 2, 0]]
        assert np.allclose(model.weights, np.array([2, 1, 2, 1]) / 6, rtol=0, atol=1e-15)
        rng = np.random.default_rng(7)
        check_group_levels(data, "town", model.ranks, model.weights, data.groups["town"], rng)
        pi = random_policy(rng, 3)
        result = ua.group_levels(model, pi, 2, data.groups["town"], "weak")
        for g, label in enumerate(result.groups.tolist()):  # the voters one by one, unweighted
            members = [rank for rank, who in zip(expanded, voters) if who == label]
            assert abs(result.levels[g, 0] - oracle_level(members, None, pi, 2, "weak")) <= ATOL


def test_one_label_per_order_line_labels_all_its_voters(tmp_path: Path) -> None:
    path = election(tmp_path / "town.toc", LINES)
    data = io.load_preflib(path, groups=np.array([1, 2, 1]))
    assert data.groups["town"].tolist() == [1, 2, 1]
    check_group_levels(data, "town", LINE_RANKS, [3, 2, 1], [1, 2, 1], np.random.default_rng(8))


def test_bad_preflib_labels_are_errors_naming_the_argument(tmp_path: Path) -> None:
    path = election(tmp_path / "town.toc", LINES)
    with pytest.raises(ValueError, match=r"^groups: expected one label per order line \(3\) or per voter \(6\) of "
                                         r".*town\.toc, got 4"):
        io.load_preflib(path, groups=["a", "b", "a", "b"])
    with pytest.raises(ValueError, match=r"^group_labels: expected one label per order line"):
        io.load(path, group_labels=["a"])
    with pytest.raises(ValueError, match=r"^groups: expected one label per voter \(a flat sequence\)"):
        io.load_preflib(path, groups=[["a"], ["b"], ["c"]])
    with pytest.raises(TypeError, match=r"^groups: expected a sequence of labels or the path"):
        io.load_preflib(path, groups=3)  # type: ignore[arg-type]
    (tmp_path / "gap.txt").write_text("a\n\nb\nc\n")
    with pytest.raises(ValueError, match=r"gap\.txt: line 2: empty label"):
        io.load_preflib(path, groups=tmp_path / "gap.txt")
    (tmp_path / "none.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"none\.txt: no labels"):
        io.load_preflib(path, groups=tmp_path / "none.txt")
    other = election(tmp_path / "city.toc", LINES)
    with pytest.raises(ValueError, match=r"^group_labels: labels go with a single PrefLib input, got 2"):
        io.load([path, other], group_labels=["a", "b", "a"])
    write_csv(tmp_path / "votes.csv", ["prompt", "voter", "response", "rank"], [["p", "a", "x", 0]])
    with pytest.raises(ValueError, match=r"^group_labels: .*long tables hold groups in a column"):
        io.load(tmp_path / "votes.csv", group_labels=["a"])


def test_files_of_one_election_pool_into_one_prompt_grouped_by_file(tmp_path: Path) -> None:
    north = election(tmp_path / "north.toc", LINES)
    south = election(tmp_path / "south.toc", [(4, "2,1,3"), (1, "{1,2,3}")])
    data = io.load([north, south], group_by="file")
    assert list(data) == ["north+south"]
    model = data["north+south"]
    assert data.voters == {"north+south": 11}
    assert data.responses["north+south"] == ["Ada", "Bo", "Cy"]
    assert data.groups["north+south"].tolist() == ["north"] * 3 + ["south"] * 2
    ranks = LINE_RANKS + [[1, 0, 2], [0, 0, 0]]
    check_group_levels(data, "north+south", ranks, [3, 2, 1, 4, 1], data.groups["north+south"],
                       np.random.default_rng(9))
    # each group's level is its file's level on its own
    alone = {name: io.load(tmp_path / f"{name}.toc")[name] for name in ("north", "south")}
    pi = np.array([0.5, 0.2, 0.3])
    result = ua.group_levels(model, pi, [1, 3], data.groups["north+south"], "half")
    for g, name in enumerate(result.groups.tolist()):
        assert np.allclose(result.levels[g], [ua.robust_level(alone[name], pi, k, "half") for k in (1, 3)],
                           rtol=0, atol=ATOL)


def test_pooling_needs_preflib_files_of_the_same_alternatives(tmp_path: Path) -> None:
    north = election(tmp_path / "north.toc", LINES)
    four = election(tmp_path / "four.toc", [(1, "1,2,3,4")], ELECTION.replace("ALTERNATIVES: 3", "ALTERNATIVES: 4"))
    renamed = election(tmp_path / "renamed.toc", LINES, ELECTION.replace("Bo", "Bea"))
    with pytest.raises(ValueError, match=r"^group_by: .*north\.toc and .*four\.toc do not hold the same "
                                         r"alternatives \(3 and 4 alternatives\)"):
        io.load([north, four], group_by="file")
    with pytest.raises(ValueError, match=r"^group_by: .*north\.toc and .*renamed\.toc do not hold the same "
                                         r"alternatives \(alternative 2 is 'Bo' in one and 'Bea' in the other\)"):
        io.load([north, renamed], group_by="file")
    csv_path = write_csv(tmp_path / "votes.csv", ["prompt", "voter", "response", "rank"], [["p", "a", "x", 0]])
    with pytest.raises(ValueError, match=r"^group_by: 'file' pools PrefLib files .*votes\.csv is not one"):
        io.load([north, csv_path], group_by="file")
    with pytest.raises(ValueError, match=r"^group_by: unknown 'folder'"):
        io.load([north], group_by="folder")
    with pytest.raises(ValueError, match=r"^group_labels: not with group_by='file'"):
        io.load([north], group_by="file", group_labels=["a", "b", "c"])
    # without group_by the files stay separate prompts without groups
    separate = io.load([north, renamed])
    assert list(separate) == ["north", "renamed"] and separate.groups == {}


# -- the command line ----------------------------------------------------------------------------------

def run_cli(capsys: Any, *argv: Any) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def worst_group_cells(stdout: str, methods: list[str]) -> dict[tuple[int, str], str]:
    """{(k, method): cell} of the printed worst-group table."""
    lines = stdout.splitlines()
    start = next(j for j, line in enumerate(lines) if line.startswith("worst group and its robust level"))
    header = lines[start + 1].split()
    assert header == ["k", *methods]
    cells = {}
    for line in lines[start + 2:]:
        parts = line.split()
        if not parts or not parts[0].isdigit():
            break
        for j, method in enumerate(methods):
            cells[(int(parts[0]), method)] = " ".join(parts[1 + 2 * j:3 + 2 * j])
    return cells


def test_cli_reports_the_worst_group_and_writes_every_groups_level(tmp_path: Path, capsys: Any) -> None:
    header, rows, views = random_table(3)
    rows = [row for row in rows if row[0] == "p"]
    votes = write_csv(tmp_path / "votes.csv", header, rows)
    view = views["p"]
    m = len(view["responses"])
    pi = np.arange(1, m + 1) / (m * (m + 1) / 2)
    write_csv(tmp_path / "policy.csv", ["prompt", "response", "probability"],
              [["p", response, float(p)] for response, p in zip(view["responses"], pi)])
    code, out, _ = run_cli(capsys, "audit", votes, "--policy", tmp_path / "policy.csv", "--k", 3, "--ties", "weak",
                           "--methods", "given,uniform", "--json", tmp_path / "out.json", "--csv", tmp_path / "out.csv",
                           "-q")
    assert code == 0
    labels = sorted(set(view["groups"].tolist()))
    assert f"voter groups: {len(labels)} ({', '.join(labels)})" in out
    records = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert len(records) == 6
    cells = worst_group_cells(out, ["given", "uniform"])
    for record in records:
        policy = pi if record["method"] == "given" else np.full(m, 1 / m)
        expected = {}
        for label in labels:
            members = view["groups"] == label
            expected[label] = oracle_level(view["ranks"][members], view["weights"][members], policy, record["k"],
                                           "weak")
        assert set(record["group_levels"]) == set(labels)
        for label in labels:
            assert abs(record["group_levels"][label] - expected[label]) <= ATOL
        worst = min(labels, key=lambda label: (record["group_levels"][label], label))
        assert record["worst_group"] == worst
        assert abs(record["worst_group_level"] - expected[worst]) <= ATOL
        assert cells[(record["k"], record["method"])] == f"{worst} {record['worst_group_level']:.6f}"
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    for row, record in zip(table, records):
        assert row["worst_group"] == record["worst_group"]
        assert json.loads(row["group_levels"]) == record["group_levels"]
        assert float(row["worst_group_level"]) == record["worst_group_level"]


def test_cli_group_labels_are_text_and_a_named_column_is_used(tmp_path: Path, capsys: Any) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"prompt": ["p"] * 4, "voter": ["a", "a", "b", "b"], "response": ["x", "y"] * 2,
                          "rank": [0, 1, 1, 0], "cohort": [2020, 2020, 2021, 2021]})
    frame.to_parquet(tmp_path / "votes.parquet", index=False)
    code, out, _ = run_cli(capsys, "audit", tmp_path / "votes.parquet", "--groups", "cohort", "--k", 1,
                           "--methods", "uniform", "--json", tmp_path / "out.json", "-q")
    assert code == 0 and "voter groups: 2 (2020, 2021)" in out
    record = json.loads((tmp_path / "out.json").read_text())["rows"][0]
    # each voter is one group: against the uniform policy each group's level is 1/4
    assert record["group_levels"] == {"2020": 0.25, "2021": 0.25} and record["worst_group"] == "2020"
    code, _, err = run_cli(capsys, "audit", tmp_path / "votes.parquet", "--groups", "team", "-q")
    assert code == 2 and "group_column: " in err and "no column 'team'" in err


def test_cli_preflib_labels_file_and_pooled_files(tmp_path: Path, capsys: Any) -> None:
    north = election(tmp_path / "north.toc", LINES)
    south = election(tmp_path / "south.toc", [(4, "2,1,3"), (1, "{1,2,3}")])
    (tmp_path / "lines.txt").write_text("x\ny\nx\n")
    code, out, _ = run_cli(capsys, "audit", north, "--groups", tmp_path / "lines.txt", "--k", 2, "--methods",
                           "uniform", "--json", tmp_path / "labels.json", "-q")
    assert code == 0 and "voter groups: 2 (x, y)" in out
    for record in json.loads((tmp_path / "labels.json").read_text())["rows"]:
        for label, lines in (("x", [0, 2]), ("y", [1])):
            expected = oracle_level([LINE_RANKS[j] for j in lines], [LINES[j][0] for j in lines], np.full(3, 1 / 3),
                                    record["k"], "uniform")
            assert abs(record["group_levels"][label] - expected) <= ATOL
    code, out, _ = run_cli(capsys, "audit", north, south, "--group-by", "file", "--k", 2, "--methods", "uniform",
                           "--json", tmp_path / "pooled.json", "-q")
    assert code == 0 and "voter groups: 2 (north, south)" in out and ": 11 voters, 3 responses" in out
    records = json.loads((tmp_path / "pooled.json").read_text())["rows"]
    assert {record["prompt"] for record in records} == {"north+south"}
    alone = {name: io.load(tmp_path / f"{name}.toc")[name] for name in ("north", "south")}
    for record in records:
        for name, model in alone.items():
            assert abs(record["group_levels"][name] - ua.robust_level(model, np.full(3, 1 / 3), record["k"])) <= ATOL
    for argv, message in (
            ([north, south, "--groups", tmp_path / "lines.txt"], "--groups: with PrefLib input it names a labels file "
                                                                  "for a single PrefLib file"),
            ([north, tmp_path / "labels.json", "--group-by", "file"], "group_by: 'file' pools PrefLib files"),
            (["--groups", "team"], "--groups: needs input files"),
            (["--group-by", "file"], "--group-by: needs input files")):
        code, _, err = run_cli(capsys, "audit", *argv, "-q")
        assert code == 2 and message in err, err


def test_cli_bootstrap_with_groups_adds_both_and_says_what_the_intervals_are(tmp_path: Path, capsys: Any) -> None:
    north = election(tmp_path / "north.toc", LINES)
    (tmp_path / "lines.txt").write_text("x\ny\nx\n")
    code, out, _ = run_cli(capsys, "audit", north, "--groups", tmp_path / "lines.txt", "--k", 2, "--methods",
                           "uniform,mpne", "--bootstrap", 20, "--json", tmp_path / "out.json")
    assert code == 0
    assert "note: the intervals are of the whole population's level; the group levels are point estimates" in out
    records = json.loads((tmp_path / "out.json").read_text())["rows"]
    data = io.load(north, group_labels=["x", "y", "x"])
    plain = ua.audit_many(data, ks=[1, 2], methods=["uniform", "mpne"], n_boot=20, seed=0)
    for record, (_, row) in zip(records, plain.iterrows()):
        assert record["level_ci_low"] == row.level_ci_low and record["level_ci_high"] == row.level_ci_high
        assert record["group_levels"] == {str(label): level for label, level in row.group_levels.items()}
        assert record["worst_group_level"] == row.worst_group_level


def test_cli_many_prompts_show_the_mean_worst_group_level(tmp_path: Path, capsys: Any) -> None:
    header, rows, views = random_table(8)
    votes = write_csv(tmp_path / "votes.csv", header, rows)
    plain = election(tmp_path / "north.toc", LINES)
    code, out, _ = run_cli(capsys, "audit", votes, plain, "--k", 1, "--methods", "uniform", "-q")
    assert code == 0 and "voter groups on 2 of 3 prompts" in out
    lines = out.splitlines()
    at = lines.index("mean worst-group level f_g(pi, k) over the 2 prompts with groups by method:")

    def worst(view: dict[str, Any]) -> float:
        uniform = np.full(len(view["responses"]), 1 / len(view["responses"]))
        return min(oracle_level(view["ranks"][view["groups"] == label], view["weights"][view["groups"] == label],
                                uniform, 1, "uniform") for label in set(view["groups"].tolist()))

    expected = np.mean([worst(view) for view in views.values()])
    assert lines[at + 2].split() == ["1", f"{expected:.6f}"]
