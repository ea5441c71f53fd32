"""Bootstrap replicates of a population by reweighting its voters.

Resampling ``n`` voters with replacement from a population of ``n`` weighted
voters gives voter ``i`` a count ``c_i``, ``c ~ Multinomial(n, w / sum w)``; the
resampled population is the original one with weights ``c``. So a replicate needs
no copy of the rankings: :func:`replicate_models` builds models that share the
compact rank storage of the original and own only their ``n`` weights, and every
batched kernel takes the ``B`` replicates of one prompt as a batch of ``B``
prompts. For a mixture of Plackett–Luce types the types are the resampled units
(``n = n_types``); a replicate copies the rewards (``n_types x m`` doubles).

A fixed policy on the replicates needs less: the utility of a response is linear
in the voter weights, ``u_b = sum_i c_bi P_i`` with ``P_i[y] = P_i[y > pi^(k)]``
voter ``i``'s own value, so :func:`audit_replicates` computes every voter's values
once per ``k`` and forms all ``B`` replicates' utilities as the weighted sums
``U = C P`` (chunked over voters, memory bounded whatever ``n`` and ``B``), then
audits each replicate as a single prompt. The same holds for a Plackett–Luce
mixture, whose comparisons are each one choice by one type: ``P_i`` is type
``i``'s value from the mixture's own kernel, computed once per ``k`` instead of
once per replicate and ``k``. (The mixture has no ties, so every convention and its
mirror give the same values, as in a replicate's own audit.) The sums run in another
order than a replicate audited alone, so the two agree to rounding (well within
1e-12), not bit for bit; the order is fixed, so repeats and thread counts give
identical bits. What is shared, by model kind and policy:

* fixed policy, :class:`~ualign.RankingPopulation`: the per-voter level values,
  one pass over the voters per group of ``k`` for all ``B`` replicates;
* fixed policy, :class:`~ualign.PlackettLuceMixture`: the per-type integrals, one
  pass over the types per group of ``k`` for all ``B`` replicates;
* solved policy (any model): only the storage — the ``B`` replicate models share
  the rankings (a mixture's replicates copy its rewards) and are solved again as
  one batch of ``B`` prompts, warm-started from the point estimate's policy where
  the solver takes one (MPNE, the optimal policy); each replicate's solve makes its
  own passes over the voters.

Intervals are percentile intervals: the ``(1 - ci)/2`` and ``(1 + ci)/2``
quantiles of the replicate values. The robust level is a minimum over responses
of population averages, a non-smooth functional bounded in ``[0, 1]``: percentile
intervals stay in range and are invariant under monotone reparametrisation; the
"basic" interval can leave ``[0, 1]``, and the BCa correction would take a
jackknife over ``n`` voters (``n`` more audits) and rests on a smoothness the
minimum lacks. Where several responses nearly tie for the worst opponent the
bootstrap minimum is biased low and coverage can fall short of nominal.

Seeds: ``seed`` fixes a :class:`numpy.random.SeedSequence`; prompt ``p`` draws its
counts from the child ``(entropy, spawn key p)``, so a prompt's replicates do not
depend on the other prompts, on chunking or on the number of threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

from . import _core_loader
from ._validate import _numeric_array, as_count, as_ks, as_optional_distribution, tie_code
from .model import PreferenceModel


@dataclass(frozen=True)
class BootstrapPlan:
    """``n_boot`` replicates per prompt, drawn from ``entropy``, summarised by
    central percentile intervals of mass ``ci``."""

    n_boot: int
    entropy: int
    ci: float

    @classmethod
    def create(cls, n_boot: Any, seed: Any, ci: Any) -> BootstrapPlan:
        count = as_count(n_boot, "n_boot")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise TypeError(f"seed: expected a nonnegative integer or None, got {seed!r}")
        if isinstance(ci, bool) or not isinstance(ci, (int, float, np.floating)) or not 0.0 < float(ci) < 1.0:
            raise ValueError(f"ci: expected a coverage in (0, 1), got {ci!r}")
        entropy = np.random.SeedSequence(None if seed is None else int(seed)).entropy
        return cls(count, int(entropy), float(ci))  # type: ignore[arg-type]

    def counts(self, model: PreferenceModel, prompt: int) -> NDArray[np.float64]:
        """``(n_boot, n)`` multinomial voter counts of prompt ``prompt``."""
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(prompt,)))
        weights = _weights(model)
        counts = rng.multinomial(weights.shape[0], weights, size=self.n_boot)
        return counts.astype(np.float64)

    def interval(self, values: NDArray[np.float64]) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Percentile interval along axis 0 (NaN where any replicate is NaN)."""
        alpha = 0.5 * (1.0 - self.ci)
        low, high = np.quantile(values, [alpha, 1.0 - alpha], axis=0)
        return low, high


