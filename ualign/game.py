"""Game-theoretic quantities of the (k+1)-player alignment game (docs/concepts.md)."""

from __future__ import annotations

import itertools
import time
from typing import Any, List, NamedTuple, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core_loader
from ._validate import as_count, as_distribution, as_k, as_positive_real, mirror_ties, tie_code
from .model import PreferenceModel
from .operands import MultisetPolicy, Product, ProductMixture, as_operand
from .ranking import RankingPopulation

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
    The row of one policy of :func:`audit_utility_rows`."""
    rows = audit_utility_rows(u[None, :], loss[None, :], None if policy is None else policy[None, :],
                              np.array([u.shape[0]], dtype=np.int64))
    level, opponent, best, best_utility, expl, mean = (column[0].item() for column in rows)
    return PolicyAudit(level, opponent, best, best_utility, expl, mean)


def audit_utility_rows(u: NDArray[np.float64], loss: NDArray[np.float64], policy: Optional[NDArray[np.float64]],
                       sizes: NDArray[np.int64]) -> Tuple[NDArray[Any], ...]:
    """:func:`audit_utilities` of many policies at once: row ``p`` of the padded ``(P, W)``
    arrays holds one policy's first ``sizes[p]`` entries. Returns the fields of
    :class:`PolicyAudit` as arrays of ``P`` entries. The compiled batch audit runs
    this very code, so the two agree bit for bit."""
    return tuple(_core_loader.core().audit_utilities(u, loss, policy, sizes))


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


#: Default seconds of the exact search for the worst opponent with several outputs.
OPPONENT_TIME_LIMIT = 30.0


class OpponentSearch(NamedTuple):
    """The worst opponent with ``opponent_k`` outputs (:func:`opponent_search`)."""

    #: The multiset ``Y`` found (``opponent_k`` responses, ascending; repeats allowed).
    opponent: Tuple[int, ...]
    #: ``P[pi^{⊗k} ≻ Y]`` for that ``Y`` (exact kernels): an upper bound on the level
    #: ``f_ℓ(pi, k)``, equal to it when ``exact``.
    level: float
    #: Certified: ``f_ℓ(pi, k) >= lower_bound`` (``== level`` when ``exact``).
    lower_bound: float
    #: True when the search ran to the end, so ``Y`` is a worst opponent.
    exact: bool
    #: ``"branch and bound"`` (rankings), ``"enumeration"`` (other models) or
    #: ``"single responses"`` (``opponent_k = 1``); ``" (stopped by the time limit)"``
    #: is appended when the search did not finish.
    method: str
    #: Search nodes (branch and bound) or multisets evaluated (enumeration).
    nodes: int
    wall_time: float


def _as_opponent_k(opponent_k: Any) -> int:
    return as_count(opponent_k, "opponent_k")


def _padded(members: Tuple[int, ...], size: int) -> Tuple[int, ...]:
    """A worst set of fewer than ``size`` distinct responses (ties other than
    "uniform", where a repeat changes nothing) as a multiset of ``size``."""
    return tuple(sorted(members + (members[0],) * (size - len(members))))


def _greedy_opponent(loss: Any, m: int, size: int) -> Tuple[Tuple[int, ...], float]:
    """Greedy multiset: add the member that raises ``loss`` most, ``size`` times."""
    chosen: List[int] = []
    value = 0.0
    for _ in range(size):
        values = [loss(tuple(sorted(chosen + [z]))) for z in range(m)]
        z = int(np.argmax(values))
        chosen.append(z)
        value = values[z]
    return tuple(sorted(chosen)), value


def opponent_search(model: PreferenceModel, policy: Policy, k: Optional[int] = None, opponent_k: int = 2,
                    ties: str = "uniform", time_limit: float = OPPONENT_TIME_LIMIT) -> OpponentSearch:
    """The worst opponent with ``opponent_k = ℓ`` outputs: the multiset ``Y`` of ``ℓ``
    responses minimising ``P[pi^{⊗k} ≻ Y]`` under ``ties``, with a certified bound.

    Against an opponent who answers with ``ℓ`` responses at once, the voter compares
    the best of the policy's draws with the best of ``Y`` (ties as in
    :func:`robust_level`, counting members of both sides under ``"uniform"``), and the
    robust level is ``f_ℓ(pi, k) = min_{|Y| = ℓ} P[pi^{⊗k} ≻ Y]`` (Cai & Zheng,
    "Asymptotic Universal Alignment", arXiv:2601.08777, §D.7). A mixed opponent
    does no better than the best pure ``Y``: the payoff is linear in its mixture.

    Computed as ``1 - max_Y P[Y ≻' pi^{⊗k}]`` under the mirrored convention. On
    ranking populations ``Y -> P[Y ≻' X]`` depends, voter by voter, only on ``Y``'s
    best level and the members of ``Y`` there, a monotone (DR-)submodular coverage
    objective: the exact branch and bound of committee pricing searches it (over
    sets of ``min(ℓ, m)`` responses outside ``"uniform"`` ties, where a repeated
    member adds nothing). Other models enumerate every multiset. When ``time_limit``
    seconds run out first, the result is not ``exact``: ``level`` is that of the
    best ``Y`` found and ``lower_bound`` is certified — the search's bound on rankings,
    else the greedy bound ``greedy / (1 - (1 - 1/ℓ)^ℓ)`` on the opponent's win rate,
    valid because it is monotone and DR-submodular in ``Y``.
    """
    clock = time.perf_counter()
    model = _check_model(model)
    operand = as_k_sample_policy(model, policy, k)
    size = _as_opponent_k(opponent_k)
    game = mirror_ties(ties)
    seconds = as_positive_real(time_limit, "time_limit")
    m = model.n_responses
    kernel_operand = as_operand(operand, m, "policy")
    if size == 1:
        losses = model.beats(operand, game)
        audit = audit_utilities(losses, losses)
        return OpponentSearch((audit.opponent,), audit.robust_level, audit.robust_level, True, "single responses",
                              m, time.perf_counter() - clock)

    def loss(Y: Tuple[int, ...]) -> float:
        return model._win_rate(as_operand(list(Y), m, "opponent"), kernel_operand, tie_code(game))

    if isinstance(model, RankingPopulation):
        found, _, bound, finished, nodes = _core_loader.core().price_opponent(
            model._store, kernel_operand.parts(), tie_code(game), size, np.zeros(0, dtype=np.int64), 1, 2**62,
            seconds)
        Y = _padded(tuple(found[0]), size)
        worst = loss(Y)
        method = "branch and bound"
    else:
        Y, worst = _greedy_opponent(loss, m, size)
        greedy_value = worst
        nodes, finished = 0, True
        for candidate in itertools.combinations_with_replacement(range(m), size):
            if time.perf_counter() - clock > seconds:
                finished = False
                break
            nodes += 1
            value = loss(candidate)
            if value > worst:
                Y, worst = candidate, value
        bound = min(1.0, greedy_value / (1.0 - (1.0 - 1.0 / size) ** size))
        method = "enumeration"
    level = 1.0 - worst
    lower = level if finished else max(0.0, min(level, 1.0 - max(float(bound), worst)))
    if not finished:
        method += " (stopped by the time limit)"
    return OpponentSearch(Y, level, lower, bool(finished), method, int(nodes), time.perf_counter() - clock)


def _exact_search(model: PreferenceModel, policy: Policy, k: Optional[int], opponent_k: int, ties: str,
                  time_limit: float) -> OpponentSearch:
    search = opponent_search(model, policy, k, opponent_k, ties, time_limit)
    if not search.exact:
        raise TimeoutError(f"time_limit: the exact search over opponents with {opponent_k} outputs did not finish "
                           f"in {time_limit} s (certified: {search.lower_bound!r} <= level <= {search.level!r}); "
                           f"raise time_limit, or use ualign.opponent_search for the bounds")
    return search


def robust_level(model: PreferenceModel, policy: Policy, k: Optional[int] = None,
                 ties: str = "uniform", opponent_k: int = 1, time_limit: float = OPPONENT_TIME_LIMIT) -> float:
    """The robust alignment level ``f(pi, k) = min_y P[pi^{⊗k} ≻ y]`` (Def. 1.1).

    ``policy`` is a probability vector (with ``k``), a :class:`Product`, a
    :class:`ProductMixture` or a :class:`MultisetPolicy`. Computed as
    ``1 - max_y P[y ≻' pi^{⊗k}]`` under the mirrored convention (strict <-> weak).

    ``opponent_k = ℓ >= 2``: the level against opponents answering with ``ℓ``
    responses, ``min_{|Y| = ℓ} P[pi^{⊗k} ≻ Y]``, exactly (:func:`opponent_search`).
    A search that cannot finish within ``time_limit`` seconds raises
    ``TimeoutError``; :func:`opponent_search` returns its certified bounds instead.
    """
    if _as_opponent_k(opponent_k) > 1:
        return _exact_search(model, policy, k, opponent_k, ties, time_limit).level
    as_positive_real(time_limit, "time_limit")
    model = _check_model(model)
    operand = as_k_sample_policy(model, policy, k)
    losses = model.beats(operand, mirror_ties(ties))
    return audit_utilities(losses, losses).robust_level


def worst_case_opponent(model: PreferenceModel, policy: Policy, k: Optional[int] = None,
                        ties: str = "uniform", opponent_k: int = 1,
                        time_limit: float = OPPONENT_TIME_LIMIT) -> Tuple[Union[int, Tuple[int, ...]], float]:
    """The response ``y`` attaining the robust level and ``P[pi^{⊗k} ≻ y]``.

    With ``opponent_k = ℓ >= 2``: the multiset ``Y`` of ``ℓ`` responses (a sorted
    tuple) attaining the level against ``ℓ``-output opponents and
    ``P[pi^{⊗k} ≻ Y]``, exactly; ``TimeoutError`` as in :func:`robust_level`.
    """
    if _as_opponent_k(opponent_k) > 1:
        search = _exact_search(model, policy, k, opponent_k, ties, time_limit)
        return search.opponent, search.level
    as_positive_real(time_limit, "time_limit")
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
