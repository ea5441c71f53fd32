"""Re-checking any policy from scratch with the exact kernels (``ua.certify``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
from numpy.typing import NDArray

from .._validate import as_count, as_tolerance, mirror_ties, tie_code
from ..batch import PromptBatch
from ..game import Policy, PolicyAudit, as_k_sample_policy, audit_utilities, audit_utility_rows
from ..operands import MultisetPolicy, Product
from ._common import checked_model

#: Games whose expected utility sum_y pi(y) u_y never exceeds 1/(k+1) (it equals
#: 1/(k+1) under uniform ties: each of the k+1 draws is picked equally often): their
#: exploitability certifies ``level >= k/(k+1) - exploitability``.
_CERTIFYING_GAMES = ("uniform", "strict")


@dataclass(frozen=True)
class Certificate:
    """What the exact kernels say about a policy at ``k`` samples.

    ``ties`` is the convention of the robust level (as in :func:`ualign.robust_level`);
    the level is ``1 - max_y u_y`` with ``u_y = P[y ≻ pi^{⊗k}]`` under the mirrored
    convention ``game_ties`` — the utilities of the (k+1)-player alignment game
    that certifies it (``"uniform"`` for ``"uniform"``, the paper's strict game of
    Definition 4.2 for the paper's ``"weak"`` level).
    """

    k: int
    ties: str
    game_ties: str
    #: ``f(pi, k) = min_y P[pi^{⊗k} ≻ y]`` under ``ties``.
    robust_level: float
    #: ``k/(k+1)``: the paper's rate (Thm 4.3), and under ``"uniform"`` ties the
    #: largest level any single-output policy can have.
    target: float
    #: The best deviation ``y`` (the worst-case opponent) and ``u_y = 1 - robust_level``.
    best_response: int
    best_response_utility: float
    #: ``sum_y pi(y) u_y`` (single-output policies only).
    mean_utility: Optional[float]
    #: ``max_y u_y - sum_y pi(y) u_y`` in the game ``game_ties`` (single-output only).
    exploitability: Optional[float]
    #: ``k/(k+1) - exploitability``: a lower bound on ``robust_level`` guaranteed by
    #: the theory (only when the game is ``"uniform"`` or ``"strict"``).
    bound: Optional[float]
    #: ``target - robust_level`` (negative when the policy beats the rate).
    shortfall: float
    tol: float
    #: ``"equilibrium"`` (a symmetric Nash equilibrium up to ``tol``, hence robust),
    #: ``"robust"`` (level >= target - tol) or ``"not robust"``.
    verdict: str

    @property
    def meets_target(self) -> bool:
        """``robust_level >= k/(k+1) - tol``."""
        return self.robust_level >= self.target - self.tol

    def __str__(self) -> str:
        lines = [f"certificate (k={self.k}, ties={self.ties!r}, game {self.game_ties!r}): {self.verdict}",
                 f"  robust level   {self.robust_level:.12f}   target k/(k+1) = {self.target:.12f}"
                 f"   shortfall {self.shortfall:.3e}",
                 f"  best response  y={self.best_response}  u_y = {self.best_response_utility:.12f}"]
        if self.exploitability is not None:
            lines.append(f"  exploitability {self.exploitability:.3e}" +
                         ("" if self.bound is None else f"   bound k/(k+1) - exploitability = {self.bound:.12f}"))
        return "\n".join(lines)


def certify(model: Any, policy: Policy, k: Optional[int] = None, ties: str = "uniform",
            tol: float = 1e-8) -> Certificate:
    """Re-check ``policy`` with the exact kernels only: its robust level at ``k``
    samples, the best response (worst-case opponent), the exploitability, the
    bound ``k/(k+1) - exploitability`` and a verdict.

    ``policy``: a probability vector (with ``k``), a :class:`~ualign.Product`, a
    :class:`~ualign.ProductMixture` (e.g. averaged self-play) or a
    :class:`~ualign.MultisetPolicy` (a committee; ``k`` defaults to its largest
    multiset). ``ties`` is the convention of the robust level (the paper's is
    ``"weak"``, certified by the strict game of its Definition 4.2).
    """
    model = checked_model(model)
    tie_code(ties)
    tol = as_tolerance(tol)
    game_ties = mirror_ties(ties)
    if isinstance(policy, MultisetPolicy):
        size = max((len(s) for s in policy.multisets), default=0)
        k_target = as_count(k, "k") if k is not None else max(size, 1)
        operand: Any = policy
    else:
        operand = as_k_sample_policy(model, policy, k)
        k_target = operand.k
    u = model.beats(operand, game_ties)
    single = operand.policy if isinstance(operand, Product) else None
    return _certificate(audit_utilities(u, u, single), single is not None, k_target, ties, tol)


def certificates(batch: PromptBatch, policies: NDArray[np.float64], k: int, ties: str,
                 tol: float) -> List[Certificate]:
    """:func:`certify` of one single-output policy per prompt of ``batch`` (padded
    rows of ``policies``) at ``k``: one batched kernel pass and one batched audit,
    the same numbers."""
    u = batch.utilities(policies, k, tie_code(mirror_ties(ties)), batch.all)
    columns = [column.tolist() for column in audit_utility_rows(u, u, policies, batch.sizes)]
    return [_certificate(PolicyAudit(*row), True, k, ties, tol) for row in zip(*columns)]


def _certificate(audit: PolicyAudit, single_output: bool, k: int, ties: str, tol: float) -> Certificate:
    """The certificate from the audit of a policy's game utilities at ``k``
    (``single_output``: a policy vector, whose exploitability certifies)."""
    game_ties = mirror_ties(ties)
    y, best, level = audit.best_response, audit.best_utility, audit.robust_level
    target = k / (k + 1)
    mean = expl = bound = None
    if single_output:
        # correctly rounded expected utility: the difference is the certificate
        mean, expl = audit.mean_utility, audit.exploitability
        if game_ties in _CERTIFYING_GAMES:
            bound = target - expl
    if expl is not None and expl <= tol and game_ties in _CERTIFYING_GAMES:
        verdict = "equilibrium"
    elif level >= target - tol:
        verdict = "robust"
    else:
        verdict = "not robust"
    return Certificate(k=k, ties=ties, game_ties=game_ties, robust_level=level, target=target,
                       best_response=y, best_response_utility=best, mean_utility=mean, exploitability=expl,
                       bound=bound, shortfall=target - level, tol=tol, verdict=verdict)
