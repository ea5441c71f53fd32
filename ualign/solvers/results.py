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
class CommitteeResult(SolverResult):
    """:func:`ualign.solve_committee`: the multi-output optimum of Theorem 3.1."""

    #: Certified upper bound on ``max_rho min_y P[rho ≻ y]`` over all k-multiset policies.
    upper_bound: float
    #: ``upper_bound - robust_level``.
    gap: float
    #: True when the last pricing problem was solved to proven optimality
    #: (enumeration or MILP), so ``gap`` is the column generation's true gap; False
    #: when the bound is a relaxation's (greedy ratio, MILP stopped by its time limit).
    exact: bool
    #: How the bound was obtained: ``"enumeration"``, ``"milp"``, ``"milp (stopped
    #: by the time limit)"``, ``"greedy"`` or ``"closed form"`` (all responses).
    pricing: str

    def _extra(self) -> str:
        return f", gap={self.gap:.3e}, exact={self.exact}, pricing={self.pricing!r}"


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
