"""Validation and dtype policy: the one place where user input becomes kernel input.

Every check raises ``ValueError`` or ``TypeError`` whose message starts with the
name of the offending argument.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ._core_loader import core

#: Tie conventions (docs/concepts.md, "Tie conventions") and their codes in ``ualign._core``.
TIES = ("uniform", "half", "strict", "weak")
_MIRROR = {"uniform": "uniform", "half": "half", "strict": "weak", "weak": "strict"}

#: How far a probability vector may sum from 1 before it is rejected (within it,
#: the vector is renormalised once: see :func:`as_distribution`).
SIMPLEX_TOLERANCE = 1e-9

#: The largest supported number of draws ``k`` (2**53 - 1: every k and k + 1 is an
#: exact float64). Every k is checked against it (``as_k``), and the compiled core
#: checks the same bound again. Across the whole range 1 <= k <= K_MAX the exact
#: identities hold to 1e-12 (sum_y pi(y) u_y(pi) = 1/(k+1) under uniform ties, even
#: relative to 1/(k+1); win rates in [0, 1]; P[a > b] + P[b > a] + P[tie] = 1): the
#: kernels raise a level's policy mass to the k-th power through its complement
#: (the mass of the better levels), so that the top level's mass is exactly 1 and
#: no rounding of it is amplified k-fold. Uniform-tie win rates between two
#: operands are exact up to 10,000 draws in the two together (their quadrature
#: grows with the draws); beyond, they raise. The numbers of voters and responses
#: are bounded by memory only (responses by the 32-bit level storage); multisets
#: are arrays, so their sizes are bounded by memory too.
K_MAX = 2**53 - 1

# Integer dtypes the core reads without a copy; others are converted to int64.
_EXACT_KEY_DTYPES = (np.int64, np.int32, np.uint16, np.uint8)
_EXACT_ORDER_DTYPES = (np.int64, np.int32, np.uint32, np.uint16, np.uint8)


def tie_code(ties: Any) -> int:
    """The core's code for a tie convention name."""
    if not isinstance(ties, str):
        raise TypeError(f"ties: expected one of {TIES}, got {type(ties).__name__}")
    try:
        return int(core().TIE_CODES[ties])
    except KeyError:
        raise ValueError(f"ties: unknown tie convention {ties!r}; expected one of {TIES}") from None


def mirror_ties(ties: str) -> str:
    """The convention under which ``P[A > B] = 1 - P[B >' A]`` (strict <-> weak)."""
    tie_code(ties)
    return _MIRROR[ties]


def as_count(value: Any, name: str, minimum: int = 1) -> int:
    """A Python int >= minimum; bools and non-integral numbers are rejected."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    count = int(value)
    if count < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {count}")
    return count


def parse_decimal(text: str, maximum: int) -> Optional[int]:
    """The value of ``text`` if it is an integer 0..maximum written with the ASCII
    digits 0-9 and nothing else, else None. (``int`` would also take signs, spaces,
    underscores and other scripts' digits, and refuses or slowly converts very
    long digit strings; the length is checked before converting.)"""
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0")
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant or "0")
    return value if value <= maximum else None


def as_k(value: Any, name: str = "k") -> int:
    """A number of draws: a Python int in [1, K_MAX]."""
    k = as_count(value, name)
    if k > K_MAX:
        raise ValueError(f"{name}: must be <= K_MAX = 2**53 - 1 = {K_MAX} (the supported range of k), got {k}")
    return k


def as_index(value: Any, m: int, name: str) -> int:
    """A response index in [0, m)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: a response index must be an integer, got {type(value).__name__}")
    index = int(value)
    if not 0 <= index < m:
        raise ValueError(f"{name}: response index {index} is out of range [0, {m})")
    return index


def _numeric_array(value: Any, name: str) -> NDArray[Any]:
    try:
        array = np.asarray(value)
    except Exception as error:  # ragged nested sequences and the like
        raise ValueError(f"{name}: not an array ({error})") from None
    if array.dtype == object:
        raise TypeError(f"{name}: expected numbers, got objects (ragged or mixed input?)")
    if array.dtype.kind == "b":
        raise TypeError(f"{name}: expected numbers, got booleans")
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    return array


def _require_2d(array: NDArray[Any], name: str) -> None:
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-d array (voters x responses), got {array.ndim}-d")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name}: needs at least one voter and one response, got shape {array.shape}")


