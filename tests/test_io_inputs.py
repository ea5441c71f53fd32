"""Inputs users have: reward-model scores read as Plackett–Luce mixtures,
weak-order strings, tables in memory (pandas, pyarrow) and policy tables with
several named policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ualign as ua
from ualign import io

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")


def scores_frame(rng: np.random.Generator) -> Any:
    """Two prompts; raters in a shuffled row order, responses first seen out of order."""
    rows = []
    for prompt, (raters, responses) in {"p": (["r1", "r2", "r3"], ["c", "a", "b", "d"]),
                                        "q": (["r2", "r4"], ["x", "y"])}.items():
        for rater in raters:
            for response in responses:
                rows.append((prompt, response, rater, float(rng.normal() * 3)))
    order = [0] + list(1 + rng.permutation(len(rows) - 1))  # 'p', 'c' stay first
    frame = pd.DataFrame([rows[j] for j in order], columns=["prompt", "response", "rater", "score"])
    return frame


def as_matrix(frame: Any, prompt: Any, labels: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """The prompt's score matrix (raters in order of first appearance x labels)."""
    part = frame[frame.prompt == prompt]
    raters = list(dict.fromkeys(part.rater))
    matrix = np.array([[part[(part.rater == r) & (part.response == y)].score.iloc[0] for y in labels] for r in raters])
    return matrix, raters


# -- scores ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("standardize", [False, True])
def test_scores_are_plackett_luce_types(tmp_path: Path, standardize: bool) -> None:
    rng = np.random.default_rng(1)
    frame = scores_frame(rng)
    frame.to_csv(tmp_path / "s.csv", index=False, float_format="%.17g")
    frame.to_parquet(tmp_path / "s.parquet")
    loaded = [io.load_scores(source, temperature=0.7, standardize=standardize)
              for source in (tmp_path / "s.csv", tmp_path / "s.parquet", frame, pa.Table.from_pandas(frame))]
    first = loaded[0]
    assert list(first) == ["p", "q"]
    assert first.responses["p"] == list(dict.fromkeys(frame[frame.prompt == "p"].response))
    for prompt in first:
        scores, raters = as_matrix(frame, prompt, first.responses[prompt])
        if standardize:  # z-scores straight from the definition
            scores = (scores - scores.mean(axis=1, keepdims=True)) / scores.std(axis=1, keepdims=True)
        direct = ua.PlackettLuceMixture(scores / 0.7)
        model = first[prompt]
        assert isinstance(model, ua.PlackettLuceMixture) and model.n_types == len(raters)
        np.testing.assert_allclose(model.rewards, direct.rewards, rtol=0, atol=1e-12)
        pi = rng.dirichlet(np.ones(model.n_responses))
        np.testing.assert_allclose(model.utilities(pi, 3), direct.utilities(pi, 3), rtol=0, atol=1e-12)
        for other in loaded[1:]:  # every source reads the same bits
            assert other.responses[prompt] == first.responses[prompt]
            assert other[prompt].rewards.tobytes() == model.rewards.tobytes()


