"""Loaders: PrefLib, .npz and long tables — round trips, the meaning of partial
orders and ties, and bad files reported with their line (or row) and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ualign as ua
from ualign import io

DATA = Path(__file__).resolve().parent / "data"


# -- PrefLib -------------------------------------------------------------------------------------------

def test_preflib_sample_partial_orders_and_ties() -> None:
    dataset = io.load(DATA / "sample.toi")
    assert list(dataset) == ["sample"]
    model = dataset["sample"]
    assert dataset.responses["sample"] == ["apple", "banana", "cherry", "date", "elderberry"]
    expected = np.array([[0, 1, 2, 3, 4],      # 1,2,3,4,5
                         [0, 1, 1, 2, 3],      # 1,{2,3},4 ; 5 unranked -> bottom
                         [4, 3, 2, 1, 0],      # 5,4,3,2,1
                         [2, 2, 0, 0, 1],      # {3,4},5 ; 1 and 2 unranked, tied at the bottom
                         [1, 0, 1, 1, 1],      # 2 ; everything else tied below
                         [1, 3, 3, 0, 2]])     # 4,1,5,{2,3}
    np.testing.assert_array_equal(model.ranks, expected)
    np.testing.assert_allclose(model.weights, np.array([6, 4, 3, 3, 2, 2]) / 20, rtol=0, atol=1e-15)
    assert dataset.policies == {}


def test_preflib_equals_model_from_ranks() -> None:
    ranks, counts, _ = io.parse_preflib((DATA / "sample.toi").read_text(), "sample.toi")
    model = io.load_preflib(DATA / "sample.toi")["sample"]
    direct = ua.RankingPopulation(ranks, counts)
    pi = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    assert np.array_equal(model.utilities(pi, 3), direct.utilities(pi, 3))


@pytest.mark.parametrize("suffix", [".soc", ".toc", ".toi", ".soi"])
def test_preflib_round_trip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(3)
    if suffix in (".soc", ".soi"):
        model = ua.RankingPopulation.from_orders(np.argsort(rng.random((7, 6)), axis=1), weights=rng.integers(1, 5, 7))
    else:
        model = ua.RankingPopulation(rng.integers(0, 3, size=(7, 6)), weights=rng.integers(1, 5, 7))
    names = [f"r{j}" for j in range(6)]
    path = tmp_path / f"pop{suffix}"
    io.write_preflib(path, model, names=names)
    back = io.load(path)
    assert back.responses["pop"] == names
    np.testing.assert_array_equal(back["pop"].ranks, model.ranks)
    np.testing.assert_allclose(back["pop"].weights, model.weights, rtol=1e-15)


def test_preflib_writer_refuses_ties_in_strict_formats(tmp_path: Path) -> None:
    model = ua.RankingPopulation([[0, 0, 1]])
    with pytest.raises(ValueError, match="ties"):
        io.write_preflib(tmp_path / "x.soc", model)


_HEADER = """# DATA TYPE: {kind}
# NUMBER ALTERNATIVES: 4
# NUMBER VOTERS: {voters}
# NUMBER UNIQUE ORDERS: {orders}
"""


@pytest.mark.parametrize("kind, body, where, message", [
    ("toi", "2: 1,{2,3,4\n", "line 5, column 6", "never closed"),
    ("toi", "2: 1,5\n", "line 5, column 6", "out of range"),
    ("toi", "x: 1,2\n", "line 5, column 1", "count must be a positive integer"),
    ("toi", "0: 1,2\n", "line 5, column 1", "count must be a positive integer"),
    ("toi", "2: 1,,2\n", "line 5, column 6", "expected an alternative number"),
    ("toi", "2: 1,2,1\n", "line 5, column 8", "appears twice"),
    ("toi", "2 1,2\n", "line 5, column 1", "no ':'"),
    ("toi", "2: {1,2}},3\n", "line 5, column 9", "'}' without '{'"),
    ("toi", "2: {1,{2}}\n", "line 5, column 7", "nested"),
    ("toi", "2: 1,2, \n", "line 5, column 7", "ends with ','"),
    ("toi", "2: 1 2\n", "line 5, column 6", "unexpected"),
    ("soc", "2: 1,{2,3},4\n", "line 5, column 7", "ties are not allowed"),
    ("soc", "2: 1,2,3\n", "line 5", "alternative 4 is missing"),
    ("toc", "2: 1,{2,3}\n", "line 5", "alternative 4 is missing"),
    ("soi", "2: {1,2}\n", "line 5, column 5", "ties are not allowed"),
])
def test_preflib_bad_rows(tmp_path: Path, kind: str, body: str, where: str, message: str) -> None:
    path = tmp_path / f"bad.{kind}"
    path.write_text(_HEADER.format(kind=kind, voters=2, orders=1) + body)
    with pytest.raises(ValueError) as info:
        io.load(path)
    assert f"{path}: {where}: " in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("text, where, message", [
    (_HEADER.format(kind="toi", voters=3, orders=1) + "2: 1,2\n", "line 3", "NUMBER VOTERS is 3"),
    (_HEADER.format(kind="toi", voters=2, orders=2) + "2: 1,2\n", "line 4", "NUMBER UNIQUE ORDERS is 2"),
    (_HEADER.format(kind="soc", voters=2, orders=1) + "2: 1,2,3,4\n", "line 1", "does not match the file suffix"),
    ("# NUMBER ALTERNATIVES: four\n1: 1\n", "line 1", "positive integer"),
    ("# NUMBER ALTERNATIVES: 2\n1: 1,2\n# NUMBER VOTERS: 1\n", "line 3, column 1", "header line after"),
])
def test_preflib_bad_headers(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "bad.toi"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        io.load(path)
    assert f"{path}: {where}: " in str(info.value) and message in str(info.value)


def test_preflib_needs_alternatives_and_orders(tmp_path: Path) -> None:
    path = tmp_path / "x.toi"
    path.write_text("1: 1,2\n")
    with pytest.raises(ValueError, match="NUMBER ALTERNATIVES"):
        io.load(path)
    path.write_text("# NUMBER ALTERNATIVES: 2\n")
    with pytest.raises(ValueError, match="no orders"):
        io.load(path)


# -- npz -----------------------------------------------------------------------------------------------

def test_npz_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    model = ua.RankingPopulation(rng.integers(0, 4, size=(9, 5)), weights=rng.random(9))
    policy = rng.dirichlet(np.ones(5))
    io.save_npz(tmp_path / "p.npz", model, policy)
    back = io.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back["p"].ranks, model.ranks)
    np.testing.assert_allclose(back["p"].weights, model.weights, rtol=1e-15)
    assert np.array_equal(back.policies["p"], policy)


@pytest.mark.parametrize("contents, message", [
    ({"weights": np.ones(3)}, "exactly one of"),
    ({"ranks": np.zeros((2, 3)), "scores": np.zeros((2, 3))}, "exactly one of"),
    ({"ranks": np.zeros((2, 3)), "weight": np.ones(2)}, "unknown array 'weight'"),
    ({"orders": np.array([[0, 0, 1]])}, "orders: row 0"),
    ({"ranks": np.array([[0, 1]]), "policy": np.array([0.5, 0.6])}, "policy: must sum to 1"),
    ({"scores": np.array([[0.0, np.nan]])}, "scores"),
    ({"ranks": np.zeros((2, 3)), "weights": np.ones(3)}, "weights: expected shape (2,)"),
])
def test_npz_bad_files(tmp_path: Path, contents: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **contents)
    with pytest.raises((ValueError, TypeError)) as info:
        io.load(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


# -- long tables ---------------------------------------------------------------------------------------

def _dataset(rng: np.random.Generator) -> io.Dataset:
    models = {f"q{j}": ua.RankingPopulation(rng.integers(0, 3, size=(int(rng.integers(1, 6)), m)))
              for j, m in enumerate([3, 5, 1, 4])}
    models["w"] = ua.RankingPopulation(rng.integers(0, 4, size=(6, 4)), weights=rng.random(6) + 0.1)
    policies = {key: rng.dirichlet(np.ones(model.n_responses)) for key, model in models.items() if key != "q1"}
    return io.Dataset(models, policies)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    dataset = _dataset(np.random.default_rng(5))
    io.write_table(tmp_path / f"t{suffix}", dataset, policy_path=tmp_path / f"p{suffix}")
    back = io.load(tmp_path / f"t{suffix}", policy=tmp_path / f"p{suffix}")
    keys = list(back)
    assert [str(key) for key in keys] == list(dataset)
    for key, original in zip(keys, dataset):
        np.testing.assert_array_equal(back[key].ranks, dataset[original].ranks)
        np.testing.assert_allclose(back[key].weights, dataset[original].weights, rtol=1e-15)
        if original in dataset.policies:
            assert np.array_equal(back.policies[key], dataset.policies[original])
        else:
            assert key not in back.policies


def test_table_scores_partial_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,voter,response,score,extra\n"
                    "p,ann,x,0.5,.\np,ann,y,0.9,.\np,bob,x,0.1,.\np,bob,z,0.2,.\n"
                    "q,ann,u,3,.\nq,cy,v,3,.\n")
    dataset = io.load_table(path)
    assert list(dataset) == ["p", "q"]
    assert dataset.responses == {"p": ["x", "y", "z"], "q": ["u", "v"]}
    # ann: y > x, z unrated (bottom); bob: z > x, y unrated (bottom)
    np.testing.assert_array_equal(dataset["p"].ranks, [[1, 0, 2], [1, 2, 0]])
    np.testing.assert_array_equal(dataset["q"].ranks, [[0, 1], [1, 0]])


@pytest.mark.parametrize("rows, where, message", [
    ("p,a,y,nan\n", "line 3, column 'score'", "finite"),
    ("p,a,y,\n", "line 3, column 'score'", "missing value"),
    ("p,a,y,high\n", "line 3, column 'score'", "expected a number"),
    (",a,y,1\n", "line 3, column 'prompt'", "missing value"),
    ("p,,y,1\n", "line 3, column 'voter'", "missing value"),
    ("p,a,x,2\n", "line 3, column 'response'", "already rated response 'x'"),
    ("p,a,y\n", "line 3", "expected 4 fields"),
])
def test_table_bad_rows(tmp_path: Path, rows: str, where: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,voter,response,score\np,a,x,1\n" + rows)
    with pytest.raises(ValueError) as info:
        io.load(path)
    assert f"{path}: {where}: " in str(info.value) and message in str(info.value)


def test_table_bad_headers_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,voter,score\np,a,1\n")
    with pytest.raises(ValueError, match="line 1: missing column 'response'"):
        io.load(path)
    path.write_text("prompt,voter,response,score,rank\np,a,x,1,1\n")
    with pytest.raises(ValueError, match="exactly one of the columns"):
        io.load(path)
    path.write_text("prompt,voter,response,rank,weight\np,a,x,1,2\np,a,y,2,3\n")
    with pytest.raises(ValueError, match=r"line 3, column 'weight': voter 'a' of prompt 'p' has weight 2.0 at line 2"):
        io.load(path)
    path.write_text("prompt,voter,response,rank,weight\np,a,x,1,-1\n")
    with pytest.raises(ValueError, match=r"line 2, column 'weight': must be >= 0"):
        io.load(path)
    path.write_text("")
    with pytest.raises(ValueError, match="line 1: empty file"):
        io.load(path)


@pytest.mark.parametrize("rows, where, message", [
    ("p,z,1\n", "line 2, column 'response'", "has no response 'z'"),
    ("r,x,1\n", "line 2, column 'prompt'", "unknown prompt 'r'"),
    ("p,x,-0.5\n", "line 2, column 'probability'", "must be >= 0"),
    ("p,x,0.5\np,x,0.5\n", "line 3, column 'response'", "appears twice (line 2)"),
])
def test_policy_table_bad_rows(tmp_path: Path, rows: str, where: str, message: str) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\n")
    path = tmp_path / "pol.csv"
    path.write_text("prompt,response,probability\n" + rows)
    with pytest.raises(ValueError) as info:
        io.load(tmp_path / "t.csv", policy=path)
    assert f"{path}: {where}: " in str(info.value) and message in str(info.value)


def test_policy_table_must_sum_to_one(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\np,a,y,1\n")
    (tmp_path / "pol.csv").write_text("prompt,response,probability\np,x,0.7\n")
    with pytest.raises(ValueError, match="policy of prompt 'p': must sum to 1"):
        io.load(tmp_path / "t.csv", policy=tmp_path / "pol.csv")


def test_parquet_bad_row_is_named(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"prompt": ["p", "p", "p"], "voter": ["a", "a", "b"], "response": ["x", "y", "x"],
                  "rank": [0.0, float("inf"), 1.0]}).to_parquet(path)
    with pytest.raises(ValueError, match=r"t.parquet: row 1, column 'rank': expected a finite number"):
        io.load(path)


def test_load_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown file type"):
        io.load(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="no input files"):
        io.load([])
    with pytest.raises(ValueError, match="more than one input"):
        io.load([DATA / "sample.toi", DATA / "sample.toi"])
    with pytest.raises(ValueError, match="policy table goes with long tables"):
        io.load(DATA / "sample.toi", policy=DATA / "sample.toi")


def test_npz_rewards_give_a_plackett_luce_mixture(tmp_path: Path) -> None:
    rewards = np.array([[0.0, 1.0, -2.0], [3.0, 0.5, 0.0]])
    np.savez(tmp_path / "pl.npz", rewards=rewards, weights=[1.0, 3.0], policy=[0.2, 0.3, 0.5])
    dataset = io.load(tmp_path / "pl.npz")
    model = dataset["pl"]
    assert isinstance(model, ua.PlackettLuceMixture)
    direct = ua.PlackettLuceMixture(rewards, [1.0, 3.0])
    assert np.array_equal(model.utilities(dataset.policies["pl"], 2), direct.utilities([0.2, 0.3, 0.5], 2))