def as_keys(value: Any, name: str) -> NDArray[Any]:
    """Ranks or scores: integers kept exact (no float rounding of large values), or
    finite floats compared as they are."""
    array = _numeric_array(value, name)
    _require_2d(array, name)
    if array.dtype.kind == "f":
        array = np.ascontiguousarray(array, dtype=np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        return array
    if array.dtype.type in _EXACT_KEY_DTYPES:
        return np.ascontiguousarray(array)
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: values exceed the int64 range")
    return np.ascontiguousarray(array, dtype=np.int64)


def as_orders(value: Any, name: str = "orders") -> NDArray[Any]:
    """Orders (best first): integer response indices; permutations are checked by the core."""
    array = _numeric_array(value, name)
    _require_2d(array, name)
    if array.dtype.kind == "f":
        raise TypeError(f"{name}: response indices must be integers, got dtype {array.dtype}")
    if array.dtype.type in _EXACT_ORDER_DTYPES:
        return np.ascontiguousarray(array)
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: row 0 is not a permutation (index out of range)")
    return np.ascontiguousarray(array, dtype=np.int64)


def as_weights(value: Any, n: int, name: str = "weights") -> Optional[NDArray[np.float64]]:
    """Nonnegative finite weights, one per voter, with a positive sum (None: uniform)."""
    if value is None:
        return None
    array = _numeric_array(value, name).astype(np.float64, copy=False)
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    if (array < 0).any():
        raise ValueError(f"{name}: must be >= 0")
    if not array.max(initial=0.0) > 0:
        raise ValueError(f"{name}: must not all be zero")
    return np.ascontiguousarray(array)


def _renormalise(flat: NDArray[np.float64], offsets: NDArray[np.int64], totals: NDArray[np.float64]) -> None:
    """Renormalises in place each row ``flat[offsets[p]:offsets[p+1]]`` whose
    correctly rounded sum ``totals[p]`` is not 1: divided by it, then its largest
    entry set to the correctly rounded 1 - (the exact sum of the others). The row
    then sums to 1 within half an ulp of 1 and ``math.fsum`` of it is exactly 1.0,
    so renormalising is idempotent: a policy passed on from one function to
    another keeps its bits. (One implementation, in the core, serves one policy
    and a batch.)"""
    core().renormalise_rows(flat, offsets, totals)


def as_distribution(value: Any, name: str, size: Optional[int] = None) -> NDArray[np.float64]:
    """A probability vector: finite, >= 0, summing to 1 within SIMPLEX_TOLERANCE.

    A vector whose correctly rounded sum (``math.fsum``) is not exactly 1 is
    renormalised once, here: divided by its sum, its largest entry then absorbing
    the last rounding (see ``_renormalise``). Raised to the power k up to K_MAX, a
    policy's mass would otherwise carry its sum's error ``(1 + delta)^k``-fold.
    A vector whose ``math.fsum`` is 1.0 is used exactly as given.
    """
    array = _numeric_array(value, name).astype(np.float64, copy=False)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d probability vector, got {array.ndim}-d")
    if size is not None and array.shape[0] != size:
        raise ValueError(f"{name}: expected {size} entries, got {array.shape[0]}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    if (array < 0).any():
        raise ValueError(f"{name}: has negative entries (min {array.min():.3g})")
    total = math.fsum(array)
    if abs(total - 1.0) > SIMPLEX_TOLERANCE:
        raise ValueError(f"{name}: must sum to 1 within {SIMPLEX_TOLERANCE:g} (off by {total - 1.0:.3g})")
    if total == 1.0:
        return np.ascontiguousarray(array)
    renormalised = np.array(array, dtype=np.float64, order="C")  # a copy: the caller's array is left alone
    _renormalise(renormalised, np.array([0, array.shape[0]], dtype=np.int64), np.array([total]))
    return renormalised


def as_finite_vector(value: Any, name: str, size: int) -> NDArray[np.float64]:
    """A finite float vector of the given length."""
    array = _numeric_array(value, name).astype(np.float64, copy=False)
    if array.ndim != 1 or array.shape[0] != size:
        raise ValueError(f"{name}: expected shape ({size},), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return np.ascontiguousarray(array)


def as_distributions(value: Any, name: str) -> NDArray[np.float64]:
    """A non-empty 2-d array whose rows are probability vectors."""
    array = _numeric_array(value, name)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-d array (components x responses), got shape {array.shape}")
    return np.ascontiguousarray(np.stack([as_distribution(row, f"{name}[{t}]") for t, row in enumerate(array)]))


def as_multiset(value: Any, m: Optional[int], name: str) -> NDArray[np.int64]:
    """A multiset of response indices (repeats allowed, may be empty)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence of response indices, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nesting
        raise ValueError(f"{name}: expected a flat sequence of response indices (got nested sequences)") from None
    if array.dtype == object:
        raise TypeError(f"{name}: expected a flat sequence of response indices")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a flat sequence of response indices, got {array.ndim}-d")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: response indices must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: response index out of range")
    array = array.astype(np.int64)
    if (array < 0).any():
        raise ValueError(f"{name}: negative response index {int(array.min())}")
    if m is not None and (array >= m).any():
        raise ValueError(f"{name}: response index {int(array.max())} is out of range [0, {m})")
    return array


def as_ks(value: Any, name: str = "ks") -> NDArray[np.int64]:
    """A non-empty sequence of distinct sample counts k in [1, K_MAX] (an int is one k)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = [value]
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected integers k >= 1, got {type(value).__name__}")
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of integers k >= 1, got {type(value).__name__}") from None
    if not items:
        raise ValueError(f"{name}: needs at least one k")
    ks = [as_k(k, f"{name}[{j}]") for j, k in enumerate(items)]
    if len(set(ks)) != len(ks):
        raise ValueError(f"{name}: repeated values in {ks}")
    return np.array(ks, dtype=np.int64)


def as_choices(value: Any, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    """A non-empty sequence of distinct names from `allowed` (a string is one name)."""
    items = [value] if isinstance(value, str) else value
    try:
        names = list(items)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence of names from {allowed}, got {type(value).__name__}") from None
    if not names:
        raise ValueError(f"{name}: needs at least one of {allowed}")
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"{name}: expected names from {allowed}, got {type(item).__name__}")
        if item not in allowed:
            raise ValueError(f"{name}: unknown {item!r}; expected some of {allowed}")
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: repeated names in {names}")
    return tuple(names)


def as_distribution_batch(rows: list[Any], sizes: list[int], labels: list[Any],
                          name: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Many probability vectors of ragged sizes (rows[p] has sizes[p] entries),
    checked and renormalised as :func:`as_distribution` does one (the same bits),
    but vectorised. Returns the concatenation and the offsets (len(rows) + 1);
    errors name ``name[label]``."""
    arrays = []
    for row, size, label in zip(rows, sizes, labels):
        if type(row) is np.ndarray and row.dtype == np.float64 and row.shape == (size,):
            arrays.append(row)  # the common case, checked below with all the others
            continue
        array = _numeric_array(row, f"{name}[{label!r}]")
        if array.ndim != 1 or array.shape[0] != size:
            as_distribution(array, f"{name}[{label!r}]", size=size)  # raises with the right message
        arrays.append(array)
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    flat = np.ascontiguousarray(np.concatenate(arrays) if arrays else np.zeros(0), dtype=np.float64)
    bad = ~np.isfinite(flat) | (flat < 0)
    sums = core().exact_sums(np.where(bad, 0.0, flat), offsets)  # each equals math.fsum of its row
    flagged = (np.add.reduceat(bad.astype(np.int64), offsets[:-1]) > 0) | (np.abs(sums - 1.0) > SIMPLEX_TOLERANCE)
    suspects = np.flatnonzero(flagged) if arrays else np.zeros(0, dtype=np.int64)
    for p in suspects:  # the one-vector check decides, and words the message
        as_distribution(flat[offsets[p]:offsets[p + 1]], f"{name}[{labels[p]!r}]", size=sizes[p])
    _renormalise(flat, offsets, sums)
    return flat, offsets


def check_responses(size: int, m: int, name: str) -> None:
    """An operand built for `size` responses used with a model of `m`."""
    if size != m:
        raise ValueError(f"{name}: policy has {size} entries but the model has {m} responses")


def as_rewards(value: Any, name: str = "rewards") -> NDArray[np.float64]:
    """Plackett-Luce rewards (types x responses): finite reals, as C-ordered float64."""
    array = _numeric_array(value, name)
    _require_2d(array, name)
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values (rewards must be finite)")
    return array


def as_positive_real(value: Any, name: str) -> float:
    """A finite real number > 0 (bools rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {type(value).__name__}")
    number = float(value)
    if not (np.isfinite(number) and number > 0.0):
        raise ValueError(f"{name}: must be finite and > 0, got {number!r}")
    return number


# -- solver arguments (ualign.solvers) ---------------------------------------------------------------

def as_choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    """One name from `allowed` (a solver method, a tie convention subset, ...)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {allowed}, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name}: unknown {value!r}; expected one of {allowed}")
    return value


def as_tolerance(value: Any, name: str = "tol") -> float:
    """A stopping tolerance: a finite real in (0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number in (0, 1), got {type(value).__name__}")
    number = float(value)
    if not (np.isfinite(number) and 0.0 < number < 1.0):
        raise ValueError(f"{name}: must be in (0, 1), got {number!r}")
    return number


def as_optional_distribution(value: Any, name: str, size: int) -> Optional[NDArray[np.float64]]:
    """None, or a probability vector of `size` entries (a solver's starting point or reference)."""
    return None if value is None else as_distribution(value, name, size=size)


# -- data arguments (ualign.io, ualign.plackett_luce) ------------------------------------------------

def as_flag(value: Any, name: str) -> bool:
    """A bool (numpy's included); 0, 1 and other truthy values are rejected."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)


def as_index_array(value: Any, name: str, size: Optional[int] = None) -> NDArray[np.int64]:
    """A 1-d array of integers >= 0 (of ``size`` entries when given), as int64."""
    if isinstance(value, (list, tuple)) and not value:
        return np.zeros(0, dtype=np.int64)  # np.asarray([]) is float64
    array = _numeric_array(value, name)
    if array.dtype.kind == "f":
        raise TypeError(f"{name}: expected integers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got {array.ndim}-d")
    if size is not None and array.shape[0] != size:
        raise ValueError(f"{name}: expected {size} entries, got {array.shape[0]}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: index {int(array.max())} exceeds the int64 range")
    array = array.astype(np.int64)
    if array.size and int(array.min()) < 0:
        raise ValueError(f"{name}: negative index {int(array.min())} at position {int(np.argmin(array))}")
    return np.ascontiguousarray(array)


def as_choice_sets(chosen: Any, shown: Any, n_responses: Optional[int]
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """Choice observations: ``chosen[j]`` was picked out of the set ``shown[j]``
    (a sequence of distinct response indices containing ``chosen[j]``).

    Returns ``(chosen, members, offsets, m)``: observation ``j`` showed
    ``members[offsets[j]:offsets[j + 1]]``; ``m`` is ``n_responses`` or, when
    None, one more than the largest index shown."""
    picks = as_index_array(chosen, "chosen")
    if picks.shape[0] == 0:
        raise ValueError("chosen: needs at least one observation")
    if isinstance(shown, (str, bytes)) or not hasattr(shown, "__len__"):
        raise TypeError(f"shown: expected one sequence of response indices per observation, got "
                        f"{type(shown).__name__}")
    if len(shown) != picks.shape[0]:
        raise ValueError(f"shown: expected one set per observation ({picks.shape[0]}), got {len(shown)}")
    sets = [as_index_array(row, f"shown[{j}]") for j, row in enumerate(shown)]
    offsets = np.zeros(len(sets) + 1, dtype=np.int64)
    np.cumsum([row.shape[0] for row in sets], out=offsets[1:])
    members = np.concatenate(sets)
    largest = int(members.max()) if members.size else -1
    m = largest + 1 if n_responses is None else as_count(n_responses, "n_responses")
    if largest >= m:
        j = int(np.searchsorted(offsets, int(np.argmax(members)), side="right")) - 1
        raise ValueError(f"shown[{j}]: response index {largest} is out of range [0, {m})")
    observation = np.repeat(np.arange(len(sets)), np.diff(offsets))
    order = np.lexsort((members, observation))
    repeated = np.flatnonzero((np.diff(observation[order]) == 0) & (np.diff(members[order]) == 0))
    if repeated.size:
        j = int(observation[order][repeated[0]])
        raise ValueError(f"shown[{j}]: response {int(members[order][repeated[0]])} appears twice in {sets[j].tolist()}")
    found = np.bincount(observation, weights=members == picks[observation], minlength=len(sets))
    if (found == 0).any():
        j = int(np.argmin(found))
        raise ValueError(f"chosen[{j}]: response {int(picks[j])} is not among the shown {sets[j].tolist()}")
    return picks, members, offsets, m
