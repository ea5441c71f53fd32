"""The preference-model interface every solver and audit is written against."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import TIES, as_distribution, as_finite_vector, as_k, tie_code
from .operands import KernelOperand, Operand, Product, as_operand

if TYPE_CHECKING:
    from ._core import PLStore, RankingStore


class PreferenceModel(abc.ABC):
    """A population preference over ``n_responses`` responses (see docs/concepts.md).

    Subclasses provide three exact kernels over :class:`KernelOperand`; the public
    methods validate their arguments once, here, for every model.
    """

    #: Tie conventions a model accepts (docs/concepts.md, "Tie conventions").
    TIES: Tuple[str, ...] = TIES

    #: The solvers' cost model: seconds per voter × response of one utility pass, and
    #: of one Jacobian row (rows share a pass where the kernel allows). Fixed
    #: estimates, not timings: a solver picks its method from them, and a measured
    #: clock would make its result depend on the machine's load. A model written in
    #: Python is assumed slow.
    _PASS_SECONDS: float = 1e-7
    _JACOBIAN_ROW_SECONDS: float = 1e-7

    @property
    @abc.abstractmethod
    def n_voters(self) -> int:
        """Number of voters (or preference types) in the population."""

    @property
    @abc.abstractmethod
    def n_responses(self) -> int:
        """Number of responses ``m``."""

    # -- kernels -------------------------------------------------------------
    @abc.abstractmethod
    def _beats(self, operand: KernelOperand, ties: int) -> NDArray[np.float64]:
        """out[y] = P[y > operand] for every response."""

    @abc.abstractmethod
    def _win_rate(self, a: KernelOperand, b: KernelOperand, ties: int) -> float:
        """P[a > b]."""

    @abc.abstractmethod
    def _pairwise(self, ties: int) -> NDArray[np.float64]:
        """M[y, z] = P[y > z]."""

    @abc.abstractmethod
    def _utilities_vjp(self, policy: NDArray[np.float64], q: NDArray[np.float64], k: int,
                       ties: int) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(u, g) with u[y] = P[y > pi^(k)] and g = d/dpi sum_y q[y] u[y], one pass."""

    def _utilities_vjps(self, policy: NDArray[np.float64], q: NDArray[np.float64], k: int,
                        ties: int) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(u, G): the utilities and ``G[r] = d/dpi sum_y q[r, y] u[y]`` for every row of
        ``q`` (at least one; with unit rows, rows of the Jacobian). One VJP per row,
        unless a model shares its pass among the rows."""
        rows = [self._utilities_vjp(policy, np.ascontiguousarray(row), k, ties) for row in q]
        return rows[0][0], np.stack([g for _, g in rows])

    def _jacobian_rows(self, policy: NDArray[np.float64], rows: NDArray[np.intp], k: int,
                       ties: int) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(u, J): the utilities and ``J[a, z] = ∂u_{rows[a]}/∂pi_z`` (at least one row),
        the VJPs of the unit rows (:meth:`_utilities_vjps`)."""
        units = np.zeros((rows.size, policy.size))
        units[np.arange(rows.size), rows] = 1.0
        return self._utilities_vjps(policy, units, k, ties)

    def _pass_seconds(self) -> float:
        """Estimated seconds of one utility pass (the cost model above)."""
        return self._PASS_SECONDS * self.n_voters * self.n_responses

    def _jacobian_row_seconds(self) -> float:
        """Estimated seconds of one Jacobian row (the cost model above)."""
        return self._JACOBIAN_ROW_SECONDS * self.n_voters * self.n_responses

    # -- public API ------------------------------------------------------------
    def utilities(self, policy: ArrayLike, k: int, ties: str = "uniform") -> NDArray[np.float64]:
        """``u[y] = P[y ≻ pi^{⊗k}]`` for every response ``y``: the payoff of deviating
        to ``y`` in the (k+1)-player alignment game."""
        code = tie_code(ties)
        product = Product(as_distribution(policy, "policy", size=self.n_responses), as_k(k, "k"))
        return self._beats(as_operand(product, self.n_responses, "policy"), code)

    def utilities_vjp(self, policy: ArrayLike, k: int, q: ArrayLike,
                      ties: str = "uniform") -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(u, g)``: the utilities ``u[y] = P[y ≻ pi^{⊗k}]`` and the gradient
        ``g = ∇_pi Σ_y q[y] u_y(pi)`` (a vector–Jacobian product), in one pass over
        the voters — what a first-order solver step needs."""
        code = tie_code(ties)
        pi = as_distribution(policy, "policy", size=self.n_responses)
        weights = as_finite_vector(q, "q", self.n_responses)
        return self._utilities_vjp(pi, weights, as_k(k, "k"), code)

    def beats(self, multiset: Operand, ties: str = "uniform") -> NDArray[np.float64]:
        """``P[y ≻ X]`` for every response ``y``; ``X`` is a multiset (sequence of response
        indices, repeats allowed), a response index, a :class:`Product`, a
        :class:`MultisetPolicy` or a :class:`ProductMixture`."""
        code = tie_code(ties)
        return self._beats(as_operand(multiset, self.n_responses, "multiset"), code)

    def win_rate(self, a: Operand, b: Operand, ties: str = "uniform") -> float:
        """``P[a ≻ b]`` for any two operands (response, multiset, Product,
        MultisetPolicy, ProductMixture)."""
        code = tie_code(ties)
        return self._win_rate(as_operand(a, self.n_responses, "a"), as_operand(b, self.n_responses, "b"), code)

    def pairwise(self, ties: str = "uniform") -> NDArray[np.float64]:
        """The ``m x m`` matrix ``M[y, z] = P[y ≻ z]``."""
        return self._pairwise(tie_code(ties))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_voters={self.n_voters}, n_responses={self.n_responses})"


class CompiledModel(PreferenceModel):
    """A model whose data and kernels live in a compiled store ``self._store``
    (``ualign._core``), which exposes ``n``, ``m``, ``weights`` and the
    ``beats`` / ``win_rate`` / ``utilities_vjp`` kernels over :class:`KernelOperand`
    parts. Subclasses build the store and provide ``_pairwise``."""

    _store: Union[RankingStore, PLStore]

    @property
    def n_voters(self) -> int:
        return int(self._store.n)

    @property
    def n_responses(self) -> int:
        return int(self._store.m)

    @property
    def weights(self) -> NDArray[np.float64]:
        """Normalised voter (type) weights (a copy)."""
        return self._store.weights

    def _beats(self, operand: KernelOperand, ties: int) -> NDArray[np.float64]:
        return self._store.beat_probabilities(operand.parts(), ties)

    def _win_rate(self, a: KernelOperand, b: KernelOperand, ties: int) -> float:
        return float(self._store.win_rate(a.parts(), b.parts(), ties))

    def _utilities_vjp(self, policy: NDArray[np.float64], q: NDArray[np.float64], k: int,
                       ties: int) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        u, g = self._store.utilities_vjp(policy, q, k, ties)
        return u, g
