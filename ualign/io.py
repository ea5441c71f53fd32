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
  ``probability`` (absent responses get 0), and optionally ``policy`` to hold
  several named policies. Parquet needs pandas and pyarrow
  (``pip install 'ualign[parquet]'``).
* Reward-model scores (:func:`load_scores`): ``prompt``, ``response``,
  ``rater``, ``score`` as one Plackett–Luce type per rater.
* Weak-order strings (:func:`parse_weak_orders`, :func:`load_weak_orders`):
  ``"A>B=C>D"``, one per annotator.
* Choices (:func:`load_choices`, :func:`fit_choices`): a chosen response out of
  a shown set, or chosen/rejected pairs, fitted as a Plackett–Luce mixture.

Voter groups (``dataset.groups``, used by :func:`ualign.audit_many`): an
optional ``group`` column of a long table (one label per voter, or per rater of
a score table; any other column by ``group_column``); for PrefLib, which carries
no per-voter attributes, a labels file or array (:func:`load_preflib`) or several
files of one election pooled with the files as groups (``load(...,
group_by="file")``). Choice tables cannot carry groups (see :func:`load_choices`).

Every table loader also takes a pandas DataFrame or a pyarrow Table; its
errors name the argument and the row instead of a file and a line.
"""

from __future__ import annotations

import csv
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from io import StringIO
from pathlib import Path
from typing import Any, List, NamedTuple, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_choice, as_distribution, as_flag, as_positive_real, parse_decimal
from .groups import as_group_labels
from .model import PreferenceModel
from .plackett_luce import Choices, PlackettLuceFit, PlackettLuceMixture, fit_plackett_luce
from .ranking import RankingPopulation

PathLike = Union[str, "os.PathLike[str]"]

#: File suffixes of PrefLib's ordinal formats.
PREFLIB_SUFFIXES = (".soc", ".soi", ".toc", ".toi")
#: File suffixes of long tables.
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class Dataset(Mapping):  # type: ignore[type-arg]
    """Prompts of a data set: ``dataset[prompt]`` is that prompt's model.

    ``policies[prompt]`` is the policy to audit, where the data has one;
    ``policy_sets[name][prompt]`` holds several named policies (from policy
    tables with a ``policy`` column, or several tables); ``responses[prompt][y]``
    is the label of response ``y``; ``voters[prompt]`` is the number of voters
    the data stands for where its voter weights are counts (whole numbers): a
    PrefLib file's counts added up, not its number of distinct orders (the
    model's ``n_voters``). ``groups[prompt]`` holds the group label of each of
    the model's voters (of each type of a Plackett–Luce mixture), aligned with its
    rows, for the prompts whose data names groups (absent elsewhere);
    :func:`ualign.audit_many` audits every group of them unless told not to.
    """

    def __init__(self, models: dict[Any, PreferenceModel], policies: dict[Any, NDArray[np.float64]] | None = None,
                 responses: dict[Any, list[Any]] | None = None,
                 policy_sets: dict[Any, dict[Any, NDArray[np.float64]]] | None = None,
                 voters: dict[Any, int] | None = None, groups: dict[Any, NDArray[Any]] | None = None) -> None:
        self.models = dict(models)
        self.policies = dict(policies or {})
        self.responses = dict(responses or {})
        self.policy_sets = dict(policy_sets or {})
        self.voters = dict(voters or {})
        self.groups = dict(groups or {})

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

    def audit_policies(self) -> dict[Any, Any] | None:
        """The ``policies`` argument of :func:`ualign.audit_many` for this data:
        the named policies if there are any, else the policies, else None."""
        if self.policy_sets:
            return self.policy_sets
        return self.policies or None

    def __repr__(self) -> str:
        named = f", <{len(self.policy_sets)} named policies>" if self.policy_sets else ""
        grouped = f", <groups on {len(self.groups)} prompts>" if self.groups else ""
        return f"Dataset(<{len(self)} prompts>, <{len(self.policies)} policies>{named}{grouped})"


def merge(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset from several; prompt names must be distinct."""
    models: dict[Any, PreferenceModel] = {}
    policies: dict[Any, NDArray[np.float64]] = {}
    responses: dict[Any, list[Any]] = {}
    voters: dict[Any, int] = {}
    groups: dict[Any, NDArray[Any]] = {}
    policy_sets: dict[Any, dict[Any, NDArray[np.float64]]] = {}
    for dataset in datasets:
        for prompt in dataset:
            if prompt in models:
                raise ValueError(f"prompt {prompt!r} appears in more than one input")
            models[prompt] = dataset[prompt]
        policies.update(dataset.policies)
        responses.update(dataset.responses)
        for name, rows in dataset.policy_sets.items():
            policy_sets.setdefault(name, {}).update(rows)
        voters.update(dataset.voters)
        groups.update(dataset.groups)
    return Dataset(models, policies, responses, policy_sets, voters, groups)


def _voter_count(prompt: Any, weights: ArrayLike | None, n: int) -> dict[Any, int]:
    """``{prompt: voters}`` for a population of ``n`` rows: ``n`` without weights,
    the weights' sum where they are counts (whole numbers), else nothing."""
    if weights is None:
        return {prompt: n}
    array = np.asarray(weights, dtype=np.float64)
    total = float(np.sum(array))
    return {prompt: int(total)} if bool(np.all(np.floor(array) == array)) and total <= _MAX_INTEGER else {}


#: How :func:`load` reads a long table: ``"rankings"`` (voter rankings or scores
#: read as rankings, or weak-order strings) or ``"plackett-luce"`` (scores as
#: Plackett–Luce utilities, :func:`load_scores`).
MODELS = ("rankings", "plackett-luce")

#: How :func:`load` can derive voter groups from the inputs themselves:
#: ``"file"`` pools PrefLib files of one election into one prompt, each file a group.
GROUP_BY = ("file",)

#: The column of a long table that holds each voter's group unless ``group_column`` names another.
GROUP_COLUMN = "group"


