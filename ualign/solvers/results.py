"""Result objects of the solvers: the policy, its exact level, how the solver got
there, and a :class:`~ualign.solvers.certify.Certificate` computed from scratch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

from .certify import Certificate


@dataclass(frozen=True, repr=False)
class SolverResult:
    """Common fields of every solver's result."""

    #: The policy found (a probability vector, or a ProductMixture / MultisetPolicy).
    policy: Any
    #: Its robust level, recomputed with the exact kernels (``certificate.robust_level``).
    robust_level: float
    #: Exploitability in the certifying game, where defined (single-output policies;
    #: for averaged self-play, the average regret ``Reg_T / T``); else None.
    exploitability: Optional[float]
    #: Iterations of the method (its outer loop).
    iterations: int
    #: Wall time in seconds.
    wall_time: float
    #: True when the method's stopping criterion (``tol``) was met.
    converged: bool
    #: The exact re-check of ``policy`` (:func:`ualign.certify`).
    certificate: Certificate
    #: The method that produced the policy.
    method: str
    k: int
    #: The solver's ``ties`` argument.
    ties: str
    #: Passes over the population (utility evaluations, VJPs, pairwise matrices).
    evaluations: int
    #: Progress after each iteration (exploitability, or optimality gap).
    history: Tuple[float, ...]

    def _extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        expl = "n/a" if self.exploitability is None else f"{self.exploitability:.3e}"
        return (f"{type(self).__name__}(method={self.method!r}, k={self.k}, ties={self.ties!r}, "
                f"robust_level={self.robust_level:.12f}, exploitability={expl}{self._extra()}, "
                f"iterations={self.iterations}, evaluations={self.evaluations}, "
                f"wall_time={self.wall_time:.3f}s, converged={self.converged}, "
                f"verdict={self.certificate.verdict!r})")


@dataclass(frozen=True, repr=False)
class NLHFResult(SolverResult):
    """:func:`ualign.solve_nlhf`: the maximal lottery (k = 1)."""

    #: ``min_z P[pi ≻ z]`` — 1/2 for the maximal lottery under ``"uniform"`` ties.
    value: float
    #: Upper bound on ``max_pi min_z P[pi ≻ z]`` certified by a dual vector.
    upper_bound: float
    #: True when ``policy`` is the only maximal lottery; None when not determined.
    unique: Optional[bool] = None
    #: The set of all maximal lotteries (a polytope): its dimension, vertices and
    #: coordinate ranges. :func:`ualign.solvers.nlhf_level_range` turns it into the
    #: range of robust levels NLHF can have at ``k`` samples.
    lotteries: Optional[MaximalLotterySet] = None

    def _extra(self) -> str:
        return "" if self.unique is None else f", unique={self.unique}"


@dataclass(frozen=True)
class MaximalLotterySet:
    """All maximal lotteries of one pairwise matrix: the polytope
    ``{pi in the simplex : (Pᵀ pi)_z >= value for every z}`` of optimal policies of
    ``max_pi min_z P[pi ≻ z]`` (under ``"uniform"``/``"half"`` ties: ``value = 1/2``).

    Its affine hull is found from the responses some optimal policy plays
    (``support``) and those some optimal opponent plays (a strictly complementary
    pair of the linear program): every optimal policy lives on ``support`` and
    ties every response of the opponent's support, and the dimension is that of
    this system of equations. Singular values below ``ualign.solvers.nlhf.RANK_TOLERANCE``
    times the largest count as zero; ``rank_gap`` says how clear that cut was.
    """

    #: Tie convention of the pairwise matrix ``P``.
    ties: str
    #: ``max_pi min_z P[pi ≻ z]`` (1/2 under ``"uniform"``/``"half"`` ties).
    value: float
    #: True when the set is a single point (``dimension == 0``).
    unique: bool
    dimension: int
    #: Responses some maximal lottery plays (the essential set), ascending.
    support: NDArray[np.int64]
    #: Vertices of the set, one per row (the one policy when unique).
    vertices: NDArray[np.float64]
    #: True when ``vertices`` are all the vertices (enumerated); False when the
    #: enumeration was too large and they are the extreme points of linear programs
    #: (each coordinate minimised and maximised), a subset.
    complete: bool
    #: ``min`` and ``max`` of ``pi_y`` over the set, for every response ``y``
    #: (exact either way: the coordinate extremes are among ``vertices``).
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    #: (largest singular value counted as zero, smallest counted as nonzero),
    #: relative to the largest, of the equations defining the affine hull.
    rank_gap: Tuple[float, float]


@dataclass(frozen=True)
class NLHFLevelRange:
    """:func:`ualign.solvers.nlhf_level_range`: the robust levels ``f(pi, k)`` of all
    maximal lotteries ``pi`` — what NLHF guarantees at ``k`` samples whichever
    maximal lottery a solver returns."""

    k: int
    #: Convention of the levels (and of the pairwise matrix defining the set).
    ties: str
    unique: bool
    #: The smallest level over the set: ``f`` is concave, so it is attained at a
    #: vertex; the minimum over ``lotteries.vertices`` (exact when they are complete).
    min_level: float
    #: The largest level found, attained by ``max_policy``.
    max_level: float
    #: Certified: no policy in the convex hull of ``lotteries.vertices`` has a higher
    #: level (Kelley's cutting planes over that hull; ``f`` is concave).
    max_level_bound: float
    #: True when both ends are exact: the vertices are complete and
    #: ``max_level_bound - max_level <= tol``.
    exact: bool
    #: A vertex attaining ``min_level``, and the policy attaining ``max_level``.
    min_policy: NDArray[np.float64]
    max_policy: NDArray[np.float64]
    #: Cutting-plane iterations and passes over the population.
    iterations: int
    evaluations: int


