"""What can be compared: responses, multisets, product policies, multi-output
policies and mixtures of products (docs/concepts.md, "The alignment game")."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import as_distribution, as_distributions, as_index, as_k, as_multiset, check_responses


class Product:
    """``k`` i.i.d. draws from a single-output policy (the paper's ``pi^{⊗k}``)."""

    __slots__ = ("policy", "k")

    def __init__(self, policy: ArrayLike, k: int) -> None:
        self.policy: NDArray[np.float64] = as_distribution(policy, "policy")
        self.k: int = as_k(k, "k")
        self.policy.setflags(write=False)

    def __repr__(self) -> str:
        return f"Product(policy=<{self.policy.shape[0]} responses>, k={self.k})"


class MultisetPolicy:
    """A distribution over multisets of responses (the paper's multi-output policy).

    ``multisets`` is a sequence of sequences of response indices (repeats allowed;
    sizes may differ; an empty multiset loses to everything); ``probabilities``
    has one entry per multiset and sums to 1.
    """

    __slots__ = ("multisets", "probabilities")

    def __init__(self, multisets: Sequence[Sequence[int]] | ArrayLike, probabilities: ArrayLike) -> None:
        if isinstance(multisets, np.ndarray) and multisets.ndim == 2:
            rows = [multisets[j] for j in range(multisets.shape[0])]
        else:
            if isinstance(multisets, (str, bytes)) or not isinstance(multisets, (Sequence, np.ndarray)):
                raise TypeError("multisets: expected a sequence of multisets")
            rows = list(multisets)
        self.multisets: Tuple[NDArray[np.int64], ...] = tuple(
            as_multiset(row, None, f"multisets[{j}]") for j, row in enumerate(rows))
        self.probabilities: NDArray[np.float64] = as_distribution(
            probabilities, "probabilities", size=len(self.multisets))
        for array in (*self.multisets, self.probabilities):
            array.setflags(write=False)

    def __repr__(self) -> str:
        return f"MultisetPolicy(<{len(self.multisets)} multisets>)"


class ProductMixture:
    """Draw ``t`` with ``probabilities[t]``, then ``k`` i.i.d. draws from ``policies[t]``.

    This is the averaged policy sigma_T of no-regret self-play (Prop. D.3).
    """

    __slots__ = ("policies", "probabilities", "k")

    def __init__(self, policies: ArrayLike, probabilities: ArrayLike, k: int) -> None:
        self.policies: NDArray[np.float64] = as_distributions(policies, "policies")
        self.probabilities: NDArray[np.float64] = as_distribution(
            probabilities, "probabilities", size=self.policies.shape[0])
        self.k: int = as_k(k, "k")
        self.policies.setflags(write=False)
        self.probabilities.setflags(write=False)

    def __repr__(self) -> str:
        return f"ProductMixture(<{self.policies.shape[0]} components>, k={self.k})"


Operand = Union[int, Sequence[int], Product, MultisetPolicy, ProductMixture]

_EMPTY_POLICIES = np.zeros((0, 0), dtype=np.float64)
_EMPTY_F = np.zeros(0, dtype=np.float64)
_EMPTY_I = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class KernelOperand:
    """An operand in the form every model kernel reads: product terms and multiset terms."""

    policies: NDArray[np.float64]        # (T, m)
    product_probs: NDArray[np.float64]   # (T,)
    ks: NDArray[np.int64]                # (T,)
    items: NDArray[np.int64]             # concatenated multiset members
    offsets: NDArray[np.int64]           # (S + 1,)
    multiset_probs: NDArray[np.float64]  # (S,)

    def parts(self) -> Tuple[Any, ...]:
        return (self.policies, self.product_probs, self.ks, self.items, self.offsets, self.multiset_probs)

    @property
    def max_draws(self) -> int:
        sizes = np.diff(self.offsets)
        return int(max(self.ks.max(initial=0), sizes.max(initial=0)))


def _products(policies: NDArray[np.float64], probs: NDArray[np.float64], k: int) -> KernelOperand:
    return KernelOperand(np.ascontiguousarray(policies), probs, np.full(probs.shape[0], k, dtype=np.int64),
                         _EMPTY_I, np.zeros(1, dtype=np.int64), _EMPTY_F)


def _multisets(members: Sequence[NDArray[np.int64]], probs: NDArray[np.float64]) -> KernelOperand:
    offsets = np.zeros(len(members) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in members], out=offsets[1:])
    items = np.concatenate(members).astype(np.int64) if members else _EMPTY_I
    return KernelOperand(_EMPTY_POLICIES, _EMPTY_F, _EMPTY_I, items, offsets, probs)


def as_operand(value: Any, m: int, name: str) -> KernelOperand:
    """Any operand of ``win_rate``/``beats`` in kernel form, checked against a model of m responses."""
    if isinstance(value, Product):
        check_responses(value.policy.shape[0], m, name)
        return _products(value.policy[None, :], np.ones(1), value.k)
    if isinstance(value, ProductMixture):
        check_responses(value.policies.shape[1], m, name)
        return _products(value.policies, value.probabilities, value.k)
    if isinstance(value, MultisetPolicy):
        for j, members in enumerate(value.multisets):
            if members.size and members.max() >= m:
                raise ValueError(f"{name}: multisets[{j}] has response index {int(members.max())} "
                                 f"out of range [0, {m})")
        return _multisets(value.multisets, value.probabilities)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return _multisets([np.array([as_index(value, m, name)], dtype=np.int64)], np.ones(1))
    if isinstance(value, (bool, np.bool_, float, str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a response index, a multiset, a Product, a MultisetPolicy "
                        f"or a ProductMixture, got {type(value).__name__}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return as_operand(value.item(), m, name)
    return _multisets([as_multiset(value, m, name)], np.ones(1))