def load(paths: TableSource | Sequence[TableSource], policy: TableSource | Sequence[TableSource] | None = None,
         model: str = "rankings", temperature: float | None = None, standardize: bool | None = None, *,
         group_column: str = GROUP_COLUMN, group_by: str | None = None,
         group_labels: PathLike | Sequence[Any] | None = None) -> Dataset:
    """Load one or several inputs into one :class:`Dataset`: files by suffix, and
    long tables also as pandas DataFrames or pyarrow Tables.

    ``model`` says how long tables are read: ``"rankings"`` (default) reads a
    table with a ``ranking`` column (and no ``response`` column) as weak-order
    strings (:func:`load_weak_orders`), any other as rankings
    (:func:`load_table`); ``"plackett-luce"`` reads every input as a table of
    scores (:func:`load_scores`, with ``temperature``, default 1, and
    ``standardize``, default False). ``policy`` is one or several policy tables
    for the prompts of long tables (see :func:`load_policy_table`): a single
    table without a ``policy`` column fills ``dataset.policies``; otherwise each
    policy is named — by the ``policy`` column, else by its file's stem (or
    ``policy[j]`` for a table in memory) — in ``dataset.policy_sets``.

    A PrefLib or ``.npz`` file is one prompt named after the file's stem; where
    several of them share a stem (say a ``.soi`` and a ``.toc`` of one election)
    each is named by its file name with the extension instead, and where even
    those coincide (files of one name in different folders), by its path as given.
    Long tables name their prompts in their ``prompt`` column.

    Voter groups (``dataset.groups``): long tables read them from the column
    ``group_column`` (default ``"group"``, used where a table has it; a column
    named otherwise must be in every table). PrefLib files carry no voter
    attributes, so their groups come from outside the orders:
    ``group_by="file"`` pools several PrefLib files of one election (the same
    alternatives, with the same names) into one prompt whose voters are grouped
    by file — each group is named as the file's prompt would be, the prompt by
    the groups joined with ``+`` — and ``group_labels`` gives the labels of the
    voters of a single PrefLib input (see :func:`load_preflib`)."""
    kind = as_choice(model, MODELS, "model")
    if kind == "rankings":
        if temperature is not None:
            raise ValueError("temperature: only for model='plackett-luce'")
        if standardize is not None:
            raise ValueError("standardize: only for model='plackett-luce'")
    tau = as_positive_real(1.0 if temperature is None else temperature, "temperature")
    standardise = as_flag(False if standardize is None else standardize, "standardize")
    group = _as_group_column(group_column)
    sources = _sources(paths, "paths")
    if not sources:
        raise ValueError("paths: no input files")
    names = _file_prompt_names([source for source in sources if not _in_memory(source)
                                and Path(source).suffix.lower() in PREFLIB_SUFFIXES + (".npz",)])
    preflib = [source for source in sources if _is_preflib(source)]
    if group_labels is not None and (len(sources) != 1 or not preflib):
        raise ValueError(f"group_labels: labels go with a single PrefLib input, got {len(sources)} input(s) of "
                         f"which {len(preflib)} PrefLib (long tables hold groups in a column)")
    if group_by is not None:
        as_choice(group_by, GROUP_BY, "group_by")
        if group_labels is not None:
            raise ValueError("group_labels: not with group_by='file' (the files are the groups)")
        if len(preflib) < len(sources):
            other = next(source for source in sources if not _is_preflib(source))
            shown = "a table in memory" if _in_memory(other) else other
            raise ValueError(f"group_by: 'file' pools PrefLib files (.soc, .soi, .toc, .toi); {shown} is not one")
        if kind == "plackett-luce":
            raise ValueError(f"model: 'plackett-luce' reads long tables of scores; {sources[0]} is not one")
        datasets = [_pooled_preflib(sources, names)]
    else:
        datasets = [_load_one(source, j, kind, tau, standardise, group, names, group_labels)
                    for j, source in enumerate(sources)]
    tables = sum(bool(_in_memory(source)) or Path(source).suffix.lower() in TABLE_SUFFIXES for source in sources)
    dataset = merge(datasets)
    if policy is not None:
        policies = _sources(policy, "policy")
        if not tables:
            first = policies[0] if policies and isinstance(policies[0], (str, os.PathLike)) else "policy"
            raise ValueError(f"{first}: a policy table goes with long tables (CSV or Parquet)")
        if dataset.policies:
            raise ValueError("policy: the inputs already hold policies (an .npz); give all policies as tables")
        _add_policies(dataset, policies, "policy")
    return dataset


def _load_one(source: TableSource, j: int, kind: str, temperature: float, standardize: bool, group: str,
              names: dict[PathLike, str], group_labels: PathLike | Sequence[Any] | None) -> Dataset:
    """One input of :func:`load` (``j``: its position in ``paths``)."""
    suffix = "" if _in_memory(source) else Path(source).suffix.lower()
    if _in_memory(source) or suffix in TABLE_SUFFIXES:
        name = f"paths[{j}]"
        if kind == "plackett-luce":
            return _scores_dataset(_read_table(source, name, _SCORE_COLUMNS + (group,)), temperature, standardize,
                                   group)
        table = _read_table(source, name, _RANKING_COLUMNS + _WEAK_ORDER_COLUMNS + (group,))
        if "ranking" in table.columns and "response" not in table.columns:
            return _weak_orders_dataset(table, source, None, group)
        return _rankings_dataset(table, group)
    if suffix not in PREFLIB_SUFFIXES + (".npz",):
        raise ValueError(f"{source}: unknown file type {suffix!r}; expected one of "
                         f"{PREFLIB_SUFFIXES + ('.npz',) + TABLE_SUFFIXES}")
    if kind == "plackett-luce":
        raise ValueError(f"model: 'plackett-luce' reads long tables of scores; {source} is not one")
    if suffix == ".npz":
        return load_npz(source, names[source])
    return _preflib_dataset(source, names[source], group_labels, "group_labels")


def _is_preflib(source: TableSource) -> bool:
    return not _in_memory(source) and Path(source).suffix.lower() in PREFLIB_SUFFIXES


def _file_prompt_names(paths: Sequence[PathLike]) -> dict[PathLike, str]:
    """The prompt name of each file named after its file (see :func:`load`)."""
    stems = Counter(Path(path).stem for path in paths)
    files = Counter(Path(path).name for path in paths)
    return {path: Path(path).stem if stems[Path(path).stem] == 1 else
            Path(path).name if files[Path(path).name] == 1 else os.fspath(path) for path in paths}


def _sources(value: Any, name: str) -> list[Any]:
    """One input (a path or a table in memory) or a sequence of them, as a list."""
    if isinstance(value, (str, os.PathLike)) or _in_memory(value):
        return [value]
    if not hasattr(value, "__iter__"):
        raise TypeError(f"{name}: expected a path, a table or a sequence of them, got {type(value).__name__}")
    return list(value)


# -- PrefLib ------------------------------------------------------------------------------------------

def _error(path: PathLike, line: int, column: int | None, message: str) -> ValueError:
    where = f"line {line}" + (f", column {column}" if column is not None else "")
    return ValueError(f"{path}: {where}: {message}")


_HEADER = re.compile(r"#\s*([^:]+?)\s*:\s*(.*?)\s*$")


