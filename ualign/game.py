"""Game-theoretic quantities of the (k+1)-player alignment game (docs/concepts.md)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core_loader
from ._validate import as_distribution, as_k, mirror_ties, tie_code
from .model import PreferenceModel
from .operands import MultisetPolicy, Product, ProductMixture

Policy = Union[ArrayLike, Product, MultisetPolicy, ProductMixture]


class PolicyAudit(NamedTuple):
    """What an audit reports of a policy (see :func:`audit_utilities`)."""

    robust_level: float
    opponent: int
    best_response: int
    best_utility: float
    exploitability: float
    mean_utility: float


def audit_utilities(u: NDArray[np.float64], loss: NDArray[np.float64],
                    policy: Optional[NDArray[np.float64]] = None) -> PolicyAudit:
    """The audit of a policy from the game utilities ``u[y] = P[y ≻ X]`` of its operand
    ``X`` and the losses ``loss[y]`` (the same under the mirrored convention):
    robust level ``1 - max loss`` and the opponent attaining it, the best response
    (first argmax of ``u``) and its utility, and with a single-output ``policy`` the
    correctly rounded ``sum_y policy(y) u_y`` and the exploitability (NaN without).
    The compiled batch audit runs this very code, so the two agree bit for bit."""
    level, opponent, best, best_utility, expl, mean = _core_loader.core().audit_utilities(u, loss, policy)
    return PolicyAudit(level, opponent, best, best_utility, expl, mean)


def _check_model(model: Any) -> PreferenceModel:
    if not isinstance(model, PreferenceModel):
        raise TypeError(f"model: expected a preference model (e.g. RankingPopulation), got {type(model).__name__}")
    return model


def as_k_sample_policy(model: PreferenceModel, policy: Policy, k: Optional[int]) -> Any:
    """A single-output policy with ``k``, or a multi-output operand (``k`` must then be
    omitted or agree with it)."""
    if isinstance(policy, (Product, ProductMixture)):
        if k is not None and as_k(k, "k") != policy.k:
            raise ValueError(f"k: {k} does not match the policy's k = {policy.k}")
        return policy
    if isinstance(policy, MultisetPolicy):
        if k is not None:
            raise ValueError("k: a MultisetPolicy already fixes its draws; pass k=None")
        return policy
    if k is None:
        raise TypeError("k: required for a single-output policy vector")
    return Product(as_distribution(policy, "policy", size=model.n_responses), as_k(k, "k"))


def robust_level(model: PreferenceModel, policy: Policy, k: Optional[int] = None,
                 ties: str = "uniform") -> float:
    """The robust alignment level ``f(pi, k) = min_y P[pi^{⊗k} ≻ y]`` (Def. 1.1).

    ``policy`` is a probability vector (with ``k``), a :class:`Product`, a
    :class:`ProductMixture` or a :class:`MultisetPolicy`. Computed as
    ``1 - max_y P[y ≻' pi^{⊗k}]`` under the mirrored convention (strict <-> weak).
    """
    model = _check_model(model)
    operand = as_k_sample_policy(model, policy, k)
    losses = model.beats(operand, mirror_ties(ties))
    return audit_utilities(losses, losses).robust_level


def worst_case_opponent(model: PreferenceModel, policy: Policy, k: Optional[int] = None,
                        ties: str = "uniform") -> Tuple[int, float]:
    """The response ``y`` attaining the robust level and ``P[pi^{⊗k} ≻ y]``."""
    model = _check_model(model)
    operand = as_k_sample_policy(model, policy, k)
    losses = model.beats(operand, mirror_ties(ties))
    audit = audit_utilities(losses, losses)
    return audit.opponent, audit.robust_level


def best_response(model: PreferenceModel, policy: ArrayLike, k: int,
                  ties: str = "uniform") -> Tuple[int, float]:
    """The deviation ``y`` maximising ``u_y(pi) = P[y ≻ pi^{⊗k}]`` and that utility
    (the smallest such index when several attain the maximum)."""
    u = _check_model(model).utilities(policy, k, ties)
    audit = audit_utilities(u, u)
    return audit.best_response, audit.best_utility


def exploitability(model: PreferenceModel, policy: ArrayLike, k: int, ties: str = "uniform") -> float:
    """NashConv of the symmetric profile: ``max_y u_y(pi) - sum_y pi(y) u_y(pi) >= 0``.

    Zero iff ``pi`` is a symmetric Nash equilibrium (MPNE). It certifies a level:
    under ``"uniform"`` ties ``robust_level(…, "uniform") = k/(k+1) - exploitability``
    exactly, and for the strict game (the paper's Definition 4.2)
    ``robust_level(…, "weak") >= k/(k+1) - exploitability(…, "strict")`` — the
    paper's robust level, not the strict one (a voter who ties everything has
    strict level 0 at exploitability 0).
    """
    model = _check_model(model)
    tie_code(ties)
    pi = as_distribution(policy, "policy", size=model.n_responses)
    u = model.utilities(pi, k, ties)
    # The expected utility is summed exactly (correctly rounded): the difference
    # is a certificate, and the batch audit (ualign.audit) reproduces it bit for bit.
    return audit_utilities(u, u, pi).exploitability