@dataclass(frozen=True, repr=False)
class MPNEResult(SolverResult):
    """:func:`ualign.solve_mpne`: a symmetric equilibrium of the alignment game."""

    #: Convention of ``robust_level``: the mirror of the game's (``"weak"`` for the
    #: strict game of Definition 4.2, whose exploitability certifies the weak level).
    level_ties: str
    #: The last iterate (equal to ``policy`` except for averaged self-play).
    last_iterate: NDArray[np.float64]

    def _extra(self) -> str:
        return f", level_ties={self.level_ties!r}"


@dataclass(frozen=True, repr=False)
class OptimalResult(SolverResult):
    """:func:`ualign.solve_optimal`: the best single-output policy for k samples."""

    #: Certified upper bound on the best robust level any single-output policy has.
    upper_bound: float
    #: ``upper_bound - robust_level >= 0``: the certified optimality gap.
    gap: float

    def _extra(self) -> str:
        return f", gap={self.gap:.3e}"


@dataclass(frozen=True, repr=False)
class OpponentOptimalResult(OptimalResult):
    """:func:`ualign.solve_optimal` with ``opponent_k = ℓ >= 2``: the best single-output
    policy against opponents answering with ``ℓ`` responses. ``robust_level`` is
    ``f_ℓ(policy, k)`` (:func:`ualign.robust_level` with ``opponent_k``),
    ``upper_bound`` bounds ``f_ℓ`` of every single-output policy, and ``certificate``
    is the ordinary (single-response) re-check of the policy."""

    opponent_k: int = 2
    #: A worst ``ℓ``-multiset against ``policy``.
    opponent: Tuple[int, ...] = ()
    #: Certified lower bound on ``f_ℓ(policy, k)``: equal to ``robust_level`` when
    #: the last search for the worst opponent finished (``exact``).
    lower_bound: float = 0.0
    exact: bool = True

    def _extra(self) -> str:
        return f", opponent_k={self.opponent_k}, gap={self.gap:.3e}, exact={self.exact}"


@dataclass(frozen=True, repr=False)
class CommitteeResult(SolverResult):
    """:func:`ualign.solve_committee`: the multi-output optimum of Theorem 3.1."""

    #: Certified upper bound on ``max_rho min_y P[rho ≻ y]`` over all k-multiset policies.
    upper_bound: float
    #: ``upper_bound - robust_level``.
    gap: float
    #: True when ``upper_bound`` was proved by a pricing problem solved to its end
    #: (enumeration, or a branch and bound that finished); False when it is a
    #: relaxation's (the greedy ratio, or the open nodes or the LP relaxation of a
    #: branch and bound stopped by its time limit).
    exact: bool
    #: How the bound was obtained: ``"branch and bound"`` (rankings), ``"branch and
    #: bound (stopped by the time limit)"`` (its open nodes) or ``"... (stopped by the
    #: time limit; bound of its LP relaxation)"``, ``"enumeration"``, ``"greedy"`` or
    #: ``"closed form"`` (all responses).
    pricing: str

    def _extra(self) -> str:
        return f", gap={self.gap:.3e}, exact={self.exact}, pricing={self.pricing!r}"


@dataclass(frozen=True, repr=False)
class OpponentCommitteeResult(CommitteeResult):
    """:func:`ualign.solve_committee` with ``opponent_k = ℓ >= 2``: the best k-multiset
    policy against opponents answering with ``ℓ`` responses. ``robust_level`` is
    ``f_ℓ`` of the policy (the exact search for its worst opponent), ``upper_bound``
    bounds ``max_rho min_{|Y| = ℓ} P[rho ≻ Y]`` over all k-multiset policies,
    ``gap = upper_bound - lower_bound``, ``exact`` says that both the last pricing
    and the last opponent search finished, and ``certificate`` is the ordinary
    (single-response) re-check of the policy."""

    opponent_k: int = 2
    #: A worst ``ℓ``-multiset against ``policy``.
    opponent: Tuple[int, ...] = ()
    #: Certified lower bound on ``f_ℓ(policy)``: equal to ``robust_level`` when the
    #: last search for the worst opponent finished.
    lower_bound: float = 0.0
    #: Opponent multisets in the master LP when the solver stopped (its rows).
    opponents_generated: int = 0

    def _extra(self) -> str:
        return f", opponent_k={self.opponent_k}" + super()._extra()


@dataclass(frozen=True, repr=False)
class RLHFResult(SolverResult):
    """:func:`ualign.rlhf_policy`: the KL-regularised Bradley–Terry policy."""

    #: Bradley–Terry rewards (maximum likelihood on the pairwise matrix; sum 0).
    reward: NDArray[np.float64]
    beta: float
    #: Mean Bradley–Terry log-likelihood per ordered pair at ``reward``.
    log_likelihood: float

    def _extra(self) -> str:
        return f", beta={self.beta:g}"
