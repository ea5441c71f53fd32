"""Subgroups of a population: robust levels per group and the worst group's.

A group is a set of voters (of a :class:`~ualign.RankingPopulation`) or of types
(of a :class:`~ualign.PlackettLuceMixture`), given as one label per voter (type).
Group ``g``'s preference ``P_g`` is the population's restricted to its members,
their weights renormalised within the group; its model is the population
reweighted by ``w * 1[label = g]`` (:func:`ualign.bootstrap.reweighted`: the
rankings are shared, not copied). A single-output policy's utilities are linear in
the voter weights, so its levels in all groups come from one pass over the voters
(:func:`ualign.bootstrap.audit_replicates` with the groups' weights as the rows),
equal to auditing each group's model alone up to the order of summation.

The group-robust level of a single-output policy is
``min_g f_g(pi, k) = min_g min_y P_g[pi^{⊗k} ≻ y]``; :func:`ualign.solve_optimal`
with ``groups`` maximises it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Tuple

import numpy as np
from numpy.typing import NDArray

from ._validate import as_ks, tie_code
from .bootstrap import audit_replicates, reweighted
from .game import _check_model, as_k_sample_policy
from .model import PreferenceModel


def as_group_labels(groups: Any, model: PreferenceModel, name: str = "groups") -> Tuple[NDArray[Any], NDArray[np.intp]]:
    """(sorted distinct labels, each voter's index into them). Every group needs
    positive total weight."""
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__"):
        raise TypeError(f"{name}: expected one label per voter (a sequence), got {type(groups).__name__}")
    array = np.asarray(groups)
    if array.ndim != 1 or array.shape[0] != model.n_voters:
        raise ValueError(f"{name}: expected one label per voter ({model.n_voters}), got shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name}: labels must not be NaN or infinite")
    try:
        labels, inverse = np.unique(array, return_inverse=True)
    except TypeError:
        raise TypeError(f"{name}: labels must be mutually comparable (all numbers or all strings)") from None
    weights = np.asarray(model._store.weights) if hasattr(model, "_store") else None
    if weights is None:
        raise TypeError(f"model: groups need a RankingPopulation or a PlackettLuceMixture, got {type(model).__name__}")
    mass = np.bincount(inverse.reshape(-1), weights=weights, minlength=labels.shape[0])
    empty = np.flatnonzero(~(mass > 0))
    if empty.size:
        raise ValueError(f"{name}: group {labels[empty[0]].item()!r} has zero total weight")
    return labels, inverse.reshape(-1)


def _group_weights(model: PreferenceModel, groups: Any, name: str) -> Tuple[NDArray[Any], NDArray[np.float64]]:
    """(labels, one row per group of the voters' weights ``w * 1[label = g]``)."""
    labels, inverse = as_group_labels(groups, model, name)
    weights = np.asarray(model._store.weights)  # type: ignore[attr-defined]
    return labels, np.where(inverse[None, :] == np.arange(labels.shape[0])[:, None], weights[None, :], 0.0)


def group_models(model: PreferenceModel, groups: Any,
                 name: str = "groups") -> Tuple[NDArray[Any], List[PreferenceModel]]:
    """(labels, one model per group): the population restricted to each group."""
    labels, rows = _group_weights(model, groups, name)
    return labels, [reweighted(model, row) for row in rows]


@dataclass(frozen=True)
class GroupLevels:
    """Robust levels of one policy in every group (:func:`group_levels`)."""

    #: The distinct group labels, sorted.
    groups: NDArray[Any]
    ks: NDArray[np.int64]
    #: ``levels[g, j] = min_y P_g[pi^{⊗k_j} ≻ y]``.
    levels: NDArray[np.float64]
    #: ``opponents[g, j]``: the response attaining it.
    opponents: NDArray[np.int64]
    #: Per k: the label of the group with the lowest level (the first one on ties) and its level.
    worst_group: NDArray[Any]
    worst_level: NDArray[np.float64]


def group_levels(model: Any, policy: Any, k: Any, groups: Any, ties: str = "uniform") -> GroupLevels:
    """The robust level of ``policy`` within every group of voters, for each ``k``
    (an int or a sequence), and the worst group's.

    ``policy`` is a probability vector over responses or a
    :class:`~ualign.MultisetPolicy` (then ``k`` is ignored for the operand but still
    labels the columns: pass the committee's size). ``groups`` holds one label per
    voter (per type for a :class:`~ualign.PlackettLuceMixture`)."""
    from .audit import _audit_multiset
    from .operands import MultisetPolicy

    model = _check_model(model)
    tie_code(ties)
    ks = as_ks(k, "k")
    if isinstance(policy, MultisetPolicy):
        as_k_sample_policy(model, policy, None)
        labels, models = group_models(model, groups)
        rows = [_audit_multiset(group, policy, ties) for group in models]
        levels = np.repeat(np.array([[row["robust_level"]] for row in rows]), ks.shape[0], axis=1)
        opponents = np.repeat(np.array([[row["opponent"]] for row in rows], dtype=np.int64), ks.shape[0], axis=1)
    else:
        # a group is the population reweighted by w * 1[label = g], and a fixed policy's
        # utilities are linear in the weights: every group in one pass over the voters
        pi = as_k_sample_policy(model, policy, int(ks[0])).policy
        labels, members = _group_weights(model, groups, "groups")
        values = audit_replicates(model, pi, members, ks, ties)
        levels, opponents = values["robust_level"], values["opponent"]
    worst = np.argmin(levels, axis=0)
    return GroupLevels(groups=labels, ks=ks, levels=levels, opponents=opponents, worst_group=labels[worst],
                       worst_level=levels[worst, np.arange(ks.shape[0])])


__all__ = ["GroupLevels", "as_group_labels", "group_levels", "group_models"]
