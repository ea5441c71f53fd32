"""Loaders on hostile files (found by fuzzing): every failure is a ValueError (or a
TypeError for a value of the wrong type) whose message names the file and, where
there is one, the line (or row) and column; declared sizes are checked against
the data before anything is allocated, so a short file fails fast."""

from __future__ import annotations

import io as bytes_io
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ualign as ua
from ualign import io
from ualign._validate import parse_decimal


def load_error(path: Path, kind: type = ValueError) -> str:
    """The message of the error io.load raises for `path` (which must be of type `kind`)."""
    with pytest.raises(Exception) as info:
        io.load(path)
    assert type(info.value) is kind, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


# -- PrefLib integers: ASCII digits only, at most 2**53 ------------------------------------------------

@pytest.mark.parametrize("body, where, message", [
    ("9" * 400 + ": 1,2\n", "line 2, column 1", "count must be a positive integer"),  # was OverflowError
    ("99999999999999999999999: 1,2\n", "line 2, column 1", "count must be a positive integer"),
    (f"{2**53 + 1}: 1,2\n", "line 2, column 1", "up to 2**53"),
    ("\u00b2: 1,2\n", "line 2, column 1", "got '\u00b2'"),  # superscript two: isdigit() but not int()
    ("\u0663: 1,2\n", "line 2, column 1", "count must be a positive integer"),  # Arabic-Indic three: int() reads 3
    ("1_0: 1,2\n", "line 2, column 1", "count must be a positive integer"),
    ("1: 1,\u00b2\n", "line 2, column 6", "expected an alternative number, got '\u00b2'"),
    ("1: 1,\u0662\n", "line 2, column 6", "expected an alternative number"),
    ("1: 1," + "9" * 5000 + "\n", "line 2, column 6", "is out of range"),  # int() refuses > 4300 digits
])
def test_preflib_integers_are_ascii_and_bounded(tmp_path: Path, body: str, where: str, message: str) -> None:
    path = tmp_path / "bad.toi"
    path.write_text("# NUMBER ALTERNATIVES: 2\n" + body, encoding="utf-8")
    text = load_error(path)
    assert text.startswith(f"{path}: {where}: ") and message in text
    assert len(text) < 300  # a huge number is shown cut short


@pytest.mark.parametrize("header, where, message", [
    ("# NUMBER ALTERNATIVES: \u00b2\n", "line 1", "NUMBER ALTERNATIVES must be a positive integer"),
    ("# NUMBER ALTERNATIVES: 0\n", "line 1", "NUMBER ALTERNATIVES must be a positive integer"),
    ("# NUMBER ALTERNATIVES: 2\n# NUMBER VOTERS: " + "9" * 30 + "\n", "line 2", "NUMBER VOTERS must be an integer"),
    ("# NUMBER ALTERNATIVES: 2\n# NUMBER UNIQUE ORDERS: \u00b9\n", "line 2", "NUMBER UNIQUE ORDERS must be"),
    ("# NUMBER ALTERNATIVES: 2\n# ALTERNATIVE NAME \u00b2: x\n", "line 2, column 1", "bad alternative number"),
    ("# NUMBER ALTERNATIVES: 2\n# ALTERNATIVE NAME 3: x\n", "line 2", "ALTERNATIVE NAME 3 is out of range 1..2"),
])
def test_preflib_bad_header_integers(tmp_path: Path, header: str, where: str, message: str) -> None:
    path = tmp_path / "bad.toi"
    path.write_text(header + "1: 1,2\n", encoding="utf-8")
    text = load_error(path)
    assert text.startswith(f"{path}: {where}: ") and message in text


# -- PrefLib declared sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize("alternatives", [10**8, 10**13])  # were 97 s and a MemoryError
@pytest.mark.parametrize("suffix", [".toi", ".soi"])
def test_huge_declared_alternatives_fail_fast(tmp_path: Path, alternatives: int, suffix: str) -> None:
    path = tmp_path / f"big{suffix}"
    path.write_text(f"# NUMBER ALTERNATIVES: {alternatives}\n1: 1\n")
    start = time.perf_counter()
    text = load_error(path)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    assert text.startswith(f"{path}: line 1: NUMBER ALTERNATIVES is {alternatives} but alternative 2 is neither "
                           "ranked by an order nor named")


