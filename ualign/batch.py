"""Prompts of ragged sizes as one batch: the unit every solver iterates on.

A :class:`PromptBatch` holds ``P`` preference models (one per prompt, ``m_p``
responses each) and offers their exact kernels on padded ``(P, W)`` arrays,
``W = max_p m_p``; entries past ``m_p`` are zero on input and output. Populations
of rankings go to the compiled batch kernels (one call for all prompts, OpenMP
across prompts, the bits of the per-prompt kernels); other models are called one
by one. A single prompt is a batch of one.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from . import _core_loader
from ._validate import as_distribution_batch, tie_code
from .model import PreferenceModel
from .operands import _products

Array = NDArray[np.float64]
Rows = NDArray[np.intp]

_ONE = np.ones(1)


class PromptBatch:
    """The models of ``P`` prompts and their kernels on padded arrays.

    ``rows`` arguments select prompts (indices into the batch); results have one
    row per selected prompt. Counts the kernel passes it makes, per prompt.
    """

    def __init__(self, models: Sequence[PreferenceModel]) -> None:
        from .ranking import RankingPopulation

        self.models: List[PreferenceModel] = list(models)
        self.sizes = np.array([model.n_responses for model in self.models], dtype=np.int64)
        self.width = int(self.sizes.max())
        self.mask: NDArray[np.bool_] = np.arange(self.width)[None, :] < self.sizes[:, None]
        self.compiled = np.array([type(model) is RankingPopulation for model in self.models], dtype=bool)
        #: the compiled prompts' stores, listed once; _store_index maps a prompt to its place there
        self._stores = _core_loader.core().StoreList([model._store for model, compiled  # type: ignore[attr-defined]
                                                      in zip(self.models, self.compiled) if compiled])
        self._store_index = np.cumsum(self.compiled) - 1
        self.voters = np.array([model.n_voters for model in self.models], dtype=np.int64)
        #: kernel passes (utility evaluations or VJPs) per prompt, and Jacobian rows
        self.passes = np.zeros(len(self.models), dtype=np.int64)
        #: estimated seconds of one utility pass per prompt (the models' cost model)
        self.pass_seconds = np.array([model._pass_seconds() for model in self.models])

    def __len__(self) -> int:
        return len(self.models)

    @property
    def all(self) -> Rows:
        return np.arange(len(self.models))

    def _split(self, rows: Rows) -> Tuple[Rows, Rows]:
        """Positions (within ``rows``) of compiled and of other prompts."""
        compiled = self.compiled[rows]
        return np.flatnonzero(compiled), np.flatnonzero(~compiled)

    def _compiled_rows(self, rows: Rows, fast: Rows, *arrays: NDArray[Any]) -> Tuple[Rows, Tuple[NDArray[Any], ...]]:
        """The compiled prompts' places in the store list and their rows of ``arrays``
        (the arrays themselves when every prompt is compiled)."""
        if fast.size == rows.size:
            return self._store_index[rows], arrays
        return self._store_index[rows[fast]], tuple(array[fast] for array in arrays)

    def utilities(self, pi: Array, k: int, ties: int, rows: Rows) -> Array:
        """``u[j, y] = P[y ≻ pi_j^{⊗k}]`` for the prompts ``rows`` (``pi`` has one row each)."""
        fast, slow = self._split(rows)
        places, (pi_fast,) = self._compiled_rows(rows, fast, pi)
        u = _core_loader.core().batch_utilities(self._stores, places, pi_fast, np.full(fast.size, k, dtype=np.int64),
                                                ties)
        if slow.size:
            out = np.zeros_like(pi)
            out[fast] = u
        else:
            out = u
        for j in slow:
            m = int(self.sizes[rows[j]])
            out[j, :m] = self.models[rows[j]]._beats(_products(pi[j, None, :m], _ONE, k), ties)
        self.passes[rows] += 1
        return out

    def utilities_vjp(self, pi: Array, q: Array, k: int, ties: int, rows: Rows) -> Tuple[Array, Array]:
        """``(u, g)`` per prompt: the utilities and ``g = ∇_pi Σ_y q_y u_y``, one pass each."""
        u = np.zeros_like(pi)
        g = np.zeros_like(pi)
        fast, slow = self._split(rows)
        if fast.size:
            places, (pi_fast, q_fast) = self._compiled_rows(rows, fast, pi, q)
            u[fast], g[fast] = _core_loader.core().batch_utilities_vjp(
                self._stores, places, pi_fast, q_fast, np.full(fast.size, k, dtype=np.int64), ties)
        for j in slow:
            m = int(self.sizes[rows[j]])
            u[j, :m], g[j, :m] = self.models[rows[j]]._utilities_vjp(
                np.ascontiguousarray(pi[j, :m]), np.ascontiguousarray(q[j, :m]), k, ties)
        self.passes[rows] += 1
        return u, g

    def jacobian(self, pi: Array, k: int, ties: int, rows: Rows, selected: NDArray[np.bool_],
                 square: bool = False) -> Array:
        """``J[j, a, b] = ∂u_y/∂pi_z`` for the ``a``-th selected response ``y`` of prompt
        ``rows[j]`` (``selected[j]`` marks them, in index order) and, with ``square``,
        the ``b``-th selected ``z`` — else every ``z`` (``b = z``). Padded with zeros to
        the largest selection. One pass per prompt for populations of rankings and
        Plackett–Luce mixtures (it counts as one utility pass per selected row); one
        VJP per row for other models."""
        counts = selected.sum(axis=1)
        depth = int(counts.max(initial=0))
        fast, slow = self._split(rows)
        places, (pi_fast, chosen) = self._compiled_rows(rows, fast, pi, selected)
        block = _core_loader.core().batch_jacobian(self._stores, places, pi_fast, chosen,
                                                   np.full(fast.size, k, dtype=np.int64), ties, square)
        if slow.size:
            out = np.zeros((rows.size, depth, depth if square else self.width))
            out[fast, :block.shape[1], :block.shape[2]] = block
        else:
            out = block
        for j in slow:
            p = rows[j]
            m = int(self.sizes[p])
            members = np.flatnonzero(selected[j])
            if not members.size:
                continue
            G = self.models[p]._jacobian_rows(np.ascontiguousarray(pi[j, :m]), members, k, ties)[1]
            out[j, :members.size, :members.size if square else m] = G[:, members] if square else G
        self.passes[rows] += counts
        return out

    def pairwise(self, ties: str) -> List[Array]:
        """Each prompt's ``m x m`` matrix ``M[y, z] = P[y ≻ z]`` (``model.pairwise``):
        the populations of rankings in one parallel pass over the prompts."""
        from .ranking import pairwise_from_strict

        out: List[Array] = [np.empty(0)] * len(self)
        fast, slow = self._split(self.all)
        if fast.size:
            less = _core_loader.core().batch_strictly_better(self._stores, self._store_index[fast], self.width)
            matrices = pairwise_from_strict(less, tie_code(ties))
            for j, p in enumerate(fast.tolist()):
                m = int(self.sizes[p])
                out[p] = matrices[j, :m, :m]
        for p in slow.tolist():
            out[p] = self.models[p].pairwise(ties)
        return out

    def uniform(self, rows: Optional[Rows] = None) -> Array:
        """The uniform policy of every prompt (zero padding)."""
        rows = self.all if rows is None else rows
        return self.mask[rows] / self.sizes[rows, None].astype(np.float64)

    def normalised(self, policies: Array, name: str) -> Array:
        """Policies a solver computed (padded rows, summing to 1 up to rounding) as the
        boundary of the public API takes them (:func:`ualign._validate.as_distribution`:
        renormalised so each sums to 1 exactly), so that the policy a result returns
        and the one its certificate checked are the same bits."""
        rows = [policies[p, :m] for p, m in enumerate(self.sizes.tolist())]
        flat, _ = as_distribution_batch(rows, self.sizes.tolist(), list(range(len(self))), name)
        out = np.zeros_like(policies)
        out[self.mask] = flat
        return out

    def padded(self, policies: Sequence[Array], rows: Rows) -> Array:
        """Per-prompt vectors as one padded array."""
        out = np.zeros((rows.size, self.width))
        for j, p in enumerate(rows):
            out[j, :self.sizes[p]] = policies[j]
        return out


def project_rows(v: Array, mask: NDArray[np.bool_]) -> Array:
    """The Euclidean projection of every row of ``v`` (its entries under ``mask``)
    onto the probability simplex; zero elsewhere. Sort-based, O(W log W) a row."""
    width = v.shape[1]
    s = -np.sort(-np.where(mask, v, -np.inf), axis=1)
    valid = np.isfinite(s)
    css = np.cumsum(np.where(valid, s, 0.0), axis=1) - 1.0
    candidate = valid & (s - css / np.arange(1, width + 1) > 0)
    rho = width - 1 - np.argmax(candidate[:, ::-1], axis=1)
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1)
    x = np.where(mask, np.maximum(v - theta[:, None], 0.0), 0.0)
    return x / x.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def masked_max(u: Array, mask: NDArray[np.bool_]) -> Array:
    """Row maxima over the valid entries."""
    return np.where(mask, u, -np.inf).max(axis=1)  # type: ignore[no-any-return]


def exploitability_rows(x: Array, u: Array, mask: NDArray[np.bool_]) -> Array:
    """``max_y u_y - Σ_y x_y u_y`` per row."""
    return masked_max(u, mask) - np.einsum("pw,pw->p", x, u)  # type: ignore[no-any-return]