def load_preflib(path: PathLike, prompt: Any = None, groups: PathLike | Sequence[Any] | None = None) -> Dataset:
    """A PrefLib ordinal file (``.soc``, ``.soi``, ``.toc``, ``.toi``) as one prompt
    (named ``prompt``, default the file's stem).

    A PrefLib file carries no attribute of its voters: its header describes the
    election (title, data type, the numbers of alternatives, voters and unique
    orders, the alternatives' names, related files) and each order line
    ``count: ...`` merges ``count`` voters who cast the same order, in no
    particular voter order. ``groups`` supplies their groups from outside: a
    sequence of labels, or the path of a UTF-8 text file with one label per line
    (spaces around a label ignored; blank lines only at the end), holding either
    one label per order line (for all ``count`` voters of that line) or one label
    per voter, the voters of each line in turn (``count`` labels per line, in the
    file's line order; a line whose voters fall in several groups becomes one
    voter per group, weighted by how many of its voters the group has)."""
    return _preflib_dataset(path, Path(path).stem if prompt is None else prompt, groups, "groups")


def _preflib_dataset(path: PathLike, name: Any, groups: PathLike | Sequence[Any] | None, argument: str) -> Dataset:
    """:func:`load_preflib`; ``argument`` names ``groups`` in messages."""
    ranks, counts, names = parse_preflib(_read_text(path), path)
    voters = int(counts.sum())
    if groups is None:
        return Dataset({name: RankingPopulation(ranks, weights=counts)}, responses={name: names},
                       voters={name: voters})
    ranks, counts, labels = _voter_groups(ranks, counts, _read_labels(groups, argument), path, argument)
    model = RankingPopulation(ranks, weights=counts)
    return Dataset({name: model}, responses={name: names}, voters={name: voters},
                   groups={name: _checked_groups(labels, model, argument)})