@pytest.mark.parametrize("suffix", [".soc", ".toc"])
def test_huge_declared_alternatives_in_complete_orders_fail_fast(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"big{suffix}"
    path.write_text("# NUMBER ALTERNATIVES: 100000000\n1: 1\n")
    start = time.perf_counter()
    text = load_error(path)
    assert time.perf_counter() - start < 5.0
    assert text.startswith(f"{path}: line 2: alternative 2 is missing from a complete")


def test_undeclared_gap_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gap.toi"
    path.write_text("# NUMBER ALTERNATIVES: 5\n# ALTERNATIVE NAME 1: a\n# ALTERNATIVE NAME 2: b\n2: 4,1\n1: 5\n")
    assert load_error(path).startswith(f"{path}: line 1: NUMBER ALTERNATIVES is 5 but alternative 3 is neither")


def test_named_but_unranked_alternative_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "named.toi"
    path.write_text("# NUMBER ALTERNATIVES: 3\n# ALTERNATIVE NAME 3: cherry\n2: 2,1\n1: 1\n")
    dataset = io.load(path)
    assert dataset.responses["named"] == ["1", "2", "cherry"]
    np.testing.assert_array_equal(dataset["named"].ranks, [[1, 0, 2], [0, 1, 1]])
    np.testing.assert_allclose(dataset["named"].weights, [2 / 3, 1 / 3], rtol=0, atol=1e-15)


def test_voter_total_is_exact_for_large_counts(tmp_path: Path) -> None:
    big = 2**53
    path = tmp_path / "big.toi"
    path.write_text(f"# NUMBER ALTERNATIVES: 2\n# NUMBER VOTERS: {big}\n{big}: 1,2\n1: 2,1\n")
    # a float64 sum rounds 2**53 + 1 to 2**53 and would accept the wrong header
    assert load_error(path).startswith(f"{path}: line 2: NUMBER VOTERS is {big} but the counts add up to {big + 1}")


# -- text encoding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data, where", [
    ("bad.toi", b"# NUMBER ALTERNATIVES: 2\n1: 1,2\xff\n", "line 2, column 7"),
    ("bad.toi", "# TITLE: caf\u00e9\n".encode() + b"\xc3\x28: 1\n", "line 2, column 1"),
    ("bad.csv", b"prompt,voter,response,score\np,a,\xe9t\xe9,1\n", "line 2, column 5"),
    ("pol.csv", b"prompt,response,probability\n\x80,x,1\n", "line 2, column 1"),
])
def test_non_utf8_text_names_line_and_column(tmp_path: Path, name: str, data: bytes, where: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    if name == "pol.csv":
        (tmp_path / "t.csv").write_text("prompt,voter,response,rank\np,a,x,0\n")
        with pytest.raises(ValueError) as info:
            io.load(tmp_path / "t.csv", policy=path)
        text = str(info.value)
    else:
        text = load_error(path)
    assert text.startswith(f"{path}: {where}: not UTF-8 text (byte 0x")


# -- long tables ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["\u0661", "1_0", "\u00b2"])  # float() reads the first two
def test_csv_numbers_are_ascii(tmp_path: Path, value: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"prompt,voter,response,score\np,a,x,1\np,a,y,{value}\n", encoding="utf-8")
    assert load_error(path).startswith(f"{path}: line 3, column 'score': expected a number")


def test_csv_reader_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,voter,response,score\np,a,x,1\np,a,y," + "9" * 200_000 + "\n")
    assert load_error(path).startswith(f"{path}: line 3: field larger than field limit")


def test_broken_parquet_names_the_file(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    assert "not a readable Parquet file" in load_error(path)


def test_parquet_unhashable_label_is_a_type_error(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"prompt": ["p", "p"], "voter": [["a"], ["b"]], "response": ["x", "y"],
                  "rank": [0, 1]}).to_parquet(path)
    text = load_error(path, TypeError)
    assert text.startswith(f"{path}: row 0, column 'voter': expected a label")


# -- npz -----------------------------------------------------------------------------------------------

def test_npz_object_array(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, ranks=np.array([[1, "a"]], dtype=object))
    assert load_error(path).startswith(f"{path}: array 'ranks' cannot be read")


@pytest.mark.parametrize("data, message", [
    (b"garbage", "not an .npz archive"),  # np.load would try to unpickle it
    (b"PK\x03\x04garbage", "not a readable .npz archive (BadZipFile"),
    (b"", "not an .npz archive"),
])
def test_npz_not_an_archive(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    assert message in load_error(path)


def test_npz_single_array_file(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((2, 3)))
    assert "not an .npz archive" in load_error(path)


def _valid_npz(compressed: bool) -> bytes:
    buffer = bytes_io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buffer, ranks=np.arange(60).reshape(6, 10) % 4, weights=np.arange(1.0, 7.0))
    return buffer.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_damaged_archives(tmp_path: Path, compressed: bool) -> None:
    """Truncated or bit-flipped archives (BadZipFile, zlib.error, EOFError, ... inside)
    all give a ValueError or TypeError naming the file, or load a valid model."""
    good = _valid_npz(compressed)
    rng = np.random.default_rng(7)
    path = tmp_path / "damaged.npz"
    failures = 0
    for trial in range(300):
        data = bytearray(good)
        if trial % 3 == 0:
            data = data[:int(rng.integers(0, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        try:
            dataset = io.load(path)
        except (ValueError, TypeError) as error:
            assert str(error).startswith(f"{path}: "), f"trial {trial}: {error}"
            failures += 1
        else:
            assert isinstance(dataset["damaged"], ua.RankingPopulation)
    assert failures > 250  # nearly every damage is detected (a flip may hit an unused byte)


def test_npz_huge_declared_shape(tmp_path: Path) -> None:
    """An .npy header may declare any shape; the archive holds a few bytes."""
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 10), }"
    header += " " * (118 - len(header)) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\x00" * 80
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ranks.npy", member)
    start = time.perf_counter()
    assert "array 'ranks' cannot be read" in load_error(path)
    assert time.perf_counter() - start < 5.0


# -- the integer parser --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("0", 0), ("7", 7), ("007", 7), ("100", 100), ("101", None), ("", None), ("-1", None), ("+1", None),
    (" 1", None), ("1 ", None), ("1_0", None), ("\u00b2", None), ("\u0663", None), ("1e2", None),
    ("0" * 500 + "99", 99), ("9" * 5000, None),
])
def test_parse_decimal(text: str, value: object) -> None:
    assert parse_decimal(text, 100) == value
