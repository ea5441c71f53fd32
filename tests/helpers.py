"""Random small instances shared by the oracle and property tests, the
conversion of oracle operand descriptions into ualign operands, and runs of a
script under several OpenMP thread counts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import oracle
import ualign as ua

RANK_STYLES = ("strict", "weak", "nondense", "float", "all_tied")
OPERAND_KINDS = ("int", "multiset", "empty", "product", "multiset_policy", "mixture")


def to_ua(operand: Any) -> Any:
    """An oracle operand description as a ualign operand."""
    if isinstance(operand, oracle.Prod):
        return ua.Product(list(operand.policy), operand.k)
    if isinstance(operand, oracle.Mix):
        return ua.ProductMixture([list(p) for p in operand.policies], list(operand.probabilities), operand.k)
    if isinstance(operand, oracle.Multi):
        return ua.MultisetPolicy([list(s) for s in operand.multisets], list(operand.probabilities))
    if isinstance(operand, (int, np.integer)):
        return int(operand)
    return list(operand)


def random_ranks(rng: np.random.Generator, n: int, m: int, style: str) -> np.ndarray:
    """Ranks of one of RANK_STYLES, in a dtype chosen at random among those that hold them."""
    if style == "strict":
        pool = np.array([-50, -3, 0, 5, 7, 12, 100, 1000])
        ranks = np.stack([rng.choice(pool, size=m, replace=False) for _ in range(n)])
        dtype = rng.choice(["int64", "int32", "int16"])
    elif style == "weak":
        levels = int(rng.integers(1, m + 1))
        ranks = rng.integers(0, levels, size=(n, m))
        dtype = rng.choice(["int64", "int32", "uint8", "uint16", "int8", "uint32"])
    elif style == "nondense":
        ranks = rng.choice(np.array([-3, 7, 100]), size=(n, m))
        dtype = rng.choice(["int64", "int32", "int16"])
    elif style == "float":
        ranks = rng.choice(np.array([-0.5, 2.25, 3.0, 1e9, -1e-300]), size=(n, m))
        dtype = rng.choice(["float64", "float64", "float32"])
    elif style == "all_tied":
        ranks = np.full((n, m), int(rng.integers(-5, 5)))
        dtype = "int64"
    else:
        raise ValueError(style)
    return ranks.astype(dtype)


def random_weights(rng: np.random.Generator, n: int) -> Optional[np.ndarray]:
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return None
    if kind == 1:
        return rng.random(n) + 0.01
    if kind == 2:  # some zero weights
        w = rng.random(n) * (rng.random(n) < 0.6)
        if not w.sum() > 0:
            w[int(rng.integers(0, n))] = 1.0
        return w
    w = rng.integers(0, 4, size=n)  # integer counts, zeros allowed
    if w.sum() == 0:
        w[int(rng.integers(0, n))] = 2
    return w


def random_policy(rng: np.random.Generator, m: int, zeros: bool = True) -> np.ndarray:
    p = rng.random(m)
    if zeros:
        p = p * (rng.random(m) < 0.7)
    if not p.sum() > 0:
        p[int(rng.integers(0, m))] = 1.0
    p = p / p.sum()
    assert abs(p.sum() - 1.0) < 1e-12
    return p


def random_multiset(rng: np.random.Generator, m: int, max_size: int = 4, allow_empty: bool = True) -> List[int]:
    size = int(rng.integers(0 if allow_empty else 1, max_size + 1))
    return [int(v) for v in rng.integers(0, m, size=size)]


def max_k(m: int, budget: int) -> int:
    """The largest k (<= 6) whose number of distinct multisets of size k stays within budget."""
    k = 1
    while k < 6 and math.comb(m + k, k + 1) <= budget:
        k += 1
    return k


def random_operand(rng: np.random.Generator, m: int, kind: str, budget: int = 60) -> Any:
    """An oracle operand of the given kind, small enough to enumerate."""
    if kind == "int":
        return int(rng.integers(0, m))
    if kind == "multiset":
        return random_multiset(rng, m, allow_empty=False)
    if kind == "empty":
        return []
    k = int(rng.integers(1, max_k(m, budget) + 1))
    if kind == "product":
        return oracle.prod(random_policy(rng, m), k)
    if kind == "mixture":
        t = int(rng.integers(1, 4))
        q = random_policy(rng, t)
        return oracle.mix([random_policy(rng, m) for _ in range(t)], q, k)
    if kind == "multiset_policy":
        count = int(rng.integers(1, 5))
        sets = [random_multiset(rng, m, max_size=min(k + 1, 5)) for _ in range(count)]
        if count >= 2 and rng.random() < 0.5:
            sets[1] = list(sets[0])  # the same multiset listed twice
        return oracle.multi(sets, random_policy(rng, count))
    raise ValueError(kind)


def random_instance(seed: int, n_max: int = 6, m_max: int = 5) -> Tuple[np.random.Generator, np.ndarray, Any]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, n_max + 1))
    m = int(rng.integers(1, m_max + 1))
    style = RANK_STYLES[seed % len(RANK_STYLES)]
    return rng, random_ranks(rng, n, m, style), random_weights(rng, n)


def outputs_by_thread_count(tmp_path: Path, script: str, threads: Sequence[int]) -> Dict[int, Dict[str, np.ndarray]]:
    """Runs `script`, which saves its arrays with np.savez to sys.argv[1], once per
    OMP_NUM_THREADS in `threads`, from tmp_path (so that `import ualign` finds the
    installed package, not the source tree); its arrays by thread count."""
    path = tmp_path / "outputs.py"
    path.write_text(script)
    results = {}
    for count in threads:
        target = tmp_path / f"out_{count}.npz"
        env = dict(os.environ, OMP_NUM_THREADS=str(count))
        subprocess.run([sys.executable, str(path), str(target)], cwd=tmp_path, env=env, check=True, timeout=300)
        with np.load(target) as data:
            results[count] = {key: data[key] for key in data.files}
    return results