def _read_labels(labels: PathLike | Sequence[Any], argument: str) -> list[Any]:
    """Group labels as a list: those of a sequence, or the lines of a labels file."""
    if isinstance(labels, (str, os.PathLike)):
        lines = [line.strip() for line in _read_text(labels).splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        if "" in lines:
            raise ValueError(f"{labels}: line {lines.index('') + 1}: empty label")
        if not lines:
            raise ValueError(f"{labels}: no labels")
        return lines
    if isinstance(labels, bytes) or not hasattr(labels, "__len__"):
        raise TypeError(f"{argument}: expected a sequence of labels or the path of a labels file, "
                        f"got {type(labels).__name__}")
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{argument}: expected one label per voter (a flat sequence), got shape {array.shape}")
    return list(array.tolist())


def _voter_groups(ranks: NDArray[np.int64], counts: NDArray[np.float64], labels: list[Any], path: PathLike,
                  argument: str) -> tuple[NDArray[np.int64], NDArray[np.float64], list[Any]]:
    """``(ranks, counts, labels)`` with one label per row: ``labels`` as given where
    there is one per order line, else (one per voter) each line split by group."""
    lines, voters = counts.shape[0], int(counts.sum())
    if len(labels) == lines:
        return ranks, counts, labels
    if len(labels) != voters:
        raise ValueError(f"{argument}: expected one label per order line ({lines}) or per voter ({voters}) of "
                         f"{path}, got {len(labels)}")
    rows: list[int] = []
    shares: list[int] = []
    groups: list[Any] = []
    start = 0
    for row, count in enumerate(counts.astype(np.int64).tolist()):
        for label, share in Counter(labels[start:start + count]).items():  # first appearance first
            rows.append(row)
            shares.append(share)
            groups.append(label)
        start += count
    return ranks[rows], np.array(shares, dtype=np.float64), groups


def _checked_groups(labels: Sequence[Any] | NDArray[Any], model: PreferenceModel, where: str) -> NDArray[Any]:
    """One group label per voter of ``model`` as an array, checked as audits check
    groups (one label per voter, comparable labels, every group of positive weight)."""
    array = np.asarray(labels)
    as_group_labels(array, model, where)
    return array


def _pooled_preflib(paths: Sequence[PathLike], names: dict[PathLike, str]) -> Dataset:
    """PrefLib files of one election as one prompt, each file's voters a group
    named as the file's prompt would be (``load(..., group_by="file")``)."""
    parsed = [parse_preflib(_read_text(path), path) for path in paths]
    alternatives = parsed[0][2]
    for path, (_, _, other) in zip(paths[1:], parsed[1:]):
        if other != alternatives:
            if len(other) != len(alternatives):
                why = f"{len(alternatives)} and {len(other)} alternatives"
            else:
                j = next(j for j, (a, b) in enumerate(zip(alternatives, other)) if a != b)
                why = f"alternative {j + 1} is {alternatives[j]!r} in one and {other[j]!r} in the other"
            raise ValueError(f"group_by: {paths[0]} and {path} do not hold the same alternatives ({why}); "
                             "only files of one election can be pooled")
    labels = [names[path] for path in paths]
    prompt = "+".join(labels)
    counts = np.concatenate([counts for _, counts, _ in parsed])
    model = RankingPopulation(np.concatenate([ranks for ranks, _, _ in parsed]), weights=counts)
    groups = np.repeat(np.array(labels), [ranks.shape[0] for ranks, _, _ in parsed])
    return Dataset({prompt: model}, responses={prompt: alternatives}, voters={prompt: int(counts.sum())},
                   groups={prompt: _checked_groups(groups, model, "group_by")})


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
    return Dataset({name: model}, policies, {name: list(range(model.n_responses))}, voters=voters)


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

#: A long table: a path (``.csv``, ``.parquet``), a ``pandas.DataFrame`` or a ``pyarrow.Table``.
TableSource = Union[str, "os.PathLike[str]", Any]


class _Table:
    """Columns of a long table as Python lists, and how to name a row in messages.

    ``source`` names the table in messages: its path, or for a table in memory
    the argument that held it."""

    def __init__(self, source: Any, header: list[str], where: str, columns: dict[str, list[Any]], rows: list[int],
                 unit: str) -> None:
        self.source, self.header, self.where = source, header, where
        self.columns, self.rows, self.unit = columns, rows, unit

    def error(self, j: int, column: str | None, message: str, kind: type[Exception] = ValueError) -> Exception:
        where = f"{self.unit} {self.rows[j]}" + (f", column {column!r}" if column is not None else "")
        return kind(f"{self.source}: {where}: {message}")

    def require(self, *names: str) -> None:
        for name in names:
            if name not in self.columns:
                raise ValueError(f"{self.source}: {self.where}: missing column {name!r} (columns: {self.header})")

    def one_of(self, *names: str) -> str:
        """The one column of ``names`` the table has."""
        present = [name for name in names if name in self.columns]
        if len(present) != 1:
            raise ValueError(f"{self.source}: needs exactly one of the columns "
                             f"{' and '.join(repr(name) for name in names)}, found {present or 'neither'}")
        return present[0]

    def __len__(self) -> int:
        return len(self.rows)


def _in_memory(source: Any) -> str | None:
    """``"pandas"`` or ``"arrow"`` for a table in memory, else None. (A DataFrame
    or Table can only exist once its library is imported: no import here.)"""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return "pandas"
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(source, pyarrow.Table):
        return "arrow"
    return None


def _read_table(source: TableSource, name: str, wanted: Sequence[str]) -> _Table:
    """The columns ``wanted`` (those the table has) of a path, DataFrame or Arrow
    table; ``name`` (the argument) names a table in memory in messages."""
    kind = _in_memory(source)
    if kind == "pandas":
        return _frame_table(source, name, wanted)
    if kind == "arrow":
        return _arrow_table(source, name, wanted)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path, a pandas DataFrame or a pyarrow Table, got {type(source).__name__}")
    path = source
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        reader = csv.reader(StringIO(_read_text(path), newline=""))
        try:
            try:
                header = [cell.strip() for cell in next(reader)]
            except StopIteration:
                raise ValueError(f"{path}: line 1: empty file (expected a header row)") from None
            _check_header(path, header, "line 1")
            where = {column: header.index(column) for column in wanted if column in header}
            columns: dict[str, list[Any]] = {column: [] for column in where}
            rows: list[int] = []
            for cells in reader:
                if not cells or all(not cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    raise ValueError(f"{path}: line {reader.line_num}: expected {len(header)} fields, got {len(cells)}")
                for column, index in where.items():
                    columns[column].append(cells[index].strip())
                rows.append(reader.line_num)
        except csv.Error as error:  # e.g. a field over csv.field_size_limit(), a quote never closed
            raise ValueError(f"{path}: line {reader.line_num}: {error}") from None
        return _Table(path, header, "line 1", columns, rows, "line")
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
        return _frame_table(frame, path, wanted)
    raise ValueError(f"{path}: expected a .csv or .parquet table, got {suffix!r}")


def _frame_table(frame: Any, source: Any, wanted: Sequence[str]) -> _Table:
    """A pandas DataFrame's columns (rows named by position; NA cells become None)."""
    header = [str(column) for column in frame.columns]
    _check_header(source, header, "header")
    columns = {}
    for column in wanted:
        if column in header:
            series = frame[frame.columns[header.index(column)]]
            missing = series.isna().to_numpy()
            columns[column] = [None if miss else value for value, miss in zip(series.tolist(), missing)]
    return _Table(source, header, "header", columns, list(range(len(frame))), "row")


def _arrow_table(table: Any, source: Any, wanted: Sequence[str]) -> _Table:
    """A pyarrow Table's columns (rows named by position; nulls become None)."""
    header = [str(column) for column in table.column_names]
    _check_header(source, header, "header")
    columns = {column: table.column(column).to_pylist() for column in wanted if column in header}
    return _Table(source, header, "header", columns, list(range(table.num_rows)), "row")


def _check_header(source: Any, header: list[str], where: str) -> None:
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ValueError(f"{source}: {where}: column {duplicated[0]!r} appears twice")


def _default_prompt(source: TableSource, fallback: str) -> Any:
    """The prompt of a table without a ``prompt`` column: the file's stem, or
    ``fallback`` for a table in memory."""
    return Path(source).stem if isinstance(source, (str, os.PathLike)) else fallback


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


def _weight(table: _Table, j: int) -> float:
    weight = _number(table, j, "weight")
    if weight < 0:
        raise table.error(j, "weight", f"must be >= 0, got {weight!r}")
    return weight


def _group_label(table: _Table, j: int, column: str) -> Any:
    """A voter's group: text or a number (labels are sorted and compared)."""
    value = _label(table, j, column)
    if not isinstance(value, (str, int, float)):
        raise table.error(j, column, f"expected a group label (text or a number), got {type(value).__name__}",
                          TypeError)
    return value


def _as_group_column(name: Any) -> str:
    """``group_column``: the name of a column that no loader reads as anything else."""
    if not isinstance(name, str):
        raise TypeError(f"group_column: expected a column name, got {type(name).__name__}")
    if not name or name in _RANKING_COLUMNS + _SCORE_COLUMNS + _WEAK_ORDER_COLUMNS:
        raise ValueError(f"group_column: {name!r} cannot hold groups (it is empty or a column the loaders read "
                         "otherwise)")
    return name


def _group_of(table: _Table, name: str) -> str | None:
    """The group column of a table read with ``group_column=name``: ``name`` if the
    table has it, None if it lacks the default one; naming a column it lacks is an error."""
    if name in table.columns:
        return name
    if name != GROUP_COLUMN:
        raise ValueError(f"group_column: {table.source} has no column {name!r} (columns: {table.header})")
    return None


def _same_per_voter(table: _Table, j: int, column: str, seen: dict[int, tuple[Any, int]], v: int, value: Any,
                    voter: str, prompt: Any) -> None:
    """A value that belongs to a voter, not to a row: the voter's first row sets it
    (``seen[v] = (value, row)``) and every later row must repeat it."""
    first = seen.setdefault(v, (value, j))
    if first[0] != value:
        raise table.error(j, column, f"{voter} of prompt {prompt!r} has {column} {first[0]!r} at "
                          f"{table.unit} {table.rows[first[1]]} and {value!r} here")


class _Grid:
    """One prompt of a long table of (voter, response, value) rows: voters and
    responses numbered in order of first appearance, the row of each cell and
    each voter's weight (with the row that set it)."""

    def __init__(self) -> None:
        self.voters: dict[Any, int] = {}
        self.responses: dict[Any, int] = {}
        self.cells: dict[tuple[int, int], int] = {}
        self.weights: dict[int, tuple[float, int]] = {}
        self.groups: dict[int, tuple[Any, int]] = {}

    def voter_weights(self, table: _Table, prompt: Any) -> NDArray[np.float64] | None:
        """The voters' weights (None without a ``weight`` column)."""
        if "weight" not in table.columns:
            return None
        weights = np.array([self.weights[v][0] for v in range(len(self.voters))])
        if not (weights > 0).any():
            raise ValueError(f"{table.source}: prompt {prompt!r}: all voter weights are zero")
        return weights

    def voter_groups(self, table: _Table, group: str | None, prompt: Any,
                     model: PreferenceModel) -> dict[Any, NDArray[Any]]:
        """``{prompt: each voter's group}``, or nothing without a group column."""
        if group is None:
            return {}
        labels = [self.groups[v][0] for v in range(len(self.voters))]
        return {prompt: _checked_groups(labels, model, f"{table.source}: prompt {prompt!r}: column {group!r}")}


def _grids(table: _Table, voter_column: str, value_column: str,
           group: str | None) -> tuple[dict[Any, _Grid], NDArray[np.float64]]:
    """The prompts of a table of (prompt, voter, response, value [, weight] [, group])
    rows, and the value of every row; a repeated (voter, response) pair of a prompt,
    or a voter whose weight or group changes, is an error naming both rows."""
    grids: dict[Any, _Grid] = {}
    values = np.empty(len(table), dtype=np.float64)
    has_weight = "weight" in table.columns
    for j in range(len(table)):
        prompt = _label(table, j, "prompt")
        grid = grids.setdefault(prompt, _Grid())
        voter = _label(table, j, voter_column)
        response = _label(table, j, "response")
        v = grid.voters.setdefault(voter, len(grid.voters))
        y = grid.responses.setdefault(response, len(grid.responses))
        previous = grid.cells.get((v, y))
        if previous is not None:
            raise table.error(j, "response", f"{voter_column} {voter!r} already rated response {response!r} in prompt "
                              f"{prompt!r} ({table.unit} {table.rows[previous]})")
        grid.cells[(v, y)] = j
        values[j] = _number(table, j, value_column)
        who = f"{voter_column} {voter!r}"
        if has_weight:
            _same_per_voter(table, j, "weight", grid.weights, v, _weight(table, j), who, prompt)
        if group is not None:
            _same_per_voter(table, j, group, grid.groups, v, _group_label(table, j, group), who, prompt)
    if not grids:
        raise ValueError(f"{table.source}: no data rows")
    return grids, values


#: Columns of a long table of rankings (or scores read as rankings).
_RANKING_COLUMNS = ("prompt", "voter", "response", "score", "rank", "weight")


def load_table(source: TableSource, policy: TableSource | None = None, group_column: str = GROUP_COLUMN) -> Dataset:
    """A long table of (prompt, voter, response, score or rank [, weight] [, group])
    rows — a CSV or Parquet path, a pandas DataFrame or a pyarrow Table — as one
    population of rankings per distinct ``prompt``; ``policy`` is an optional
    policy table (see :func:`load_policy_table`).

    The column ``group_column`` (default ``"group"``, optional under that name)
    holds each voter's group, the same on every row of the voter (a voter whose
    rows disagree is an error naming the column, the prompt and the voter):
    ``dataset.groups[prompt]`` has one label per voter, in the model's voter order."""
    group = _as_group_column(group_column)
    dataset = _rankings_dataset(_read_table(source, "source", _RANKING_COLUMNS + (group,)), group)
    if policy is not None:
        _add_policies(dataset, [policy], "policy")
    return dataset


def _rankings_dataset(table: _Table, group_column: str) -> Dataset:
    table.require("prompt", "voter", "response")
    kind = table.one_of("score", "rank")
    group = _group_of(table, group_column)
    grids, values = _grids(table, "voter", kind, group)
    models: dict[Any, PreferenceModel] = {}
    labels: dict[Any, list[Any]] = {}
    counts: dict[Any, int] = {}
    groups: dict[Any, NDArray[Any]] = {}
    for prompt, grid in grids.items():
        n, m = len(grid.voters), len(grid.responses)
        keys = np.full((n, m), np.nan)
        for (v, y), j in grid.cells.items():
            keys[v, y] = -values[j] if kind == "score" else values[j]
        missing = np.isnan(keys)
        if missing.any():  # unranked: one level below everything the voter ranked
            worst = np.nanmax(np.where(missing, -np.inf, keys), axis=1, initial=-np.inf)
            bottom = np.where(np.isfinite(worst), np.nextafter(worst, np.inf), 0.0)
            if not np.isfinite(bottom).all():
                raise ValueError(f"{table.source}: prompt {prompt!r}: values too large to rank unrated responses "
                                 "below them")
            keys = np.where(missing, bottom[:, None], keys)
        weights = grid.voter_weights(table, prompt)
        models[prompt] = RankingPopulation(keys, weights=weights)
        labels[prompt] = list(grid.responses)
        counts.update(_voter_count(prompt, weights, n))
        groups.update(grid.voter_groups(table, group, prompt, models[prompt]))
    return Dataset(models, responses=labels, voters=counts, groups=groups)


# -- reward-model scores -------------------------------------------------------------------------------

_SCORE_COLUMNS = ("prompt", "rater", "voter", "response", "score", "weight")


def load_scores(source: TableSource, temperature: float = 1.0, standardize: bool = False,
                group_column: str = GROUP_COLUMN) -> Dataset:
    """Reward-model (or human) scores as one Plackett–Luce mixture per prompt.

    ``source`` is a long table — CSV or Parquet path, pandas DataFrame or
    pyarrow Table — with the columns ``prompt``, ``response``, ``score`` and a
    rater column named ``rater`` (or ``voter``), optionally ``weight`` (per
    rater and prompt; default equal weights). Each rater of a prompt is one
    Plackett–Luce type whose utility for a response is ``score / temperature``:
    a rater chooses response ``y`` from a set ``S`` with probability
    ``exp(u_y) / sum_{s in S} exp(u_s)``.

    Every rater of a prompt must score every response of that prompt (the
    responses any rater scored there): a missing pair is a ``ValueError`` naming
    the prompt, the rater and the response; nothing is imputed. Responses keep
    their order of first appearance within the prompt and their labels
    (``dataset.responses[prompt]``).

    ``standardize=True`` replaces each rater's scores within a prompt by their
    z-scores over that prompt's responses (mean 0, population standard
    deviation 1) before dividing by the temperature, so that raters on
    different scales count alike. A rater whose scores for the prompt are all
    equal has no scale: their z-scores are all 0, a type indifferent between the
    responses (the same type the equal raw scores give without standardising).

    The column ``group_column`` (default ``"group"``, optional under that name)
    groups the raters — here the types — with one label per rater and prompt, the
    same on all of the rater's rows: ``dataset.groups[prompt]`` has one label per
    type of the mixture.
    """
    tau = as_positive_real(temperature, "temperature")
    standardise = as_flag(standardize, "standardize")
    group = _as_group_column(group_column)
    table = _read_table(source, "source", _SCORE_COLUMNS + (group,))
    return _scores_dataset(table, tau, standardise, group)


def _scores_dataset(table: _Table, temperature: float, standardize: bool, group_column: str) -> Dataset:
    table.require("prompt", "response", "score")
    rater = table.one_of("rater", "voter")
    group = _group_of(table, group_column)
    grids, values = _grids(table, rater, "score", group)
    models: dict[Any, PreferenceModel] = {}
    labels: dict[Any, list[Any]] = {}
    groups: dict[Any, NDArray[Any]] = {}
    for prompt, grid in grids.items():
        n, m = len(grid.voters), len(grid.responses)
        scores = np.full((n, m), np.nan)
        for (v, y), j in grid.cells.items():
            scores[v, y] = values[j]
        missing = np.argwhere(np.isnan(scores))
        if missing.size:
            v, y = (int(index) for index in missing[0])
            raise ValueError(f"{table.source}: prompt {prompt!r}: {rater} {list(grid.voters)[v]!r} has no score for "
                             f"response {list(grid.responses)[y]!r} (every {rater} must score every response of "
                             f"the prompt; {len(missing)} of {n * m} (rater, response) pairs are missing)")
        if standardize:
            scores = _z_scores(scores)
        try:
            models[prompt] = PlackettLuceMixture.from_scores(scores, temperature, grid.voter_weights(table, prompt))
        except ValueError as error:
            raise ValueError(f"{error} (prompt {prompt!r})") from None
        labels[prompt] = list(grid.responses)
        groups.update(grid.voter_groups(table, group, prompt, models[prompt]))
    return Dataset(models, responses=labels, groups=groups)


def _z_scores(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each row's z-scores; a constant row becomes all zeros."""
    z = np.zeros_like(scores)
    varies = scores.max(axis=1) > scores.min(axis=1)
    rows = scores[varies]
    # z-scores do not change under scaling: dividing by the largest magnitude first
    # keeps the variance of tiny (subnormal) or huge scores representable
    rows = rows / np.abs(rows).max(axis=1, keepdims=True)
    centred = rows - rows.mean(axis=1, keepdims=True)
    z[varies] = centred / np.sqrt((centred ** 2).mean(axis=1, keepdims=True))
    return z


# -- weak-order strings --------------------------------------------------------------------------------

class WeakOrders(NamedTuple):
    """Rankings parsed by :func:`parse_weak_orders`: the population and the label
    of each of its responses (``population`` response ``y`` is ``labels[y]``)."""

    population: RankingPopulation
    labels: list[Any]


_Groups = List[List[Tuple[str, int]]]  # a weak order: levels of (response name, position), best first


def _parse_weak_order(text: str) -> _Groups:
    """``"A>B=C>D"`` -> ``[[("A", 1)], [("B", 3), ("C", 5)], [("D", 7)]]``;
    raises ``_OrderError(position, message)`` for a malformed string."""
    if not text.strip():
        raise _OrderError(1, "empty ranking (expected e.g. 'A>B=C')")
    groups: _Groups = [[]]
    start = 0
    for position, character in enumerate(text + ">"):  # a final '>' closes the last name
        if character not in ">=":
            continue
        token = text[start:position]
        name = token.strip()
        if not name:
            if position == len(text):
                raise _OrderError(start, f"the ranking ends with {text[start - 1]!r}")
            raise _OrderError(position + 1, f"expected a response name before {character!r}")
        groups[-1].append((name, start + len(token) - len(token.lstrip()) + 1))
        if character == ">" and position < len(text):
            groups.append([])
        start = position + 1
    return groups


class _OrderError(Exception):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position, self.message = position, message


def _weak_order_ranks(orders: Sequence[_Groups], labels: list[Any] | None,
                      fail: Callable[[int, int, str], Exception]) -> tuple[NDArray[np.int64], list[Any]]:
    """Ranks (level of each response; responses an order does not name share the
    level below its last) and labels: ``labels`` as given (names matched by text),
    else in order of first appearance. ``fail(row, position, message)`` makes the
    error for a name that is repeated or not among ``labels``."""
    known = labels is not None
    index: dict[str, int] = {} if labels is None else {_text(label): y for y, label in enumerate(labels)}
    names: list[Any] = [] if labels is None else list(labels)
    for i, groups in enumerate(orders):
        seen: set[str] = set()
        for group in groups:
            for name, position in group:
                if name in seen:
                    raise fail(i, position, f"response {name!r} appears twice")
                seen.add(name)
                if name not in index:
                    if known:
                        raise fail(i, position, f"unknown response {name!r} (not among the labels)")
                    index[name] = len(names)
                    names.append(name)
    ranks = np.empty((len(orders), len(names)), dtype=np.int64)
    for i, groups in enumerate(orders):
        ranks[i] = len(groups)  # unnamed: tied one level below the last named group
        for level, group in enumerate(groups):
            ranks[i, [index[name] for name, _ in group]] = level
    return ranks, names


def parse_weak_orders(strings: Sequence[str], labels: Sequence[Any] | None = None,
                      weights: ArrayLike | None = None) -> WeakOrders:
    """Rankings written as ``"A>B=C>D"`` (``>``: strictly better, ``=``: tied;
    spaces around names are ignored), one string per voter, as a
    :class:`~ualign.RankingPopulation` with its response labels.

    ``labels`` fixes the responses and their order (names are matched by their
    text); by default the responses are the names in order of first appearance.
    A response a string does not name is tied with every other unnamed response
    one level below the string's last group — as PrefLib's ``.toi`` files read
    a partial order. ``weights`` are per string (relative). Names cannot contain
    ``>`` or ``=``. A malformed string (an empty name, a repeated name, an unknown
    name when ``labels`` is given, an empty string) is a ``ValueError`` naming the
    string and the 1-based character position: ``strings[3]: position 5: ...``."""
    if isinstance(strings, (str, bytes)) or not hasattr(strings, "__len__"):
        raise TypeError(f"strings: expected a sequence of strings like 'A>B=C', got {type(strings).__name__}")
    if len(strings) == 0:
        raise ValueError("strings: needs at least one ranking")
    orders = []
    for i, text in enumerate(strings):
        if not isinstance(text, str):
            raise TypeError(f"strings[{i}]: expected a string like 'A>B=C', got {type(text).__name__}")
        try:
            orders.append(_parse_weak_order(text))
        except _OrderError as error:
            raise ValueError(f"strings[{i}]: position {error.position}: {error.message}") from None
    if labels is not None and (isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__")):
        raise TypeError(f"labels: expected a sequence of response labels, got {type(labels).__name__}")
    ranks, names = _weak_order_ranks(
        orders, None if labels is None else list(labels),
        lambda i, position, message: ValueError(f"strings[{i}]: position {position}: {message}"))
    return WeakOrders(RankingPopulation(ranks, weights), names)


_WEAK_ORDER_COLUMNS = ("prompt", "ranking", "weight")


def load_weak_orders(source: TableSource, prompt: Any = None, group_column: str = GROUP_COLUMN) -> Dataset:
    """A table with one weak order per row (column ``ranking``, e.g. ``"A>B=C>D"``
    as in :func:`parse_weak_orders`), optionally ``prompt`` and ``weight`` (per
    row); a CSV or Parquet path, a pandas DataFrame or a pyarrow Table. Each
    prompt's responses are the names its rows use, in order of first appearance;
    those a row does not name are tied at its bottom. Without a ``prompt`` column
    all rows are one prompt named ``prompt`` (default: the file's stem, or
    ``"rankings"`` for a table in memory). Each row is one annotator; the column
    ``group_column`` (default ``"group"``, optional under that name) holds the
    annotator's group (``dataset.groups[prompt]``, one label per row of the prompt)."""
    group = _as_group_column(group_column)
    return _weak_orders_dataset(_read_table(source, "source", _WEAK_ORDER_COLUMNS + (group,)), source, prompt, group)


def _weak_orders_dataset(table: _Table, source: TableSource, prompt: Any, group_column: str) -> Dataset:
    table.require("ranking")
    group = _group_of(table, group_column)
    single = _default_prompt(source, "rankings") if prompt is None else prompt
    rows: dict[Any, list[int]] = {}
    parsed: list[_Groups] = []
    for j in range(len(table)):
        key = _label(table, j, "prompt") if "prompt" in table.columns else single
        text = table.columns["ranking"][j]
        if text is None:
            raise table.error(j, "ranking", "missing value")
        if not isinstance(text, str):
            raise table.error(j, "ranking", f"expected text like 'A>B=C', got {type(text).__name__}", TypeError)
        try:
            parsed.append(_parse_weak_order(text))
        except _OrderError as error:
            raise table.error(j, "ranking", f"position {error.position}: {error.message}") from None
        rows.setdefault(key, []).append(j)
    if not rows:
        raise ValueError(f"{table.source}: no data rows")
    models: dict[Any, PreferenceModel] = {}
    labels: dict[Any, list[Any]] = {}
    groups: dict[Any, NDArray[Any]] = {}
    for key, members in rows.items():
        ranks, names = _weak_order_ranks(
            [parsed[j] for j in members], None,
            lambda i, position, message, rows=members: table.error(rows[i], "ranking",  # type: ignore[misc]
                                                                    f"position {position}: {message}"))
        weights = None
        if "weight" in table.columns:
            weights = np.array([_weight(table, j) for j in members])
            if not (weights > 0).any():
                raise ValueError(f"{table.source}: prompt {key!r}: all weights are zero")
        models[key] = RankingPopulation(ranks, weights)
        labels[key] = names
        if group is not None:
            groups[key] = _checked_groups([_group_label(table, j, group) for j in members], models[key],
                                          f"{table.source}: prompt {key!r}: column {group!r}")
    return Dataset(models, responses=labels, groups=groups)


# -- choices -------------------------------------------------------------------------------------------

_CHOICE_COLUMNS = ("prompt", "voter", "chosen", "shown", "rejected", "weight")


def load_choices(source: TableSource, prompt: Any = None) -> dict[Any, Choices]:
    """Choice data as one :class:`~ualign.plackett_luce.Choices` per prompt.

    ``source`` (CSV or Parquet path, pandas DataFrame or pyarrow Table) has the
    column ``chosen`` and either ``shown`` — the responses offered, as text
    ``"A|B|C"`` (spaces around names ignored; ``chosen`` must be one of them) —
    or ``rejected`` — the other response of a pairwise comparison. Optional:
    ``prompt`` (without it all rows are one prompt named ``prompt``, default the
    file's stem or ``"choices"``), ``voter`` (rows of one voter share a type of
    a mixture; without it every row is its own voter) and ``weight`` (per voter,
    or per row without a ``voter`` column). Responses are numbered in order of
    first appearance within their prompt; ``choices.labels`` names them.

    A ``group`` column is an error: the types of the mixture fitted to choices
    are latent, not the annotators, so no label of an annotator names a type.
    To audit groups, fit each group's rows on their own (one mixture per group)."""
    table = _read_table(source, "source", _CHOICE_COLUMNS)
    if GROUP_COLUMN in table.header:
        raise ValueError(f"{table.source}: {table.where}: column {GROUP_COLUMN!r}: choice data cannot carry voter "
                         "groups (the fitted mixture's types are latent, not annotators); fit each group's rows "
                         "on their own")
    table.require("chosen")
    shape = table.one_of("shown", "rejected")
    single = _default_prompt(source, "choices") if prompt is None else prompt
    prompts: dict[Any, _ChoiceRows] = {}
    for j in range(len(table)):
        key = _label(table, j, "prompt") if "prompt" in table.columns else single
        rows = prompts.setdefault(key, _ChoiceRows())
        chosen = _label(table, j, "chosen")
        if shape == "shown":
            names = _shown_set(table, j)
            if _text(chosen) not in names:
                raise table.error(j, "chosen", f"{_text(chosen)!r} is not among the shown responses {names}")
            members = [rows.response(name, name) for name in names]
        else:
            rejected = _label(table, j, "rejected")
            if _text(rejected) == _text(chosen):
                raise table.error(j, "rejected", f"the same response as chosen ({_text(chosen)!r})")
            members = [rows.response(_text(chosen), chosen), rows.response(_text(rejected), rejected)]
        voter = _label(table, j, "voter") if "voter" in table.columns else None
        rows.add(table, j, rows.response(_text(chosen), chosen), members, voter, key)
    if not prompts:
        raise ValueError(f"{table.source}: no data rows")
    return {key: rows.choices(table, key) for key, rows in prompts.items()}


class _ChoiceRows:
    """The choices of one prompt as they are read."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.labels: list[Any] = []
        self.chosen: list[int] = []
        self.shown: list[list[int]] = []
        self.voter_of_row: list[int] = []
        self.voters: dict[Any, int] = {}
        self.weights: dict[int, tuple[float, int]] = {}  # per voter: (weight, row that set it)

    def response(self, text: str, label: Any) -> int:
        if text not in self.index:
            self.index[text] = len(self.labels)
            self.labels.append(label)
        return self.index[text]

    def add(self, table: _Table, j: int, chosen: int, shown: list[int], voter: Any, prompt: Any) -> None:
        v = self.voters.setdefault(len(self.chosen) if voter is None else voter, len(self.voters))
        self.chosen.append(chosen)
        self.shown.append(shown)
        self.voter_of_row.append(v)
        if "weight" in table.columns:
            _same_per_voter(table, j, "weight", self.weights, v, _weight(table, j), f"voter {voter!r}", prompt)

    def choices(self, table: _Table, prompt: Any) -> Choices:
        weights = None
        if self.weights:
            weights = np.array([self.weights[v][0] for v in range(len(self.voters))])
            if not (weights > 0).any():
                raise ValueError(f"{table.source}: prompt {prompt!r}: all weights are zero")
        return Choices(self.chosen, self.shown, len(self.labels), self.voter_of_row, weights, self.labels)


def _shown_set(table: _Table, j: int) -> list[str]:
    """The names of a ``shown`` cell ``"A|B|C"``."""
    text = table.columns["shown"][j]
    if text is None or (isinstance(text, str) and not text.strip()):
        raise table.error(j, "shown", "missing value")
    if not isinstance(text, str):
        raise table.error(j, "shown", f"expected text like 'A|B|C', got {type(text).__name__}", TypeError)
    names: list[str] = []
    start = 0
    for part in text.split("|"):
        name = part.strip()
        if not name:
            raise table.error(j, "shown", f"position {start + 1}: empty response name")
        if name in names:
            raise table.error(j, "shown", f"position {start + len(part) - len(part.lstrip()) + 1}: "
                              f"response {name!r} appears twice")
        names.append(name)
        start += len(part) + 1
    return names


def fit_choices(source: TableSource, n_types: int = 1, prompt: Any = None,
                **options: Any) -> tuple[Dataset, dict[Any, PlackettLuceFit]]:
    """:func:`load_choices`, then :func:`~ualign.fit_plackett_luce` per prompt
    (``n_types`` and ``options`` as there). Returns the fitted mixtures as a
    :class:`Dataset` (with the response labels) and each prompt's fit (its
    log-likelihood, convergence and whether the optimum is global or local)."""
    data = load_choices(source, prompt)
    fits = {key: fit_plackett_luce(choices, n_types, **options) for key, choices in data.items()}
    return (Dataset({key: fit.model for key, fit in fits.items()},
                    responses={key: choices.labels for key, choices in data.items()}), fits)


# -- policy tables -------------------------------------------------------------------------------------

_POLICY_COLUMNS = ("policy", "prompt", "response", "probability")


def load_policy_table(source: TableSource, dataset: Dataset) -> dict[Any, Any]:
    """Policies from a table (prompt, response, probability) — CSV or Parquet
    path, pandas DataFrame or pyarrow Table — for the prompts of ``dataset``,
    matched by prompt name and response label (absent responses get 0; each
    policy must sum to 1).

    Returns ``{prompt: policy}``; a table with a ``policy`` column holds several
    named policies and gives ``{name: {prompt: policy}}`` instead (the form
    :func:`ualign.audit_many` takes for several policies)."""
    sets, named = _policy_sets(source, dataset)
    return sets if named else sets.get(None, {})


def _policy_sets(source: TableSource, dataset: Dataset) -> tuple[dict[Any, dict[Any, NDArray[np.float64]]], bool]:
    """The policies of a policy table by name (None without a ``policy`` column),
    and whether it has that column."""
    table = _read_table(source, "source", _POLICY_COLUMNS)
    table.require("prompt", "response", "probability")
    named = "policy" in table.columns
    index: dict[str, dict[str, int]] = {}
    for prompt, labels in dataset.responses.items():
        index[_text(prompt)] = {_text(label): y for y, label in enumerate(labels)}
    names = {_text(prompt): prompt for prompt in dataset}
    sets: dict[Any, dict[Any, NDArray[np.float64]]] = {}
    seen: dict[tuple[Any, Any, int], int] = {}
    for j in range(len(table)):
        name = _label(table, j, "policy") if named else None
        prompt_text = _text(_label(table, j, "prompt"))
        if prompt_text not in names or prompt_text not in index:
            raise table.error(j, "prompt", f"unknown prompt {prompt_text!r}")
        prompt = names[prompt_text]
        response_text = _text(_label(table, j, "response"))
        y = index[prompt_text].get(response_text)
        if y is None:
            raise table.error(j, "response", f"prompt {prompt!r} has no response {response_text!r}")
        previous = seen.get((name, prompt, y))
        if previous is not None:
            owner = f" in policy {name!r}" if named else ""
            raise table.error(j, "response", f"response {response_text!r} of prompt {prompt!r} appears twice{owner} "
                              f"({table.unit} {table.rows[previous]})")
        seen[(name, prompt, y)] = j
        probability = _number(table, j, "probability")
        if probability < 0:
            raise table.error(j, "probability", f"must be >= 0, got {probability!r}")
        rows = sets.setdefault(name, {})
        if prompt not in rows:
            rows[prompt] = np.zeros(dataset[prompt].n_responses)
        rows[prompt][y] = probability
    for name, rows in sets.items():
        owner = f"policy {name!r} of " if named else "policy of "
        for prompt, row in rows.items():
            as_distribution(row, f"{table.source}: {owner}prompt {prompt!r}")
    return sets, named


def _add_policies(dataset: Dataset, sources: Sequence[TableSource], name: str) -> None:
    """Policy tables into ``dataset``: one table without a ``policy`` column sets
    ``dataset.policies``; otherwise every policy is named (by its ``policy``
    column, else by its file's stem, or ``name[j]`` for a table in memory) and
    goes into ``dataset.policy_sets``."""
    read = [_policy_sets(source, dataset) for source in sources]
    if len(read) == 1 and not read[0][1]:
        dataset.policies.update(read[0][0].get(None, {}))
        return
    for j, (source, (sets, named)) in enumerate(zip(sources, read)):
        if not named:
            sets = {_default_prompt(source, f"{name}[{j}]"): sets.get(None, {})}
        for key, rows in sets.items():
            if key in dataset.policy_sets:
                raise ValueError(f"{name}: policy {key!r} is given twice")
            dataset.policy_sets[key] = rows


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
    "MODELS",
    "PREFLIB_SUFFIXES",
    "TABLE_SUFFIXES",
    "GROUP_BY",
    "GROUP_COLUMN",
    "Dataset",
    "TableSource",
    "WeakOrders",
    "fit_choices",
    "load",
    "load_choices",
    "load_npz",
    "load_policy_table",
    "load_preflib",
    "load_scores",
    "load_table",
    "load_weak_orders",
    "merge",
    "parse_preflib",
    "parse_weak_orders",
    "save_npz",
    "write_preflib",
    "write_table",
]
