"""The ``ualign`` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._validate import TIES, as_positive_real, mirror_ties, parse_decimal
from .io import GROUP_BY, GROUP_COLUMN, MODELS, PREFLIB_SUFFIXES
from .plot import PLOT_FORMATS, plot_format, response_name

_AUDIT_HELP = """\
Audit the k-sample robust alignment of policies on one or many prompts.

For k = 1..K it compares the robust level f(pi, k) = min_y P[pi^k > y] of the
given policy (if the input has one) with the policies of NLHF, RLHF, MPNE_k,
the optimal k-sample policy, the committee optimum (a multi-output policy) and
the uniform policy, next to the bound k/(k+1) that the best single-output
policy attains under uniform ties. With one prompt it also prints, for the
audited policy (the given one, else uniform), the worst-case opponent y, that
opponent's win rate P[y > pi^k] (under the mirrored tie convention, so level =
1 - win rate), the best response and the exploitability. With many prompts the
table shows the mean over prompts; --json/--csv/--plot keep every prompt.

INPUT files (several may be given; each prompt keeps its name):
  .soc .soi .toc .toi  PrefLib orders ('count: a,b,{c,d}'), one prompt per file,
                       named after the file's stem (by its name with the
                       extension where files share a stem, e.g. a .soi and a
                       .toc of one election); unranked alternatives are tied at
                       the bottom
  .npz                 one prompt (named as a PrefLib file): exactly one of
                         ranks   (n, m) lower is better, equal values tie
                         orders  (n, m) each row a permutation of 0..m-1, best first
                         scores  (n, m) higher is better, equal values tie
                         rewards (n, m) a Plackett-Luce mixture
                       and optionally weights (n,) (voter weights, normalised)
                       and policy (m,) (the audited policy, a probability vector)
  .csv .parquet        long tables: columns prompt, voter, response and score
                       (higher is better) or rank (lower is better), optional
                       weight; a missing (voter, response) pair is unranked.
                       A table with a ranking column ('A>B=C', one row per
                       annotator; optional prompt, weight) holds weak orders:
                       responses a row does not name tie at its bottom.
                       --model plackett-luce reads prompt, response, rater (or
                       voter), score as one Plackett-Luce type per rater with
                       utilities score / --temperature (--standardize: z-score
                       each rater's scores within the prompt first).
                       --policy TABLE adds policies (prompt, response, probability);
                       several --policy tables, or a policy column, audit several
                       named policies (methods policy:NAME; NAME is the policy
                       column's value, else the table's file name)

VOTER GROUPS (optional): a long table's group column (default 'group', another
by --groups COLUMN) gives each voter (rater, with --model plackett-luce) a
group, the same on all of the voter's rows. PrefLib files carry no voter
attributes: --groups FILE labels the voters of one PrefLib input (a text file
with one label per line: one per order line, or one per voter with each line's
count voters in turn), and --group-by file pools several PrefLib files of one
election (the same alternatives) into one prompt, each file's voters a group.
With groups, the report adds the worst group and its level f_g(pi, k) for every
method and k, and --json/--csv rows carry worst_group, worst_group_level and
group_levels (every group's level, labels as text). With --bootstrap the group
levels are point estimates; the intervals are the whole population's.

With no INPUT it runs on the built-in default population
(ualign.datasets.default_population: 12 responses, 120 voters in three groups).

OUTPUT: responses are numbered from 0 in the order of the input, with their
label (PrefLib alternative name, table response id) in parentheses where it
differs from the number; a progress bar (on stderr, only on a terminal) shows on
runs longer than a second; --quiet drops it and the notes.
"""

_REPRODUCE_HELP = """\
Check the paper's propositions numerically with ualign's exact kernels (and its
solvers where a check needs one) and print a pass/fail table with the figures
behind each check. Exits with status 1 if any check fails.
"""

#: Display order of the methods (the given policy first, uniform last).
_ORDER = ("given", "nlhf", "rlhf", "mpne", "optimal", "committee", "uniform")

#: Largest K of ``ualign audit --k``: the audit solves and prints every k = 1..K,
#: and the solvers' cost grows with k.
K_MAX = 100

#: Largest K for which the default method set includes the committee solver, whose
#: cost grows fastest with k (seconds per k at k ~ 30 on the default population).
COMMITTEE_DEFAULT_K_MAX = 16
#: Most prompts for which the default method set includes the committee solver: one
#: (prompt, k) takes from milliseconds to its certificate's time limit (5 s of pricing
#: on a 64-response pool from k = 6 on), so a many-prompt audit would spend hours on it.
COMMITTEE_DEFAULT_PROMPTS_MAX = 8

_LIMITS_HELP = f"""
LIMITS: K (--k) is an integer from 1 to {K_MAX}. The solvers' cost grows with k,
the committee's fastest: the default method set includes committee only for
K <= {COMMITTEE_DEFAULT_K_MAX} and at most {COMMITTEE_DEFAULT_PROMPTS_MAX} prompts (name it in --methods to run it
anyway: up to about 5 s per prompt and k of pricing on large pools, which may take
minutes or hours).
"""


def _methods(text: str | None, has_policy: bool, max_k: int, named: Sequence[str] = (),
             n_prompts: int = 1) -> tuple[tuple[str, ...], str | None]:
    """The methods to compare and, when the default leaves one out, a note saying
    so; ``named`` are the methods of named policies, for which 'given' stands."""
    from .audit import METHODS, resolve_methods

    note = None
    if text is None:
        methods = tuple(method for method in _ORDER if method != "given" or has_policy)
        if max_k > COMMITTEE_DEFAULT_K_MAX or n_prompts > COMMITTEE_DEFAULT_PROMPTS_MAX:
            methods = tuple(method for method in methods if method != "committee")
            note = (f"committee left out: by default it runs only for K <= {COMMITTEE_DEFAULT_K_MAX} and at most "
                    f"{COMMITTEE_DEFAULT_PROMPTS_MAX} prompts (up to ~5 s per prompt and k); name it in --methods "
                    "to include it")
    else:
        methods = tuple(name.strip() for name in text.split(",") if name.strip())
        allowed = METHODS + tuple(named)
        for name in methods:
            if name not in allowed:
                raise ValueError(f"--methods: unknown method {name!r}; expected some of {', '.join(allowed)}")
        if "given" in methods and not has_policy:
            raise ValueError("--methods: 'given' needs an input with a policy")
    return resolve_methods(methods, tuple(named) or (("given",) if has_policy else ())), note


def _load_inputs(args: argparse.Namespace) -> Any:
    from .io import Dataset, load

    if args.model != "plackett-luce":
        if args.temperature is not None:
            raise ValueError("--temperature: needs --model plackett-luce")
        if args.standardize:
            raise ValueError("--standardize: needs --model plackett-luce")
    if not args.input:
        if args.policy is not None:
            raise ValueError("--policy: needs an input table")
        for given, option in ((args.groups, "--groups"), (args.group_by, "--group-by")):
            if given is not None:
                raise ValueError(f"{option}: needs input files")
        if args.model != "rankings":
            raise ValueError(f"--model: {args.model} needs an input table")
        from .datasets import default_groups, default_population

        model = default_population()
        return Dataset({"default": model}, responses={"default": list(range(model.n_responses))},
                       groups={"default": default_groups()})
    scores = args.model == "plackett-luce"
    group_column, group_labels = GROUP_COLUMN, None
    if args.groups is not None:
        preflib = [path for path in args.input if Path(path).suffix.lower() in PREFLIB_SUFFIXES]
        if not preflib:
            group_column = args.groups  # long tables: a column name
        elif len(args.input) == 1 and args.group_by is None:
            group_labels = args.groups  # one PrefLib file: a labels file
        else:
            raise ValueError("--groups: with PrefLib input it names a labels file for a single PrefLib file (files "
                             "of one election are grouped by file with --group-by file)")
    return load(args.input, policy=args.policy, model=args.model, temperature=args.temperature,
                standardize=args.standardize if scores else None, group_column=group_column,
                group_by=args.group_by, group_labels=group_labels)


#: Longest file name or path the header and the plot title show in full.
_NAME_WIDTH = 40


def _shorten(text: str, width: int = _NAME_WIDTH) -> str:
    """``text`` cut to ``width`` characters, keeping its end (a file's name and extension)."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


def _describe_inputs(paths: Sequence[str]) -> str:
    """The inputs in a few words: the path of one file; the count and the first
    two names of several (their full list is in --json's ``inputs``)."""
    if not paths:
        return "built-in default population"
    if len(paths) == 1:
        return paths[0]
    names = [_shorten(Path(path).name) for path in paths[:2]]
    return f"{len(paths)} files: {', '.join(names)}{', …' if len(paths) > 2 else ''}"


def _count(values: Sequence[int], unit: str) -> str:
    """``"475 voters"`` or, over several prompts, ``"20-475 voters"``."""
    low, high = min(values), max(values)
    return f"{low}{'' if low == high else f'-{high}'} {unit}{'' if high == 1 else 's'}"


def _connect(address: str | None) -> Any:
    if address is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler: needs dask.distributed (pip install 'ualign[dask]')") from None
    return Client(address, timeout="30s")  # type: ignore[no-untyped-call, unused-ignore]


def _audit(args: argparse.Namespace) -> int:
    from .audit import BOOTSTRAP_COLUMNS, COLUMNS, GROUP_COLUMNS, audit_columns, policy_method

    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401  (fail before the work, not after)
        except ImportError:
            raise ImportError("--plot: needs matplotlib (pip install 'ualign[plot]')") from None
    dataset = _load_inputs(args)
    source = _describe_inputs(args.input)
    prompts = list(dataset)
    policies = dataset.policy_list()
    audited = dataset.audit_policies()
    has_policy = audited is not None
    methods, note = _methods(args.methods, has_policy, args.k, [policy_method(name) for name in dataset.policy_sets],
                             len(dataset))
    ks = list(range(1, args.k + 1))
    notes = not args.quiet
    # a bar redrawn with carriage returns only garbles a log or a pipe
    progress = notes and sys.stderr.isatty()
    client = _connect(args.scheduler)
    start = time.perf_counter()
    try:
        columns, _ = audit_columns(dataset, audited, ks, methods, client,
                                   ties=args.ties, progress=progress, rlhf_beta=args.rlhf_beta,
                                   n_boot=args.bootstrap, seed=args.seed)
    finally:
        if client is not None:
            client.close()
    elapsed = time.perf_counter() - start
    columns["prompt"] = _objects(prompts)[columns["prompt"]]  # positions -> prompt names

    # voters as the data counts them (a PrefLib file's counts), not its distinct rows
    voters = _count([dataset.voters.get(p, dataset[p].n_voters) for p in prompts], "voter")
    responses = _count([dataset[p].n_responses for p in prompts], "response")
    if len(prompts) == 1:
        print(f"ualign audit: {source}: {voters}, {responses}; "
              f"policy: {'given' if has_policy else 'none given'}; ties: {args.ties}")
    else:
        print(f"ualign audit: {source}: {len(prompts)} prompts, {responses}, {voters}; "
              f"{sum(p is not None for p in policies)} given policies; ties: {args.ties}")
    if dataset.groups:
        print(_describe_groups(dataset, prompts))
    if note is not None and notes:
        print(f"note: {note}")
    _print_levels(columns, methods, ks, len(prompts))
    if dataset.groups:
        _print_worst_groups(columns, methods, ks, len(prompts), len(dataset.groups))
    if args.bootstrap is not None:
        _print_intervals(columns, methods, ks, len(prompts), args.bootstrap)
        if dataset.groups and notes:
            print("note: the intervals are of the whole population's level; the group levels are point estimates")
    if notes:
        _print_nlhf_ranges(columns)
    audited = "given" if "given" in methods else "uniform" if "uniform" in methods else None
    if len(prompts) == 1 and audited is not None:
        _print_policy(columns, audited, ks, args.ties, dataset.responses.get(prompts[0]))
    print(f"({len(prompts)} prompt{'s' if len(prompts) != 1 else ''} x {len(methods)} methods x {len(ks)} k "
          f"in {elapsed:.2f} s{' on ' + args.scheduler if args.scheduler else ''})")
    records = _records(columns, dataset, COLUMNS + (BOOTSTRAP_COLUMNS if args.bootstrap is not None else ())
                       + (GROUP_COLUMNS if dataset.groups else ()))
    if args.json is not None:
        _write_records(args.json, records, {"source": source, "inputs": list(args.input), "ties": args.ties,
                                            "ks": ks, "methods": list(methods), "prompts": len(prompts)})
    if args.csv is not None:
        _write_csv(args.csv, records)
    if args.plot is not None:
        from .plot import plot_levels

        title = f"ualign audit: {source}" if len(prompts) == 1 else f"ualign audit: {source} ({len(prompts)} prompts)"
        plot_levels(columns, args.plot, title=title, ties=args.ties, audited=audited,
                    labels=dataset.responses.get(prompts[0]) if len(prompts) == 1 else None)
    return 0


def _describe_groups(dataset: Any, prompts: list[Any]) -> str:
    """The voter groups in a line: their labels for one prompt, else how many prompts have groups."""
    if len(prompts) == 1:
        labels = [str(label) for label in np.unique(dataset.groups[prompts[0]]).tolist()]
        shown = ", ".join(_shorten(label, _LABEL_WIDTH) for label in labels[:8])
        return f"voter groups: {len(labels)} ({shown}{', …' if len(labels) > 8 else ''})"
    return f"voter groups on {len(dataset.groups)} of {len(prompts)} prompts"


#: Longest group label the worst-group table shows in full.
_LABEL_WIDTH = 16


def _level(value: Any) -> str:
    """A level with six decimals; a rounding residue just below 0 (a level is a
    probability) prints as 0.000000, not -0.000000."""
    return f"{round(float(value), 6) + 0.0:.6f}"


def _print_worst_groups(columns: dict[str, np.ndarray], methods: Sequence[str], ks: list[int], n_prompts: int,
                        n_grouped: int) -> None:
    """The worst group and its level per method and k (one prompt), or the mean of
    the worst groups' levels over the prompts with groups."""
    levels = columns["worst_group_level"]
    if n_prompts == 1:
        print("worst group and its robust level f_g(pi, k) by method:")
        names = [_shorten(str(label), _LABEL_WIDTH) for label in columns["worst_group"]]
        width = max(9, *(len(name) + 9 for name in names))

        def cell(rows: np.ndarray) -> str:
            j = int(np.flatnonzero(rows)[0])
            return f"{names[j]} {_level(levels[j])}"
    else:
        print(f"mean worst-group level f_g(pi, k) over the {n_grouped} prompt{'s' if n_grouped != 1 else ''} "
              "with groups by method:")
        grouped = ~np.isnan(levels.astype(np.float64))
        width = 9

        def cell(rows: np.ndarray) -> str:
            return _level(np.mean(levels[rows & grouped])) if (rows & grouped).any() else "-"
    print(f"{'k':>3}" + "".join(f"  {method:>{width}}" for method in methods))
    for k, line in zip(ks, _cells_by_k(columns, methods, ks, width, cell)):
        print(f"{k:>3}" + line)


def _objects(values: list[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _print_levels(columns: dict[str, np.ndarray], methods: Sequence[str], ks: list[int], n_prompts: int) -> None:
    what = "robust level f(pi, k)" if n_prompts == 1 else f"mean robust level f(pi, k) over {n_prompts} prompts"
    print(f"{what} by method:")
    print(f"{'k':>3}  {'k/(k+1)':>8}" + "".join(f"  {method:>9}" for method in methods))
    for k, cells in zip(ks, _cells_by_k(columns, methods, ks, 9,
                                        lambda rows: _level(np.mean(columns["robust_level"][rows])))):
        print(f"{k:>3}  {k / (k + 1):>8.6f}" + cells)


def _cells_by_k(columns: dict[str, np.ndarray], methods: Sequence[str], ks: list[int], width: int,
                cell: Callable[[np.ndarray], str]) -> list[str]:
    """One line of right-aligned cells per k, one per method: ``cell(rows)`` of the
    method's rows at that k, or "-" where it has none."""
    lines = []
    for k in ks:
        line = ""
        for method in methods:
            rows = (columns["method"] == method) & (columns["k"] == k)
            line += f"  {cell(rows) if rows.any() else '-':>{width}}"
        lines.append(line)
    return lines


def _print_intervals(columns: dict[str, np.ndarray], methods: Sequence[str], ks: list[int], n_prompts: int,
                     n_boot: int) -> None:
    what = "" if n_prompts == 1 else f" (means of the bounds over {n_prompts} prompts)"
    print(f"95% percentile bootstrap intervals of f(pi, k), {n_boot} replicates{what}:")
    print(f"{'k':>3}" + "".join(f"  {method:>17}" for method in methods))
    for k, cells in zip(ks, _cells_by_k(columns, methods, ks, 17, lambda rows: (
            f"{np.mean(columns['level_ci_low'][rows]):.4f}-{np.mean(columns['level_ci_high'][rows]):.4f}"))):
        print(f"{k:>3}" + cells)


#: Level ranges narrower than this are rounding, not several lotteries.
_SPREAD = 1e-9


def _print_nlhf_ranges(columns: dict[str, np.ndarray]) -> None:
    """Where a maximal lottery is not unique, the NLHF level depends on which one is
    played: say so, with the range of levels over all of them."""
    spread = (columns["method"] == "nlhf") & (columns["level_high"] - columns["level_low"] > _SPREAD)
    if not spread.any():
        return
    prompts = list(dict.fromkeys(columns["prompt"][spread].tolist()))
    print(f"note: the maximal lottery is not unique on {len(prompts)} prompt{'s' if len(prompts) != 1 else ''}; "
          "the nlhf column is the level of the one returned, over all of them it ranges (k: low-high):")
    for prompt in prompts[:5]:
        rows = spread & (columns["prompt"] == prompt)
        ranges = ", ".join(f"{k}: {low:.6f}-{high:.6f}" for k, low, high in
                           zip(columns["k"][rows], columns["level_low"][rows], columns["level_high"][rows]))
        print(f"  {prompt}: {ranges}")
    if len(prompts) > 5:
        print(f"  ... and {len(prompts) - 5} more (see the level_low / level_high columns of --json / --csv)")


def _print_policy(columns: dict[str, np.ndarray], method: str, ks: list[int], ties: str,
                  labels: Sequence[Any] | None) -> None:
    print(f"{method} policy: worst-case opponent (its win rate under {mirror_ties(ties)!r} ties), "
          f"best response, exploitability:")
    rows = [int(np.flatnonzero((columns["method"] == method) & (columns["k"] == k))[0]) for k in ks]
    opponents = [response_name(int(columns["opponent"][j]), labels) for j in rows]
    best = [response_name(int(columns["best_response"][j]), labels) for j in rows]
    opponent_width = max(len("opponent"), *map(len, opponents))
    best_width = max(len("best resp."), *map(len, best))
    print(f"{'k':>3}  {'robust level':>12}  {'opponent':<{opponent_width}}  {'its win rate':>12}  "
          f"{'best resp.':<{best_width}}  {'exploitability':>14}")
    for k, j, opponent, response in zip(ks, rows, opponents, best):
        level = float(columns["robust_level"][j])
        print(f"{k:>3}  {level:>12.6f}  {opponent:<{opponent_width}}  {1.0 - level:>12.6f}  "
              f"{response:<{best_width}}  {float(columns['exploitability'][j]):>14.3e}")


def _records(columns: dict[str, np.ndarray], dataset: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    records = []
    for j in range(columns["k"].shape[0]):
        record: dict[str, Any] = {}
        for name in names:
            value = columns[name][j]
            if isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, (np.floating, float)):
                value = None if math.isnan(float(value)) else float(value)
            elif isinstance(value, np.str_):
                value = str(value)
            record[name] = value
        if "worst_group" in record:  # group labels as text
            worst, levels = record["worst_group"], record["group_levels"]
            record["worst_group"] = None if worst is None else str(_plain(worst))
            record["group_levels"] = None if levels is None else {str(label): level for label, level in levels.items()}
        labels = dataset.responses.get(record["prompt"])
        if labels is not None:
            record["opponent_label"] = _plain(labels[record["opponent"]])
            record["best_response_label"] = _plain(labels[record["best_response"]])
        records.append(record)
    return records


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _write_records(path: str, records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    if Path(path).suffix.lower() == ".csv":
        _write_csv(path, records)
        return
    head = json.dumps(meta, default=str)[:-1]  # one row per line keeps big files readable
    rows = ",\n  ".join(json.dumps(record, default=str) for record in records)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{head}, \"rows\": [\n  {rows}\n]}}\n")


def _write_csv(path: str, records: list[dict[str, Any]]) -> None:
    import csv

    names = list(records[0]) if records else []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for record in records:
            writer.writerow(["" if record[name] is None else repr(record[name]) if isinstance(record[name], float)
                             else json.dumps(record[name]) if isinstance(record[name], dict)
                             else record[name] for name in names])


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import print_report, run_checks

    results = run_checks(quick=args.quick)
    print_report(results)
    return 1 if any(result.passed is False for result in results) else 0


def _sample_count(text: str) -> int:
    """``--k``: an integer 1..K_MAX in the digits 0-9."""
    value = parse_decimal(text, K_MAX)
    if value is None or value < 1:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {K_MAX}, got {shown!r}")
    return value


def _plot_path(text: str) -> str:
    """``--plot``: a path whose extension names a format plot_levels writes."""
    try:
        plot_format(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a path ending in {', '.join(PLOT_FORMATS)}, "
                                         f"got {text!r}") from None
    return text


def _positive_real(text: str) -> float:
    """``--rlhf-beta``, ``--temperature``: a finite number > 0."""
    try:
        return as_positive_real(float(text), "BETA")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ualign", description="Exact asymptotic universal alignment.")
    parser.add_argument("--version", action="version", version=f"ualign {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="audit policies' robust levels for k = 1..K",
                                description=_AUDIT_HELP + _LIMITS_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.add_argument("input", nargs="*", help="input files (see above); default: the built-in population")
    audit.add_argument("--policy", metavar="TABLE", action="append",
                       help="policy table (prompt, response, probability [, policy]) for long tables; repeat it to "
                            "audit several named policies")
    audit.add_argument("--model", choices=MODELS, default="rankings",
                       help="how long tables are read: rankings (default: votes, scores read as rankings, or "
                            "weak-order strings) or plackett-luce (scores as one Plackett-Luce type per rater)")
    audit.add_argument("--temperature", type=_positive_real, metavar="T",
                       help="with --model plackett-luce: utilities are score / T (default 1)")
    audit.add_argument("--standardize", action="store_true",
                       help="with --model plackett-luce: z-score each rater's scores within each prompt first")
    audit.add_argument("--groups", metavar="COLUMN|FILE",
                       help=f"voter groups: the group column of long tables (default {GROUP_COLUMN!r}, used where "
                            "present), or for one PrefLib input a labels file (one label per order line or per voter)")
    audit.add_argument("--group-by", choices=GROUP_BY,
                       help="file: pool PrefLib files of one election (the same alternatives) into one prompt, "
                            "each file's voters a group")
    audit.add_argument("--k", type=_sample_count, default=8,
                       help=f"largest number of samples K, an integer from 1 to {K_MAX} (default 8)")
    audit.add_argument("--methods", metavar="M,M,...",
                       help="methods to compare (default: given if present, then every solver, uniform; "
                            f"committee only for K <= {COMMITTEE_DEFAULT_K_MAX} and at most "
                            f"{COMMITTEE_DEFAULT_PROMPTS_MAX} prompts): "
                            "given, uniform, nlhf, rlhf, mpne, optimal, committee")
    audit.add_argument("--ties", choices=TIES, default="uniform", help="tie convention (default uniform)")
    audit.add_argument("--rlhf-beta", type=_positive_real, default=0.1, metavar="BETA",
                       help="KL strength of the RLHF policy, pi ∝ exp(r/BETA) (default 0.1)")
    audit.add_argument("--json", metavar="PATH",
                       help="write every (prompt, method, k) row as JSON (CSV if PATH ends in .csv)")
    audit.add_argument("--csv", metavar="PATH", help="write every (prompt, method, k) row as CSV")
    audit.add_argument("--plot", metavar="PATH", type=_plot_path,
                       help="plot robust level against k as PNG, PDF or SVG, by PATH's extension (needs matplotlib)")
    audit.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no notes")
    audit.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster (e.g. tcp://host:8786)")
    audit.add_argument("--bootstrap", type=_sample_count, metavar="B",
                       help="add 95%% percentile bootstrap intervals from B replicates of each population "
                            "(voters resampled; solver policies re-solved per replicate)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the bootstrap replicates (default 0)")
    audit.set_defaults(run=_audit)
    reproduce = commands.add_parser("reproduce", help="check the paper's propositions numerically",
                                    description=_REPRODUCE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    reproduce.add_argument("--quick", action="store_true", help="smaller instances (a few seconds)")
    reproduce.set_defaults(run=_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (e.g. `ualign audit | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, TypeError, OSError, ImportError) as error:
        print(f"ualign {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