def test_scores_weights_labels_and_constant_raters(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("prompt,response,voter,score,weight\n"
                    "p,b,u,1.0,3\np,a,u,2.0,3\np,a,v,5,1\np,b,v,5,1\n")
    data = io.load_scores(path, standardize=True)
    assert data.responses["p"] == ["b", "a"]
    model = data["p"]
    np.testing.assert_allclose(model.weights, [0.75, 0.25], rtol=0, atol=1e-15)
    # u: z-scores (-1, 1); v scores both 5: no scale, so z = 0 (indifferent), as the raw 5, 5 give
    np.testing.assert_array_equal(model.rewards, [[-2.0, 0.0], [0.0, 0.0]])
    raw = io.load_scores(path)["p"]
    np.testing.assert_array_equal(raw.rewards[1], [0.0, 0.0])
    assert np.array_equal(raw.pairwise(), io.load_scores(path, standardize=False)["p"].pairwise())


def test_standardize_keeps_tiny_and_huge_scales() -> None:
    frame = pd.DataFrame({"prompt": ["p"] * 6, "response": ["a", "b", "c"] * 2, "rater": ["t"] * 3 + ["h"] * 3,
                          "score": [1e-320, 2e-320, 3e-320, 1e300, 2e300, 3e300]})
    rewards = io.load_scores(frame, standardize=True)["p"].rewards
    z = np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)
    np.testing.assert_allclose(rewards, np.stack([z, z]) - z.max(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("text, message", [
    ("prompt,response,rater,score\np,a,r,1\np,b,r,2\np,a,s,3\n",
     "prompt 'p': rater 's' has no score for response 'b' (every rater must score every response of the prompt; "
     "1 of 4 (rater, response) pairs are missing)"),
    ("prompt,response,rater,score\np,a,r,1\np,a,r,2\n", "line 3, column 'response': rater 'r' already rated"),
    ("prompt,response,rater,score,weight\np,a,r,1,1\np,b,r,2,2\n", "line 3, column 'weight': rater 'r' of prompt"),
    ("prompt,response,rater,score,weight\np,a,r,1,0\n", "prompt 'p': all voter weights are zero"),
    ("prompt,response,rater,voter,score\np,a,r,r,1\n", "needs exactly one of the columns 'rater' and 'voter'"),
    ("prompt,response,rater\np,a,r\n", "line 1: missing column 'score'"),
    ("prompt,response,rater,score\np,a,r,1e308\np,b,r,-1e308\n", "temperature: scores / temperature overflows"),
])
def test_scores_bad_tables(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        io.load_scores(path, temperature=0.5)
    assert message in str(info.value)


def test_scores_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("prompt,response,rater,score\np,a,r,1\n")
    with pytest.raises(ValueError, match="temperature: must be finite and > 0"):
        io.load_scores(path, temperature=0.0)
    with pytest.raises(TypeError, match="standardize: expected True or False"):
        io.load_scores(path, standardize=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source: expected a path, a pandas DataFrame or a pyarrow Table"):
        io.load_scores([("p", "a", "r", 1.0)])


def test_load_dispatches_on_model(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("prompt,response,voter,score\np,a,u,1\np,b,u,2\np,a,v,3\np,b,v,0\n")
    as_rankings = io.load(path)
    assert isinstance(as_rankings["p"], ua.RankingPopulation)
    np.testing.assert_array_equal(as_rankings["p"].ranks, [[1, 0], [0, 1]])
    as_pl = io.load([path], model="plackett-luce", temperature=2.0, standardize=False)
    assert as_pl["p"].rewards.tobytes() == io.load_scores(path, temperature=2.0)["p"].rewards.tobytes()
    with pytest.raises(ValueError, match="temperature: only for model='plackett-luce'"):
        io.load(path, temperature=2.0)
    with pytest.raises(ValueError, match="standardize: only for model='plackett-luce'"):
        io.load(path, standardize=True)
    with pytest.raises(ValueError, match="model: unknown 'bradley-terry'"):
        io.load(path, model="bradley-terry")
    (tmp_path / "e.toi").write_text("# NUMBER ALTERNATIVES: 2\n1: 1,2\n")
    with pytest.raises(ValueError, match="model: 'plackett-luce' reads long tables of scores"):
        io.load([path, tmp_path / "e.toi"], model="plackett-luce")


# -- weak-order strings ----------------------------------------------------------------------------------

def test_parse_weak_orders_levels_and_bottom_ties() -> None:
    orders = io.parse_weak_orders(["A>B=C>D", " C > A ", "D", "B=D"], weights=[1, 2, 3, 4])
    assert orders.labels == ["A", "B", "C", "D"]
    np.testing.assert_array_equal(orders.population.ranks, [[0, 1, 1, 2],
                                                            [1, 2, 0, 2],   # B, D unnamed: tied below A
                                                            [1, 1, 1, 0],
                                                            [1, 0, 1, 0]])
    np.testing.assert_allclose(orders.population.weights, [0.1, 0.2, 0.3, 0.4], rtol=0, atol=1e-15)
    fixed = io.parse_weak_orders(["b>a"], labels=["a", "b", "c"])
    assert fixed.labels == ["a", "b", "c"]
    np.testing.assert_array_equal(fixed.population.ranks, [[1, 0, 2]])
    numbered = io.parse_weak_orders(["2>1"], labels=[1, 2])  # labels matched by their text
    np.testing.assert_array_equal(numbered.population.ranks, [[1, 0]])


def test_weak_orders_equal_the_preflib_reading(tmp_path: Path) -> None:
    (tmp_path / "e.toi").write_text("# NUMBER ALTERNATIVES: 4\n# ALTERNATIVE NAME 1: A\n# ALTERNATIVE NAME 2: B\n"
                                    "# ALTERNATIVE NAME 3: C\n# ALTERNATIVE NAME 4: D\n3: 1,{2,3}\n2: 4\n")
    preflib = io.load(tmp_path / "e.toi")["e"]
    strings = io.parse_weak_orders(["A>B=C", "D"], labels=["A", "B", "C", "D"], weights=[3, 2]).population
    np.testing.assert_array_equal(strings.ranks, preflib.ranks)
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    for ties in ua.TIES:
        assert np.array_equal(strings.utilities(pi, 3, ties), preflib.utilities(pi, 3, ties))


@pytest.mark.parametrize("text, message", [
    ("A>>B", "strings[1]: position 3: expected a response name before '>'"),
    (">A", "strings[1]: position 1: expected a response name before '>'"),
    ("A=", "strings[1]: position 2: the ranking ends with '='"),
    ("A > B >  ", "strings[1]: position 7: the ranking ends with '>'"),
    ("A>B=A", "strings[1]: position 5: response 'A' appears twice"),
    ("  ", "strings[1]: position 1: empty ranking"),
])
def test_parse_weak_orders_malformed(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        io.parse_weak_orders(["A>B", text])
    assert str(info.value).startswith(message)


def test_parse_weak_orders_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"strings\[0\]: position 3: unknown response 'Z'"):
        io.parse_weak_orders(["A>Z"], labels=["A", "B"])
    with pytest.raises(TypeError, match="strings: expected a sequence of strings"):
        io.parse_weak_orders("A>B")
    with pytest.raises(TypeError, match=r"strings\[1\]: expected a string"):
        io.parse_weak_orders(["A>B", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="strings: needs at least one ranking"):
        io.parse_weak_orders([])
    with pytest.raises(ValueError, match="weights: expected shape"):
        io.parse_weak_orders(["A>B"], weights=[1, 2])


def test_weak_order_table(tmp_path: Path) -> None:
    path = tmp_path / "votes.csv"
    path.write_text("prompt,ranking,weight\np,A>B=C,2\nq,x>y,1\np,C>D,1\n")
    for source in (path, pd.read_csv(path), pa.Table.from_pandas(pd.read_csv(path))):
        data = io.load_weak_orders(source)
        assert list(data) == ["p", "q"]
        assert data.responses == {"p": ["A", "B", "C", "D"], "q": ["x", "y"]}
        np.testing.assert_array_equal(data["p"].ranks, [[0, 1, 1, 2], [2, 2, 0, 1]])
        np.testing.assert_allclose(data["p"].weights, [2 / 3, 1 / 3], rtol=0, atol=1e-15)
    assert list(io.load(path)) == ["p", "q"]  # load() recognises the ranking column
    single = tmp_path / "single.csv"
    single.write_text("ranking\nA>B\n")
    assert list(io.load_weak_orders(single)) == ["single"]
    assert list(io.load_weak_orders(pd.DataFrame({"ranking": ["A>B"]}))) == ["rankings"]


@pytest.mark.parametrize("text, where, message", [
    ("ranking\nA>B\nA>>B\n", "line 3, column 'ranking'", "position 3: expected a response name"),
    ("ranking\nA>B\nB>A=B\n", "line 3, column 'ranking'", "position 5: response 'B' appears twice"),
    ("ranking,weight\nA>B,-1\n", "line 2, column 'weight'", "must be >= 0"),
])
def test_weak_order_table_bad_rows(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "w.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        io.load_weak_orders(path)
    assert str(info.value).startswith(f"{path}: {where}: ") and message in str(info.value)


# -- tables in memory ------------------------------------------------------------------------------------

def test_long_tables_in_memory_equal_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"prompt": np.repeat(["p", "q"], 6), "voter": np.tile(np.repeat(["a", "b"], 3), 2),
                          "response": np.tile(["x", "y", "z"], 4), "rank": rng.integers(0, 3, 12)})
    policy = pd.DataFrame({"prompt": ["p", "p"], "response": ["x", "z"], "probability": [0.25, 0.75]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    policy.to_csv(tmp_path / "pol.csv", index=False)
    expected = io.load(tmp_path / "t.csv", policy=tmp_path / "pol.csv")
    for table, pol in ((frame, policy), (pa.Table.from_pandas(frame), pa.Table.from_pandas(policy))):
        for data in (io.load(table, policy=pol), io.load_table(table, policy=pol)):
            assert list(data) == list(expected) and data.responses == expected.responses
            for prompt in data:
                assert data[prompt].ranks.tobytes() == expected[prompt].ranks.tobytes()
            assert data.policies.keys() == expected.policies.keys()
            assert np.array_equal(data.policies["p"], expected.policies["p"])


def test_tables_in_memory_name_the_argument_and_row() -> None:
    frame = pd.DataFrame({"prompt": ["p", "p"], "voter": ["a", "a"], "response": ["x", "y"], "score": [1.0, None]})
    with pytest.raises(ValueError, match=r"^source: row 1, column 'score': missing value"):
        io.load_table(frame)
    with pytest.raises(ValueError, match=r"^paths\[0\]: row 1, column 'score': missing value"):
        io.load(frame)
    with pytest.raises(ValueError, match=r"^source: row 1, column 'score': missing value"):
        io.load_table(pa.Table.from_pandas(frame))
    with pytest.raises(ValueError, match=r"^source: header: missing column 'voter'"):
        io.load_table(frame.drop(columns="voter"))
    with pytest.raises(ValueError, match=r"^source: header: column 'voter' appears twice"):
        io.load_table(pd.concat([frame, frame[["voter"]]], axis=1))


# -- policy tables with several policies -----------------------------------------------------------------

def test_policy_table_with_a_policy_column(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\nq,a,u,0\nq,a,v,1\n")
    (tmp_path / "pol.csv").write_text("policy,prompt,response,probability\n"
                                      "sft,p,x,1\nsft,q,v,1\ndpo,p,y,0.5\ndpo,p,x,0.5\n")
    data = io.load(tmp_path / "t.csv")
    sets = io.load_policy_table(tmp_path / "pol.csv", data)
    assert list(sets) == ["sft", "dpo"]
    np.testing.assert_array_equal(sets["sft"]["q"], [0.0, 1.0])
    assert list(sets["dpo"]) == ["p"]
    loaded = io.load(tmp_path / "t.csv", policy=tmp_path / "pol.csv")
    assert loaded.policies == {} and list(loaded.policy_sets) == ["sft", "dpo"]
    assert loaded.audit_policies() is loaded.policy_sets


def test_several_policy_tables_are_named_by_file(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\n")
    (tmp_path / "greedy.csv").write_text("prompt,response,probability\np,x,1\n")
    (tmp_path / "mixed.csv").write_text("prompt,response,probability\np,x,0.5\np,y,0.5\n")
    data = io.load(tmp_path / "t.csv", policy=[tmp_path / "greedy.csv", tmp_path / "mixed.csv"])
    assert list(data.policy_sets) == ["greedy", "mixed"]
    np.testing.assert_array_equal(data.policy_sets["mixed"]["p"], [0.5, 0.5])
    with pytest.raises(ValueError, match="policy: policy 'greedy' is given twice"):
        io.load(tmp_path / "t.csv", policy=[tmp_path / "greedy.csv", tmp_path / "greedy.csv"])


@pytest.mark.parametrize("rows, where, message", [
    ("a,p,x,0.5\na,p,x,0.5\n", "line 3, column 'response'", "appears twice in policy 'a' (line 2)"),
    ("a,p,x,0.5\nb,p,x,1\n", None, "policy 'a' of prompt 'p': must sum to 1"),
    (",p,x,1\n", "line 2, column 'policy'", "missing value"),
])
def test_policy_column_bad_rows(tmp_path: Path, rows: str, where: str | None, message: str) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\n")
    path = tmp_path / "pol.csv"
    path.write_text("policy,prompt,response,probability\n" + rows)
    with pytest.raises(ValueError) as info:
        io.load(tmp_path / "t.csv", policy=path)
    assert str(info.value).startswith(f"{path}: " + (f"{where}: " if where else "")) and message in str(info.value)
