"""audit_many with several named policies (one method each) and response
labels, and the command line's --model / --policy handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ualign as ua
from ualign import io
from ualign.audit import _audit_local, _audit_part, _pack, policy_method, resolve_methods

pd = pytest.importorskip("pandas")

FIELDS = ["robust_level", "opponent", "best_response", "best_utility", "exploitability"]


def prompts(seed: int, count: int) -> tuple[dict[str, ua.PreferenceModel], dict[str, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    models: dict[str, ua.PreferenceModel] = {}
    for p in range(count):
        m = int(rng.integers(2, 7))
        models[f"q{p}"] = (ua.RankingPopulation(rng.integers(0, 3, size=(int(rng.integers(1, 9)), m)))
                           if p % 3 else ua.PlackettLuceMixture(rng.normal(size=(2, m))))
    sets = {"sft": {key: rng.dirichlet(np.ones(model.n_responses)) for key, model in models.items()},
            "dpo": {key: rng.dirichlet(np.ones(model.n_responses)) for j, (key, model) in enumerate(models.items())
                    if j != 1}}  # dpo has no policy for q1
    return models, sets


def test_named_policies_equal_separate_audits() -> None:
    models, sets = prompts(1, 7)
    frame = ua.audit_many(models, sets, ks=[1, 3])
    assert list(dict.fromkeys(frame.method)) == ["policy:sft", "policy:dpo", "uniform"]
    for name, policies in sets.items():
        alone = ua.audit_many(models, policies, ks=[1, 3], methods=["given"])
        rows = frame[frame.method == policy_method(name)].reset_index(drop=True)
        assert list(rows.prompt) == list(alone.prompt)
        for field in FIELDS:
            assert np.array_equal(rows[field].to_numpy(), alone[field].to_numpy(), equal_nan=True), (name, field)
    assert "q1" not in set(frame[frame.method == "policy:dpo"].prompt)


def test_named_policies_over_a_sequence_of_models() -> None:
    models, sets = prompts(2, 4)
    keys = list(models)
    listed = {name: [policies.get(key) for key in keys] for name, policies in sets.items()}
    frame = ua.audit_many(list(models.values()), listed, ks=[2], methods=["given", "nlhf"])
    assert list(dict.fromkeys(frame.method)) == ["policy:sft", "policy:dpo", "nlhf"]
    by_key = ua.audit_many(models, sets, ks=[2], methods=["policy:dpo"])
    rows = frame[frame.method == "policy:dpo"]
    assert np.array_equal(rows.robust_level.to_numpy(), by_key.robust_level.to_numpy())


def test_resolve_methods() -> None:
    named = ("policy:a", "policy:b")
    assert resolve_methods(None, named) == named + ("uniform",)
    assert resolve_methods(None, named, present=["policy:b"]) == ("policy:b", "uniform")
    assert resolve_methods(["nlhf", "given", "uniform"], named) == ("nlhf", "policy:a", "policy:b", "uniform")
    assert resolve_methods(["policy:b", "nlhf", "given"], named) == ("nlhf", "policy:a", "policy:b")
    assert resolve_methods(["given", "uniform"], ("given",)) == ("given", "uniform")
    with pytest.raises(ValueError, match="methods: unknown 'policy:c'"):
        resolve_methods(["policy:c"], named)
    with pytest.raises(ValueError, match="methods: 'given' needs policies"):
        resolve_methods(["given"], ())


def test_named_policy_errors() -> None:
    models, sets = prompts(3, 3)
    with pytest.raises(ValueError, match=r"policies\['sft'\]: no model for prompt 'zz'"):
        ua.audit_many(models, {"sft": {"zz": np.ones(2) / 2}})
    with pytest.raises(ValueError, match=r"policies\['sft'\]\['q0'\]: must sum to 1"):
        ua.audit_many(models, {"sft": {"q0": np.ones(models["q0"].n_responses)}})
    with pytest.raises(ValueError, match="policies: two names give the method 'policy:1'"):
        ua.audit_many(list(models.values()), {1: [None] * 3, "1": [None] * 3})
    with pytest.raises(ValueError, match=r"policies\['a'\]: expected one policy per prompt \(3\), got 2"):
        ua.audit_many(list(models.values()), {"a": [None, None]})
    # a mapping whose values are not mappings is one policy per prompt, as before
    with pytest.raises(ValueError, match="policies: no model for prompt 'sft'"):
        ua.audit_many(models, {"sft": sets["sft"]["q0"]})


def test_packed_chunks_audit_named_policies_as_locally() -> None:
    models, sets = prompts(4, 6)
    model_list = list(models.values())
    policy_sets = {policy_method(name): [policies.get(key) for key in models] for name, policies in sets.items()}
    ks = np.array([1, 2])
    methods = ("policy:sft", "policy:dpo", "uniform")
    local = _audit_local(model_list, policy_sets, list(models), ks, methods, "uniform", {}, lambda n: None, first=0)
    rankings = [j for j, model in enumerate(model_list) if isinstance(model, ua.RankingPopulation)]
    for chunk_models, chunk_sets, chosen in [  # all populations of rankings (packed path), and everything
            ([model_list[j] for j in rankings], {m: [p[j] for j in rankings] for m, p in policy_sets.items()},
             rankings),
            (model_list, policy_sets, list(range(len(model_list))))]:
        remote = _audit_part(_pack(chunk_models, chunk_sets, chosen), ks, methods, "uniform", {})
        expected = _audit_local(chunk_models, chunk_sets, chosen, ks, methods, "uniform", {}, lambda n: None, first=0)
        for name in expected:
            assert np.array_equal(remote[name], expected[name], equal_nan=True) if remote[name].dtype != object \
                else list(remote[name]) == list(expected[name])
    assert len(local["k"]) == (6 + 5 + 6) * 2


# -- labels ----------------------------------------------------------------------------------------------

def test_labels_from_a_dataset(tmp_path: Path) -> None:
    path = tmp_path / "votes.csv"
    path.write_text("prompt,voter,response,rank\n"
                    "p,a,formal,0\np,a,casual,1\np,a,emoji,2\np,b,emoji,0\np,b,formal,1\np,b,casual,2\n"
                    "q,a,yes,1\nq,a,no,0\n")
    data = io.load(path)
    frame = ua.audit_many(data, ks=[1, 2])
    columns = list(frame.columns)
    assert columns.index("opponent_label") == columns.index("opponent") + 1
    assert columns.index("best_response_label") == columns.index("best_response") + 1
    for row in frame.itertuples(index=False):
        assert row.opponent_label == data.responses[row.prompt][row.opponent]
        assert row.best_response_label == data.responses[row.prompt][row.best_response]
    plain = ua.audit_many(data.models, ks=[1, 2])
    assert "opponent_label" not in plain.columns
    for field in FIELDS:
        assert np.array_equal(plain[field].to_numpy(), frame[field].to_numpy())


def test_labels_argument() -> None:
    models, _ = prompts(5, 3)
    names = {key: [f"{key}-r{y}" for y in range(model.n_responses)] for key, model in models.items() if key != "q2"}
    frame = ua.audit_many(models, ks=[1], labels=names)
    assert frame.opponent_label.tolist()[:2] == [names[p][y] for p, y in zip(frame.prompt[:2], frame.opponent[:2])]
    assert frame[frame.prompt == "q2"].opponent_label.isna().all()  # no labels: missing
    listed = ua.audit_many(list(models.values()), ks=[1], labels=[names.get(key) for key in models])
    assert listed.best_response_label.tolist() == frame.best_response_label.tolist()
    # committee rows have an opponent: every label column is filled where the index is
    committee = ua.audit_many(models, ks=[1], methods=["committee"], labels=names)
    assert committee.best_response_label.notna().sum() == 2
    with pytest.raises(ValueError, match=r"labels\['q0'\]: expected \d+ labels, got 1"):
        ua.audit_many(models, ks=[1], labels={"q0": ["only"]})
    with pytest.raises(ValueError, match="labels: no model for prompt 'zz'"):
        ua.audit_many(models, ks=[1], labels={"zz": ["a"]})
    with pytest.raises(ValueError, match=r"labels: expected one entry per prompt \(3\), got 1"):
        ua.audit_many(models, ks=[1], labels=[None])
    with pytest.raises(TypeError, match="labels: a mapping needs models given as a mapping too"):
        ua.audit_many(list(models.values()), ks=[1], labels={"q0": None})


# -- the command line ------------------------------------------------------------------------------------

def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ualign.cli", *args], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=120)


def test_cli_plackett_luce_scores(tmp_path: Path) -> None:
    (tmp_path / "scores.csv").write_text("prompt,response,rater,score\n"
                                         "p,a,r1,1.0\np,b,r1,2.5\np,c,r1,0.5\np,a,r2,3.0\np,b,r2,0.0\np,c,r2,1.0\n"
                                         "q,x,r1,0.2\nq,y,r1,0.1\n")
    result = run_cli("audit", "scores.csv", "--model", "plackett-luce", "--temperature", "0.5", "--standardize",
                     "--k", "2", "--methods", "uniform,nlhf", "--json", "out.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    data = io.load_scores(tmp_path / "scores.csv", temperature=0.5, standardize=True)
    expected = ua.audit_many(data, ks=[1, 2], methods=["uniform", "nlhf"])
    assert [row["robust_level"] for row in rows] == expected.robust_level.tolist()
    assert [row["best_response_label"] for row in rows] == expected.best_response_label.tolist()


def test_cli_several_policies(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\np,b,x,1\np,b,y,0\np,c,x,0\n"
                                    "p,c,y,1\n")
    (tmp_path / "greedy.csv").write_text("prompt,response,probability\np,x,1\n")
    (tmp_path / "mixed.csv").write_text("prompt,response,probability\np,x,0.5\np,y,0.5\n")
    result = run_cli("audit", "t.csv", "--policy", "greedy.csv", "--policy", "mixed.csv", "--k", "2",
                     "--methods", "given,uniform", "--json", "out.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["methods"] == ["policy:greedy", "policy:mixed", "uniform"]
    data = io.load(tmp_path / "t.csv")
    greedy = [row["robust_level"] for row in report["rows"] if row["method"] == "policy:greedy"]
    assert greedy == [ua.robust_level(data["p"], [1.0, 0.0], k) for k in (1, 2)]
    (tmp_path / "both.csv").write_text("policy,prompt,response,probability\ng,p,x,1\nm,p,x,0.5\nm,p,y,0.5\n")
    result = run_cli("audit", "t.csv", "--policy", "both.csv", "--k", "1", "--methods", "policy:m,uniform",
                     "--json", "one.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "one.json").read_text())["methods"] == ["policy:m", "uniform"]


@pytest.mark.parametrize("args, message", [
    (["t.csv", "--temperature", "2"], "--temperature: needs --model plackett-luce"),
    (["t.csv", "--standardize"], "--standardize: needs --model plackett-luce"),
    (["--model", "plackett-luce"], "--model: plackett-luce needs an input table"),
    (["e.toi", "--model", "plackett-luce"], "model: 'plackett-luce' reads long tables of scores"),
    (["t.csv", "--methods", "policy:nope"], "--methods: unknown method 'policy:nope'"),
])
def test_cli_input_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\n")
    (tmp_path / "e.toi").write_text("# NUMBER ALTERNATIVES: 2\n1: 1,2\n")
    result = run_cli("audit", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
