"""The ``ualign`` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._validate import TIES, mirror_ties
from .model import PreferenceModel

_AUDIT_HELP = """\
Audit the k-sample robust alignment of a policy on a population of rankings.

For k = 1..K it prints the robust level f(pi, k) = min_y P[pi^k > y], the bound
k/(k+1) that the best single-output policy attains, the worst-case opponent y
and that opponent's win rate P[y > pi^k] (under the mirrored tie convention, so
level = 1 - win rate).

INPUT is an .npz file holding exactly one of
  ranks   (n, m) integers or finite floats, lower is better, equal values tie
  orders  (n, m) integers, each row a permutation of 0..m-1, best first
  scores  (n, m) finite numbers, higher is better, equal values tie
and optionally
  weights (n,)   nonnegative voter weights (normalised; default uniform)
  policy  (m,)   the audited policy, a probability vector (default uniform)

With no INPUT it runs on the built-in default population
(ualign.datasets.default_population: 12 responses, 120 voters in three groups).
"""


def load_npz(path: str) -> Tuple[PreferenceModel, Optional[np.ndarray]]:
    """A RankingPopulation and the optional policy from an .npz file."""
    from .ranking import RankingPopulation

    with np.load(path, allow_pickle=False) as data:
        keys = [key for key in ("ranks", "orders", "scores") if key in data.files]
        if len(keys) != 1:
            raise ValueError(f"{path}: needs exactly one of ranks, orders, scores; found {keys or 'none'} "
                             f"among {sorted(data.files)}")
        weights = data["weights"] if "weights" in data.files else None
        policy = data["policy"] if "policy" in data.files else None
        key = keys[0]
        if key == "ranks":
            model = RankingPopulation(data[key], weights)
        elif key == "orders":
            model = RankingPopulation.from_orders(data[key], weights)
        else:
            model = RankingPopulation.from_scores(data[key], weights)
    return model, policy


def audit_rows(model: PreferenceModel, policy: np.ndarray, max_k: int, ties: str) -> List[Dict[str, Any]]:
    """One row per k: robust level, bound, worst-case opponent and its win rate."""
    from .game import worst_case_opponent

    rows = []
    for k in range(1, max_k + 1):
        y, level = worst_case_opponent(model, policy, k, ties)
        rows.append({"k": k, "robust_level": level, "bound": k / (k + 1), "opponent": y,
                     "opponent_win_rate": 1.0 - level})
    return rows


def _audit(args: argparse.Namespace) -> int:
    from ._validate import as_distribution
    from .datasets import default_population

    model: PreferenceModel
    if args.input is None:
        model, policy = default_population(), None
        source = "built-in default population"
    else:
        model, policy = load_npz(args.input)
        source = args.input
    m = model.n_responses
    if policy is None:
        policy, policy_name = np.full(m, 1.0 / m), "uniform"
    else:
        policy, policy_name = as_distribution(policy, "policy", size=m), "given"
    print(f"ualign audit: {source}: {model.n_voters} voters, {m} responses; policy: {policy_name}; "
          f"ties: {args.ties} (opponent's win rate under {mirror_ties(args.ties)!r})")
    print(f"{'k':>3}  {'robust level':>12}  {'k/(k+1)':>8}  {'worst opponent':>14}  {'its win rate':>12}")
    for row in audit_rows(model, policy, args.k, args.ties):
        print(f"{row['k']:>3}  {row['robust_level']:>12.6f}  {row['bound']:>8.6f}  "
              f"{row['opponent']:>14d}  {row['opponent_win_rate']:>12.6f}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ualign", description="Exact asymptotic universal alignment.")
    commands = parser.add_subparsers(dest="command", required=True)
    audit = commands.add_parser("audit", help="audit a policy's robust level for k = 1..K",
                                description=_AUDIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    audit.add_argument("input", nargs="?", help="an .npz population (see above); default: built-in")
    audit.add_argument("--k", type=_positive_int, default=8, help="largest number of samples K (default 8)")
    audit.add_argument("--ties", choices=TIES, default="uniform", help="tie convention (default uniform)")
    audit.set_defaults(run=_audit)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, TypeError, OSError) as error:
        print(f"ualign {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