def _weights(model: PreferenceModel) -> NDArray[np.float64]:
    store = getattr(model, "_store", None)
    if store is None:
        raise TypeError(f"models: bootstrap replicates reweight the voters of a RankingPopulation or the types of "
                        f"a PlackettLuceMixture, got {type(model).__name__}")
    weights = np.asarray(store.weights, dtype=np.float64)
    return weights / weights.sum()  # type: ignore[no-any-return]


def reweighted(model: PreferenceModel, weights: NDArray[np.float64]) -> PreferenceModel:
    """``model`` with voter (type) weights ``weights`` (normalised), sharing its
    rankings: a :class:`~ualign.RankingPopulation` replicate copies no ranks."""
    from .plackett_luce import PlackettLuceMixture
    from .ranking import RankingPopulation

    _weights(model)  # the type check
    store = model._store.reweighted(np.ascontiguousarray(weights, dtype=np.float64))  # type: ignore[attr-defined]
    out: Any
    if isinstance(model, RankingPopulation):
        out = RankingPopulation._from_store(store, None)
    else:
        out = PlackettLuceMixture.__new__(PlackettLuceMixture)
        out._store = store
    return out  # type: ignore[no-any-return]


def replicate_models(model: PreferenceModel, counts: NDArray[np.float64]) -> List[PreferenceModel]:
    """One reweighted model per row of ``counts``."""
    return [reweighted(model, row) for row in counts]


def audit_replicates(model: PreferenceModel, policy: Any, counts: Any, ks: Any,
                     ties: str = "uniform") -> Dict[str, NDArray[Any]]:
    """Audits of the fixed single-output ``policy`` (None: uniform) on the replicates
    of ``model`` (a :class:`~ualign.RankingPopulation` or a
    :class:`~ualign.PlackettLuceMixture`) whose voter (type) weights are the rows of
    ``counts`` (``(B, n)``, nonnegative; each row is normalised here): ``(B, len(ks))`` arrays
    ``robust_level``, ``opponent``, ``best_response``, ``best_utility`` and
    ``exploitability``, the audits of :func:`replicate_models` up to rounding
    (another order of summation), computed in one pass over the voters (types):
    each one's values ``P_i[y > pi^(k)]`` once per ``k``, summed per replicate."""
    from .plackett_luce import PlackettLuceMixture
    from .ranking import RankingPopulation

    if not isinstance(model, (RankingPopulation, PlackettLuceMixture)):
        raise TypeError(f"model: expected a RankingPopulation or a PlackettLuceMixture, got {type(model).__name__}")
    pi = as_optional_distribution(policy, "policy", model.n_responses)
    weights = np.ascontiguousarray(_numeric_array(counts, "counts"), dtype=np.float64)
    core = _core_loader.core()
    return core.audit_replicates(model._store, pi, weights, as_ks(ks), tie_code(ties))  # type: ignore[no-any-return]


def bootstrap_models(model: PreferenceModel, n_boot: int, seed: Optional[int] = None) -> List[PreferenceModel]:
    """``n_boot`` bootstrap replicates of ``model`` (voters, or Plackett–Luce types,
    resampled with replacement as multinomial weights), sharing its rankings.
    Replicate ``b`` of ``seed`` is the same for every call and thread count."""
    from .game import _check_model

    plan = BootstrapPlan.create(n_boot, seed, 0.95)
    return replicate_models(_check_model(model), plan.counts(model, 0))


__all__ = ["BootstrapPlan", "audit_replicates", "bootstrap_models", "replicate_models", "reweighted"]
