"""Loaders (and writers) of preference data: PrefLib files, ``.npz`` arrays and
long tables (CSV or Parquet).

Every loader returns a :class:`Dataset`: a mapping of prompt names to models,
with the policies to audit (if the data has any) and the labels of each prompt's
responses. Bad data raises ``ValueError`` (``TypeError`` for a value of the
wrong type) naming the file and, where there is one, the line (or row) and the
column; a file that cannot be opened raises the usual ``OSError``.

* PrefLib ``.soc``/``.soi``/``.toc``/``.toi`` — one prompt named after the file
  (see :func:`load` for several files of one name).
  Rows ``count: a,b,{c,d},e`` (alternatives numbered from 1, best first, ties in
  braces); alternatives a row leaves out are tied below all it ranks. Each
  distinct row is one voter weighted by its count. Integers are written with the
  digits 0-9 and are at most 2**53; each of the ``NUMBER ALTERNATIVES``
  alternatives must be ranked by some order or named by an ``ALTERNATIVE NAME``
  line (so a header cannot make the loader allocate more than the data holds).
* ``.npz`` — one prompt named after the file: exactly one of ``ranks``,
  ``orders``, ``scores`` (populations of rankings) or ``rewards`` (a
  Plackett–Luce mixture), optionally ``weights`` and ``policy``.
* ``.csv`` / ``.parquet`` — long tables with the columns ``prompt``, ``voter``,
  ``response`` and one of ``score`` (higher is better) or ``rank`` (lower is
  better), optionally ``weight`` (per voter); a (voter, response) pair that is
  absent leaves that response unranked by that voter (tied at the bottom).
  Responses are numbered in order of first appearance within their prompt. An
  optional policy table has the columns ``prompt``, ``response``,
  ``probability`` (absent responses get 0). Parquet needs pandas and pyarrow
  (``pip install 'ualign[parquet]'``).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from io import StringIO
from pathlib import Path
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_distribution, parse_decimal
from .model import PreferenceModel
from .plackett_luce import PlackettLuceMixture
from .ranking import RankingPopulation

PathLike = Union[str, "os.PathLike[str]"]

#: File suffixes of PrefLib's ordinal formats.
PREFLIB_SUFFIXES = (".soc", ".soi", ".toc", ".toi")
#: File suffixes of long tables.
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class Dataset(Mapping):  # type: ignore[type-arg]
    """Prompts of a data set: ``dataset[prompt]`` is that prompt's model.

    ``policies[prompt]`` is the policy to audit, where the data has one;
    ``responses[prompt][y]`` is the label of response ``y``;
    ``voters[prompt]`` is the number of voters the data stands for where its
    voter weights are counts (whole numbers): a PrefLib file's counts added up,
    not its number of distinct orders (the model's ``n_voters``).
    """

    def __init__(self, models: dict[Any, PreferenceModel], policies: dict[Any, NDArray[np.float64]] | None = None,
                 responses: dict[Any, list[Any]] | None = None, voters: dict[Any, int] | None = None) -> None:
        self.models = dict(models)
        self.policies = dict(policies or {})
        self.responses = dict(responses or {})
        self.voters = dict(voters or {})

    def __getitem__(self, prompt: Any) -> PreferenceModel:
        model: PreferenceModel = self.models[prompt]
        return model

    def __iter__(self) -> Iterator[Any]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def policy_list(self) -> list[NDArray[np.float64] | None]:
        """The policies in prompt order (None where a prompt has none)."""
        return [self.policies.get(prompt) for prompt in self.models]

    def __repr__(self) -> str:
        return f"Dataset(<{len(self)} prompts>, <{len(self.policies)} policies>)"


def merge(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset from several; prompt names must be distinct."""
    models: dict[Any, PreferenceModel] = {}
    policies: dict[Any, NDArray[np.float64]] = {}
    responses: dict[Any, list[Any]] = {}
    voters: dict[Any, int] = {}
    for dataset in datasets:
        for prompt in dataset:
            if prompt in models:
                raise ValueError(f"prompt {prompt!r} appears in more than one input")
            models[prompt] = dataset[prompt]
        policies.update(dataset.policies)
        responses.update(dataset.responses)
        voters.update(dataset.voters)
    return Dataset(models, policies, responses, voters)


def _voter_count(prompt: Any, weights: ArrayLike | None, n: int) -> dict[Any, int]:
    """``{prompt: voters}`` for a population of ``n`` rows: ``n`` without weights,
    the weights' sum where they are counts (whole numbers), else nothing."""
    if weights is None:
        return {prompt: n}
    array = np.asarray(weights, dtype=np.float64)
    total = float(np.sum(array))
    return {prompt: int(total)} if bool(np.all(np.floor(array) == array)) and total <= _MAX_INTEGER else {}


def load(paths: PathLike | Sequence[PathLike], policy: PathLike | None = None) -> Dataset:
    """Load one or several files (by suffix) into one :class:`Dataset`;
    ``policy`` is a policy table for the prompts of long tables.

    A PrefLib or ``.npz`` file is one prompt named after the file's stem; where
    several of them share a stem (say a ``.soi`` and a ``.toc`` of one election)
    each is named by its file name with the extension instead, and where even
    those coincide (files of one name in different folders), by its path as given.
    Long tables name their prompts in their ``prompt`` column."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("paths: no input files")
    datasets = []
    tables = [p for p in paths if Path(p).suffix.lower() in TABLE_SUFFIXES]
    names = _file_prompt_names([p for p in paths if Path(p).suffix.lower() in PREFLIB_SUFFIXES + (".npz",)])
    for path in paths:
        suffix = Path(path).suffix.lower()
        if suffix in PREFLIB_SUFFIXES:
            datasets.append(load_preflib(path, names[path]))
        elif suffix == ".npz":
            datasets.append(load_npz(path, names[path]))
        elif suffix in TABLE_SUFFIXES:
            datasets.append(load_table(path))
        else:
            raise ValueError(f"{path}: unknown file type {suffix!r}; expected one of "
                             f"{PREFLIB_SUFFIXES + ('.npz',) + TABLE_SUFFIXES}")
    dataset = merge(datasets)
    if policy is not None:
        if not tables:
            raise ValueError(f"{policy}: a policy table goes with long tables (CSV or Parquet)")
        dataset.policies.update(load_policy_table(policy, dataset))
    return dataset


def _file_prompt_names(paths: Sequence[PathLike]) -> dict[PathLike, str]:
    """The prompt name of each file named after its file (see :func:`load`)."""
    stems = Counter(Path(path).stem for path in paths)
    files = Counter(Path(path).name for path in paths)
    return {path: Path(path).stem if stems[Path(path).stem] == 1 else
            Path(path).name if files[Path(path).name] == 1 else os.fspath(path) for path in paths}


# -- PrefLib ------------------------------------------------------------------------------------------

def _error(path: PathLike, line: int, column: int | None, message: str) -> ValueError:
    where = f"line {line}" + (f", column {column}" if column is not None else "")
    return ValueError(f"{path}: {where}: {message}")


_HEADER = re.compile(r"#\s*([^:]+?)\s*:\s*(.*?)\s*$")


def load_preflib(path: PathLike, prompt: Any = None) -> Dataset:
    """A PrefLib ordinal file (``.soc``, ``.soi``, ``.toc``, ``.toi``) as one prompt
    (named ``prompt``, default the file's stem)."""
    ranks, counts, names = parse_preflib(_read_text(path), path)
    name = Path(path).stem if prompt is None else prompt
    model = RankingPopulation(ranks, weights=counts)
    return Dataset({name: model}, responses={name: names}, voters={name: int(counts.sum())})


def _read_text(path: PathLike) -> str:
    """The file as UTF-8 text; a bad byte is reported with its line and column."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[line_start:error.start].decode("utf-8")) + 1  # the prefix decoded fine
        raise ValueError(f"{path}: line {line}, column {column}: not UTF-8 text "
                         f"(byte 0x{data[error.start]:02x})") from None


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short if long."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _first_missing(items: Iterable[int]) -> int:
    """The smallest positive integer not among ``items`` (without a range over the declared size)."""
    expected = 1
    for item in sorted(set(items)):
        if item != expected:
            break
        expected += 1
    return expected


def parse_preflib(text: str, path: PathLike = "<preflib>") -> tuple[NDArray[np.int64], NDArray[np.float64], list[str]]:
    """``(ranks, counts, names)`` of PrefLib text: one row of ranks per distinct
    order (0 best; unranked alternatives share the rank after the last group).

    Every declared size is checked against the data before the ranks are
    allocated: each of the ``NUMBER ALTERNATIVES`` alternatives must be ranked by
    some order or named by an ``ALTERNATIVE NAME`` line."""
    suffix = Path(path).suffix.lower().lstrip(".")
    headers: dict[str, tuple[str, int]] = {}
    names: dict[int, tuple[str, int]] = {}  # alternative -> (name, line)
    rows: list[tuple[int, int, list[list[tuple[int, int]]]]] = []  # (line, count, groups of (item, column))
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if rows:
                raise _error(path, number, 1, "header line after the first order")
            match = _HEADER.match(line)
            if match is None:
                continue  # a free comment
            key, value = match.group(1).upper(), match.group(2)
            if key.startswith("ALTERNATIVE NAME"):
                index_text = key[len("ALTERNATIVE NAME"):].strip()
                index = parse_decimal(index_text, _MAX_INTEGER)
                if index is None:
                    raise _error(path, number, 1, f"bad alternative number {_shown(index_text)}")
                names[index] = (value, number)
            else:
                headers[key] = (value, number)
            continue
        rows.append(_parse_order(raw, number, path))
    m = _header_int(headers, "NUMBER ALTERNATIVES", path, minimum=1)
    data_type = suffix if suffix in ("soc", "soi", "toc", "toi") else None
    if "DATA TYPE" in headers:
        declared, number = headers["DATA TYPE"]
        declared = declared.lower()
        if declared not in ("soc", "soi", "toc", "toi"):
            raise _error(path, number, None, f"DATA TYPE {declared!r} is not an ordinal type (soc, soi, toc, toi)")
        if data_type is not None and declared != data_type:
            raise _error(path, number, None, f"DATA TYPE {declared!r} does not match the file suffix .{data_type}")
        data_type = declared
    if not rows:
        raise ValueError(f"{path}: no orders")
    levels: list[dict[int, int]] = []  # per order: alternative -> level
    for number, _count, groups in rows:
        seen: dict[int, int] = {}
        for level, group in enumerate(groups):
            if len(group) > 1 and data_type in ("soc", "soi"):
                raise _error(path, number, group[0][1], f"ties are not allowed in a .{data_type} file")
            for item, column in group:
                if not 1 <= item <= m:
                    raise _error(path, number, column, f"alternative {item} is out of range 1..{m}")
                if item in seen:
                    raise _error(path, number, column, f"alternative {item} appears twice")
                seen[item] = level
        if len(seen) < m and data_type in ("soc", "toc"):
            raise _error(path, number, None, f"alternative {_first_missing(seen)} is missing from a complete "
                         f"(.{data_type}) order")
        levels.append(seen)
    if "NUMBER VOTERS" in headers:
        voters, total = _header_int(headers, "NUMBER VOTERS", path), sum(count for _, count, _ in rows)
        if voters != total:
            raise _error(path, headers["NUMBER VOTERS"][1], None,
                         f"NUMBER VOTERS is {voters} but the counts add up to {total}")
    if "NUMBER UNIQUE ORDERS" in headers:
        unique = _header_int(headers, "NUMBER UNIQUE ORDERS", path)
        if unique != len(rows):
            raise _error(path, headers["NUMBER UNIQUE ORDERS"][1], None,
                         f"NUMBER UNIQUE ORDERS is {unique} but the file has {len(rows)} orders")
    for index, (_name, number) in names.items():
        if not 1 <= index <= m:
            raise _error(path, number, None, f"ALTERNATIVE NAME {index} is out of range 1..{m}")
    present = set(names).union(*levels)
    if len(present) < m:
        raise _error(path, headers["NUMBER ALTERNATIVES"][1], None,
                     f"NUMBER ALTERNATIVES is {m} but alternative {_first_missing(present)} is neither "
                     "ranked by an order nor named by an ALTERNATIVE NAME line")
    try:
        ranks = np.empty((len(rows), m), dtype=np.int64)
    except MemoryError:
        raise ValueError(f"{path}: {len(rows)} orders of {m} alternatives do not fit in memory") from None
    for r, ((_number, _count, groups), seen) in enumerate(zip(rows, levels)):
        ranks[r] = len(groups)  # unranked: one level below the last group
        if seen:
            ranks[r, np.fromiter(seen, np.int64, len(seen)) - 1] = np.fromiter(seen.values(), np.int64, len(seen))
    counts = np.array([count for _, count, _ in rows], dtype=np.float64)
    return ranks, counts, [names[j][0] if j in names else str(j) for j in range(1, m + 1)]


#: Largest integer a PrefLib file may hold: counts become float64 weights, exact up to 2**53.
_MAX_INTEGER = 2**53


def _header_int(headers: dict[str, tuple[str, int]], key: str, path: PathLike, minimum: int = 0) -> int:
    if key not in headers:
        raise ValueError(f"{path}: missing header line '# {key}: ...'")
    value, number = headers[key]
    parsed = parse_decimal(value, _MAX_INTEGER)
    if parsed is None or parsed < minimum:
        what = "a positive integer" if minimum == 1 else "an integer"
        raise _error(path, number, None, f"{key} must be {what} up to 2**53 (digits 0-9), got {_shown(value)}")
    return parsed


def _parse_order(raw: str, number: int, path: PathLike) -> tuple[int, int, list[list[tuple[int, int]]]]:
    """``count: a,b,{c,d}`` -> (line, count, groups of (alternative, column))."""
    colon = raw.find(":")
    if colon < 0:
        raise _error(path, number, 1, "expected 'count: order' (no ':')")
    count_text = raw[:colon].strip()
    count = parse_decimal(count_text, _MAX_INTEGER)
    if count is None or count < 1:
        column = len(raw[:colon]) - len(raw[:colon].lstrip()) + 1
        raise _error(path, number, column,
                     f"the count must be a positive integer up to 2**53 (digits 0-9), got {_shown(count_text)}")
    groups: list[list[tuple[int, int]]] = []
    j, n = colon + 1, len(raw)
    open_group: list[tuple[int, int]] | None = None
    open_column = 0
    expect_item = True  # after ':' or ',' an item (or '{') must follow
    comma = 0

    def skip_spaces(j: int) -> int:
        while j < n and raw[j] in " \t":
            j += 1
        return j

    j = skip_spaces(j)
    if j == n:
        return number, count, groups  # an empty order: everything tied
    while j < n:
        j = skip_spaces(j)
        if j == n:
            break
        ch = raw[j]
        if expect_item:
            if ch == "{":
                if open_group is not None:
                    raise _error(path, number, j + 1, "nested '{'")
                open_group, open_column = [], j + 1
                j += 1
                continue
            start = j
            while j < n and raw[j] in _DIGITS:
                j += 1
            if start == j:
                raise _error(path, number, start + 1, f"expected an alternative number, got {raw[start]!r}")
            value = parse_decimal(raw[start:j], _MAX_INTEGER)
            if value is None:
                raise _error(path, number, start + 1, f"alternative {_shown(raw[start:j])} is out of range")
            item = (value, start + 1)
            if open_group is not None:
                open_group.append(item)
            else:
                groups.append([item])
            expect_item = False
            continue
        if ch == "}":
            if open_group is None:
                raise _error(path, number, j + 1, "'}' without '{'")
            groups.append(open_group)
            open_group = None
            j += 1
            continue
        if ch == ",":
            expect_item, comma = True, j + 1
            j += 1
            continue
        raise _error(path, number, j + 1, f"unexpected {ch!r}")
    if open_group is not None:
        raise _error(path, number, open_column, "'{' is never closed")
    if expect_item:
        raise _error(path, number, comma, "the order ends with ','")
    return number, count, groups


_DIGITS = frozenset("0123456789")


def write_preflib(path: PathLike, model: Any, counts: Sequence[int] | None = None,
                  names: Sequence[str] | None = None, title: str = "ualign export") -> None:
    """Write a population of rankings as a PrefLib file (``.soc`` or ``.toc``;
    the suffix of ``path`` must be one of the PrefLib suffixes and allow the
    data's ties). ``counts`` defaults to the weights scaled to integers, which
    must be possible (e.g. weights of a file read by :func:`load_preflib`)."""
    levels = np.asarray(model.ranks, dtype=np.int64)
    n, m = levels.shape
    suffix = Path(path).suffix.lower().lstrip(".")
    if "." + suffix not in PREFLIB_SUFFIXES:
        raise ValueError(f"path: expected a PrefLib suffix {PREFLIB_SUFFIXES}, got {path}")
    ties = bool((levels.max(axis=1) < m - 1).any())
    if ties and suffix in ("soc", "soi"):
        raise ValueError(f"path: the population has ties; use .toc or .toi, not .{suffix}")
    if counts is None:
        weights = np.asarray(model.weights)
        scaled = weights / weights[weights > 0].min()
        rounded = np.rint(scaled)
        if not np.allclose(scaled, rounded, rtol=1e-9, atol=0.0) or (rounded < 1).any():
            raise ValueError("counts: the weights are not proportional to positive integers; pass counts")
        counts_array = rounded.astype(np.int64)
    else:
        counts_array = np.asarray(counts, dtype=np.int64)
        if counts_array.shape != (n,) or (counts_array < 1).any():
            raise ValueError(f"counts: expected {n} positive integers")
    labels = list(names) if names is not None else [str(j) for j in range(1, m + 1)]
    if len(labels) != m:
        raise ValueError(f"names: expected {m} names, got {len(labels)}")
    out = [f"# FILE NAME: {Path(path).name}", f"# TITLE: {title}", f"# DATA TYPE: {suffix}",
           f"# NUMBER ALTERNATIVES: {m}", f"# NUMBER VOTERS: {int(counts_array.sum())}",
           f"# NUMBER UNIQUE ORDERS: {n}"]
    out += [f"# ALTERNATIVE NAME {j}: {label}" for j, label in enumerate(labels, start=1)]
    for i in range(n):
        groups = []
        for level in range(int(levels[i].max()) + 1):
            members = [str(y + 1) for y in np.flatnonzero(levels[i] == level)]
            groups.append(members[0] if len(members) == 1 else "{" + ",".join(members) + "}")
        out.append(f"{int(counts_array[i])}: " + ",".join(groups))
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")


# -- npz ----------------------------------------------------------------------------------------------

_NPZ_KINDS = ("ranks", "orders", "scores", "rewards")
_NPZ_KEYS = _NPZ_KINDS + ("weights", "policy")


def load_npz(path: PathLike, prompt: Any = None) -> Dataset:
    """An ``.npz`` with exactly one of ``ranks``, ``orders``, ``scores`` or
    ``rewards`` and optionally ``weights`` and ``policy``, as one prompt (named
    ``prompt``, default the file's stem)."""
    name = Path(path).stem if prompt is None else prompt
    arrays = _read_npz(path)
    unknown = [key for key in arrays if key not in _NPZ_KEYS]
    if unknown:
        raise ValueError(f"{path}: unknown array {unknown[0]!r}; expected {_NPZ_KEYS}")
    kinds = [key for key in _NPZ_KINDS if key in arrays]
    if len(kinds) != 1:
        raise ValueError(f"{path}: needs exactly one of ranks, orders, scores, rewards; found "
                         f"{kinds or 'none'} among {sorted(arrays)}")
    kind = kinds[0]
    array, weights, policy = arrays[kind], arrays.get("weights"), arrays.get("policy")
    try:
        model: PreferenceModel
        if kind == "ranks":
            model = RankingPopulation(array, weights)
        elif kind == "orders":
            model = RankingPopulation.from_orders(array, weights)
        elif kind == "scores":
            model = RankingPopulation.from_scores(array, weights)
        else:
            model = PlackettLuceMixture(array, weights)
        policies = {}
        if policy is not None:
            policies[name] = as_distribution(policy, "policy", size=model.n_responses)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{path}: {error}") from None
    # a Plackett-Luce mixture's weights are its types' shares, not voters
    voters = {} if kind == "rewards" else _voter_count(name, weights, model.n_voters)
    return Dataset({name: model}, policies, {name: list(range(model.n_responses))}, voters)


def _read_npz(path: PathLike) -> dict[str, NDArray[Any]]:
    """The arrays of an ``.npz`` archive by name; never unpickles."""
    with open(path, "rb") as handle:  # a missing or unreadable file stays an OSError naming it
        if handle.read(4) not in _ZIP_MAGIC:  # np.load would try a single .npy array, then pickle
            raise ValueError(f"{path}: not an .npz archive (a zip file of .npy arrays)")
        handle.seek(0)
        # A damaged archive fails deep inside zipfile, zlib and numpy's header parser
        # with many exception types (BadZipFile, zlib.error, EOFError, ValueError,
        # NotImplementedError, MemoryError for a huge declared shape, ...): each means
        # the file is not a readable archive, so all become one ValueError naming it.
        try:
            data = np.load(handle, allow_pickle=False)
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: not a readable .npz archive ({type(error).__name__}: {error})") from None
        arrays = {}
        with data:
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except Exception as error:  # noqa: BLE001
                    raise ValueError(f"{path}: array {key!r} cannot be read ({type(error).__name__}: {error})") \
                        from None
    return arrays


# The prefixes by which np.load recognises a zip archive (an .npz).
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def save_npz(path: PathLike, model: Any, policy: Any | None = None) -> None:
    """Write a population of rankings (its dense ranks and weights) and optionally a policy."""
    arrays = {"ranks": np.asarray(model.ranks), "weights": np.asarray(model.weights)}
    if policy is not None:
        arrays["policy"] = as_distribution(policy, "policy", size=model.n_responses)
    np.savez(path, **arrays)  # type: ignore[arg-type]


# -- long tables ---------------------------------------------------------------------------------------

class _Table:
    """Columns of a long table as Python lists, and how to name a row in messages."""

    def __init__(self, path: PathLike, columns: dict[str, list[Any]], rows: list[int], unit: str) -> None:
        self.path, self.columns, self.rows, self.unit = path, columns, rows, unit

    def error(self, j: int, column: str | None, message: str, kind: type[Exception] = ValueError) -> Exception:
        where = f"{self.unit} {self.rows[j]}" + (f", column {column!r}" if column is not None else "")
        return kind(f"{self.path}: {where}: {message}")

    def __len__(self) -> int:
        return len(self.rows)


def _read_table(path: PathLike, required: Sequence[str], optional: Sequence[str]) -> _Table:
    suffix = Path(path).suffix.lower()
    wanted = list(required) + list(optional)
    if suffix == ".csv":
        reader = csv.reader(StringIO(_read_text(path), newline=""))
        try:
            try:
                header = [cell.strip() for cell in next(reader)]
            except StopIteration:
                raise ValueError(f"{path}: line 1: empty file (expected a header row)") from None
            _check_header(path, header, required, "line 1")
            where = {name: header.index(name) for name in wanted if name in header}
            columns: dict[str, list[Any]] = {name: [] for name in where}
            rows: list[int] = []
            for cells in reader:
                if not cells or all(not cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    raise ValueError(f"{path}: line {reader.line_num}: expected {len(header)} fields, got {len(cells)}")
                for name, index in where.items():
                    columns[name].append(cells[index].strip())
                rows.append(reader.line_num)
        except csv.Error as error:  # e.g. a field over csv.field_size_limit(), a quote never closed
            raise ValueError(f"{path}: line {reader.line_num}: {error}") from None
        return _Table(path, columns, rows, "line")
    if suffix in (".parquet", ".pq"):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(f"{path}: reading Parquet needs pandas and pyarrow: "
                              "pip install 'ualign[parquet]'") from None
        with open(path, "rb") as handle:  # a missing file stays an OSError naming it
            try:
                frame = pd.read_parquet(handle)
            except ImportError:
                raise
            except Exception as error:  # noqa: BLE001  (pyarrow's errors for a damaged file are of many types)
                raise ValueError(f"{path}: not a readable Parquet file ({type(error).__name__}: {error})") from None
        header = [str(name) for name in frame.columns]
        _check_header(path, header, required, "header")
        columns = {}
        for name in wanted:
            if name in header:
                series = frame[name]
                values = series.tolist()
                missing = series.isna().to_numpy()
                columns[name] = [None if miss else value for value, miss in zip(values, missing)]
        return _Table(path, columns, list(range(len(frame))), "row")
    raise ValueError(f"{path}: expected a .csv or .parquet table, got {suffix!r}")


def _check_header(path: PathLike, header: list[str], required: Sequence[str], where: str) -> None:
    for name in required:
        if name not in header:
            raise ValueError(f"{path}: {where}: missing column {name!r} (columns: {header})")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ValueError(f"{path}: {where}: column {duplicated[0]!r} appears twice")


def _label(table: _Table, j: int, column: str) -> Any:
    value = table.columns[column][j]
    if value is None or (isinstance(value, str) and not value) or (isinstance(value, float) and math.isnan(value)):
        raise table.error(j, column, "missing value")
    try:
        hash(value)  # labels key dictionaries; a Parquet cell may hold a list or a dict
    except TypeError:
        raise table.error(j, column, f"expected a label (text or a number), got {type(value).__name__}",
                          TypeError) from None
    return value


def _number(table: _Table, j: int, column: str) -> float:
    value = table.columns[column][j]
    if value is None or (isinstance(value, str) and not value):
        raise table.error(j, column, "missing value")
    shown = _shown(value) if isinstance(value, str) else repr(value)
    if isinstance(value, bool) or (isinstance(value, str) and (not value.isascii() or "_" in value)):
        # float() would also read other scripts' digits and '1_000'
        raise table.error(j, column, f"expected a number, got {shown}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise table.error(j, column, f"expected a number, got {shown}") from None
    if not math.isfinite(number):
        raise table.error(j, column, f"expected a finite number, got {value!r}")
    return number


def load_table(path: PathLike, policy: PathLike | None = None) -> Dataset:
    """A long table (CSV or Parquet) of (prompt, voter, response, score or rank
    [, weight]) rows as one prompt per distinct ``prompt``; ``policy`` is an
    optional policy table (prompt, response, probability)."""
    table = _read_table(path, ("prompt", "voter", "response"), ("score", "rank", "weight"))
    kinds = [name for name in ("score", "rank") if name in table.columns]
    if len(kinds) != 1:
        raise ValueError(f"{path}: needs exactly one of the columns 'score' and 'rank', found {kinds or 'neither'}")
    kind = kinds[0]
    has_weight = "weight" in table.columns
    prompts: dict[Any, int] = {}
    voters: list[dict[Any, int]] = []
    responses: list[dict[Any, int]] = []
    cells: list[dict[tuple[int, int], int]] = []  # per prompt: (voter, response) -> row
    values = np.empty(len(table), dtype=np.float64)
    weights: list[dict[int, tuple[float, int]]] = []
    for j in range(len(table)):
        prompt = _label(table, j, "prompt")
        p = prompts.setdefault(prompt, len(prompts))
        if p == len(voters):
            voters.append({})
            responses.append({})
            cells.append({})
            weights.append({})
        voter = _label(table, j, "voter")
        response = _label(table, j, "response")
        v = voters[p].setdefault(voter, len(voters[p]))
        y = responses[p].setdefault(response, len(responses[p]))
        previous = cells[p].get((v, y))
        if previous is not None:
            raise table.error(j, "response", f"voter {voter!r} already rated response {response!r} in prompt "
                              f"{prompt!r} ({table.unit} {table.rows[previous]})")
        cells[p][(v, y)] = j
        values[j] = _number(table, j, kind)
        if has_weight:
            weight = _number(table, j, "weight")
            if weight < 0:
                raise table.error(j, "weight", f"must be >= 0, got {weight!r}")
            first = weights[p].setdefault(v, (weight, j))
            if first[0] != weight:
                raise table.error(j, "weight", f"voter {voter!r} of prompt {prompt!r} has weight {first[0]!r} "
                                  f"at {table.unit} {table.rows[first[1]]} and {weight!r} here")
    if not prompts:
        raise ValueError(f"{path}: no data rows")
    models: dict[Any, PreferenceModel] = {}
    labels: dict[Any, list[Any]] = {}
    counts: dict[Any, int] = {}
    for prompt, p in prompts.items():
        n, m = len(voters[p]), len(responses[p])
        keys = np.full((n, m), np.nan)
        for (v, y), j in cells[p].items():
            keys[v, y] = -values[j] if kind == "score" else values[j]
        missing = np.isnan(keys)
        if missing.any():  # unranked: one level below everything the voter ranked
            worst = np.nanmax(np.where(missing, -np.inf, keys), axis=1, initial=-np.inf)
            bottom = np.where(np.isfinite(worst), np.nextafter(worst, np.inf), 0.0)
            if not np.isfinite(bottom).all():
                raise ValueError(f"{path}: prompt {prompt!r}: values too large to rank unrated responses below them")
            keys = np.where(missing, bottom[:, None], keys)
        w = None
        if has_weight:
            w = np.array([weights[p][v][0] for v in range(n)])
            if not (w > 0).any():
                raise ValueError(f"{path}: prompt {prompt!r}: all voter weights are zero")
        models[prompt] = RankingPopulation(keys, weights=w)
        labels[prompt] = list(responses[p])
        counts.update(_voter_count(prompt, w, n))
    dataset = Dataset(models, responses=labels, voters=counts)
    if policy is not None:
        dataset.policies.update(load_policy_table(policy, dataset))
    return dataset


def load_policy_table(path: PathLike, dataset: Dataset) -> dict[Any, NDArray[np.float64]]:
    """Policies from a table (prompt, response, probability) for the prompts of
    ``dataset``, matched by prompt name and response label (absent responses get 0)."""
    table = _read_table(path, ("prompt", "response", "probability"), ())
    rows: dict[Any, NDArray[np.float64]] = {}
    seen: dict[tuple[Any, int], int] = {}
    index: dict[Any, dict[Any, int]] = {}
    for prompt, labels in dataset.responses.items():
        index[_text(prompt)] = {_text(label): y for y, label in enumerate(labels)}
    names = {_text(prompt): prompt for prompt in dataset}
    for j in range(len(table)):
        prompt_text = _text(_label(table, j, "prompt"))
        if prompt_text not in names or prompt_text not in index:
            raise table.error(j, "prompt", f"unknown prompt {prompt_text!r}")
        prompt = names[prompt_text]
        response_text = _text(_label(table, j, "response"))
        y = index[prompt_text].get(response_text)
        if y is None:
            raise table.error(j, "response", f"prompt {prompt!r} has no response {response_text!r}")
        previous = seen.get((prompt, y))
        if previous is not None:
            raise table.error(j, "response", f"response {response_text!r} of prompt {prompt!r} appears twice "
                              f"({table.unit} {table.rows[previous]})")
        seen[(prompt, y)] = j
        probability = _number(table, j, "probability")
        if probability < 0:
            raise table.error(j, "probability", f"must be >= 0, got {probability!r}")
        if prompt not in rows:
            rows[prompt] = np.zeros(dataset[prompt].n_responses)
        rows[prompt][y] = probability
    for prompt, row in rows.items():
        as_distribution(row, f"{path}: policy of prompt {prompt!r}")
    return rows


def _text(value: Any) -> str:
    """Labels are matched across files by their text (CSV has no types)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_table(path: PathLike, dataset: Dataset | Mapping | Sequence[Any],  # type: ignore[type-arg]
                policy_path: PathLike | None = None) -> None:
    """Write populations of rankings as a long table (``rank`` = dense level, 0
    best; ``weight`` = normalised voter weight) and, with ``policy_path``, the
    dataset's policies as a policy table. CSV or Parquet by suffix."""
    if isinstance(dataset, Dataset):
        items = list(dataset.models.items())
        policies, labels = dataset.policies, dataset.responses
    elif isinstance(dataset, Mapping):
        items, policies, labels = list(dataset.items()), {}, {}
    else:
        items, policies, labels = list(enumerate(dataset)), {}, {}
    rows: dict[str, list[Any]] = {"prompt": [], "voter": [], "response": [], "rank": [], "weight": []}
    for prompt, model in items:
        levels = np.asarray(model.ranks)
        weights = np.asarray(model.weights)
        names = labels.get(prompt, list(range(model.n_responses)))
        n, m = levels.shape
        rows["prompt"] += [prompt] * (n * m)
        rows["voter"] += np.repeat(np.arange(n), m).tolist()
        rows["response"] += list(names) * n
        rows["rank"] += levels.reshape(-1).astype(np.int64).tolist()
        rows["weight"] += np.repeat(weights, m).tolist()
    _write_columns(path, rows)
    if policy_path is not None:
        prows: dict[str, list[Any]] = {"prompt": [], "response": [], "probability": []}
        for prompt, _model in items:
            if prompt in policies:
                names = labels.get(prompt, list(range(len(policies[prompt]))))
                prows["prompt"] += [prompt] * len(names)
                prows["response"] += list(names)
                prows["probability"] += np.asarray(policies[prompt]).tolist()
        _write_columns(policy_path, prows)


def _write_columns(path: PathLike, columns: dict[str, list[Any]]) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(list(columns))
            # repr keeps every float exact on the way back
            writer.writerows(zip(*[[repr(v) if isinstance(v, float) else v for v in column]
                                   for column in columns.values()]))
    elif suffix in (".parquet", ".pq"):
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(f"{path}: writing Parquet needs pandas and pyarrow: "
                              "pip install 'ualign[parquet]'") from None
        pd.DataFrame(columns).to_parquet(path, index=False)
    else:
        raise ValueError(f"path: expected a .csv or .parquet table, got {path}")


__all__ = [
    "PREFLIB_SUFFIXES",
    "TABLE_SUFFIXES",
    "Dataset",
    "load",
    "load_npz",
    "load_policy_table",
    "load_preflib",
    "load_table",
    "merge",
    "parse_preflib",
    "save_npz",
    "write_preflib",
    "write_table",
]
