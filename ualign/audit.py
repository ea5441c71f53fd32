"""Audits of many prompts at once: the paper's contextual setting, where every
prompt has its own population and policy.

:func:`audit_many` returns one row per (prompt, method, k). For populations of
rankings the audits of fixed policies (``"given"``, ``"uniform"`` and the
policies the solvers return) run in C++ over all prompts at once, OpenMP across
prompts, with the very kernels the per-prompt API calls: every number equals the
per-prompt :func:`ualign.robust_level`, :func:`ualign.best_response` and
:func:`ualign.exploitability` bit for bit. With a ``dask.distributed.Client`` the
prompts are cut into chunks that run as tasks on the cluster; results are
identical to the local run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from . import _core_loader
from ._progress import Progress
from ._validate import (
    as_choices,
    as_count,
    as_distribution_batch,
    as_ks,
    as_positive_real,
    mirror_ties,
    tie_code,
)
from .bootstrap import BootstrapPlan, audit_replicates, replicate_models
from .game import audit_utilities
from .model import PreferenceModel
from .operands import MultisetPolicy, Product

#: Methods :func:`audit_many` compares. "given": the supplied policies; "uniform":
#: the uniform policy; the others are the policies of the solvers (docs/concepts.md, "Solvers"):
#: NLHF (maximal lottery), RLHF (Bradley–Terry reward maximiser), MPNE_k, the
#: optimal single-output k-sample policy and the optimal committee (a
#: multi-output policy).
METHODS = ("given", "uniform", "nlhf", "rlhf", "mpne", "optimal", "committee")

#: Prefix of the method of a named policy: ``policies={"sft": ...}`` is audited
#: as method ``"policy:sft"`` (no solver method contains ``:``, so no name clashes).
POLICY_PREFIX = "policy:"

#: Columns of the result, in order.
COLUMNS = ("prompt", "method", "k", "robust_level", "level_low", "level_high", "bound", "opponent", "best_response",
           "best_utility",
           "exploitability")

#: Columns added by ``n_boot``: percentile bootstrap intervals of the robust level
#: and the exploitability, and the fraction of replicates whose best response is
#: the point estimate's.
BOOTSTRAP_COLUMNS = ("level_ci_low", "level_ci_high", "exploitability_ci_low", "exploitability_ci_high",
                     "best_response_freq")
#: Columns added by ``groups``: the group with the lowest robust level, that level,
#: and every group's level (a dict from group label to level).
GROUP_COLUMNS = ("worst_group", "worst_group_level", "group_levels")

_FIELDS = ("robust_level", "opponent", "best_response", "best_utility", "exploitability")
#: The range of robust levels over a method's set of optimal policies: they differ
#: from ``robust_level`` only for NLHF when the maximal lottery is not unique.
_RANGE_FIELDS = ("level_low", "level_high")
_INT_FIELDS = ("opponent", "best_response")
# Prompts per call of the C++ batch kernel: the progress bar's granularity, no
# effect on results. Large, because every call ends in a barrier where all threads
# wait for the slowest (on a busy machine, for a thread that lost its core).
_BLOCK = 8192

Columns = Dict[str, NDArray[Any]]


def audit_many(models: Any, policies: Any = None, ks: Any = range(1, 9), methods: Any = None,
               client: Any = None, *, ties: str = "uniform", chunk_size: Optional[int] = None,
               progress: bool = False, rlhf_beta: float = 0.1, n_boot: Optional[int] = None,
               seed: Optional[int] = None, ci: float = 0.95, groups: Any = None, labels: Any = None) -> Any:
    """Audit many prompts; returns a tidy ``pandas.DataFrame``.

    Parameters
    ----------
    models:
        A sequence of preference models (prompt = position) or a mapping of
        prompt names to models (e.g. a :class:`ualign.io.Dataset`). Sizes may
        differ from prompt to prompt.
    policies:
        The policies to audit (method ``"given"``): a sequence aligned with
        ``models`` or a mapping with the same keys; an entry may be ``None``
        (that prompt then has no "given" rows). Each is a probability vector over
        its prompt's responses, used exactly as given. Several policies at once:
        a mapping ``{name: policies}`` whose keys are not prompts, each value
        per prompt as above (a mapping when ``models`` is one, else a sequence);
        each is audited as its own method ``"policy:<name>"``.
    ks:
        Sample counts ``k`` (distinct integers >= 1).
    methods:
        Any of :data:`METHODS` and the ``"policy:<name>"`` methods of named
        policies (``"given"`` stands for all of them); default ``("given",
        "uniform")`` when policies are supplied, else ``("uniform",)``.
    client:
        A ``dask.distributed.Client``: prompts are cut into chunks of
        ``chunk_size`` prompts that run as tasks on its cluster.
    ties:
        The tie convention (``ualign.TIES``) of every quantity.
    progress:
        Show a progress bar (tqdm when installed) on runs longer than a second.
    rlhf_beta:
        The KL strength ``beta`` of the ``"rlhf"`` method
        (:func:`ualign.rlhf_policy`: ``pi ∝ exp(r / beta)`` with Bradley–Terry rewards).
    n_boot, seed, ci:
        Bootstrap ``n_boot`` replicates of every prompt's population (voters
        resampled with replacement as multinomial weights, :mod:`ualign.bootstrap`;
        the types of a Plackett–Luce mixture) drawn from ``seed``, and add the
        columns :data:`BOOTSTRAP_COLUMNS`: central percentile intervals of mass
        ``ci`` of the robust level and of the exploitability, and the fraction of
        replicates whose best response is the row's. Fixed policies ("given",
        "uniform") are audited on all replicates in one pass over the voters (the
        types of a Plackett–Luce mixture): each voter's (type's) values
        ``P_i[y ≻ pi^{⊗k}]`` are computed once per k and each replicate's utilities
        are their sums weighted by its counts (:func:`ualign.bootstrap.audit_replicates`).
        The solvers' policies are solved again on each replicate, the replicates
        of a prompt as one batch sharing its rankings (MPNE and the optimal policy
        warm-started from the point estimate's policy). The same ``seed`` gives the
        same bits for any thread count, chunking or cluster.
    groups:
        Voter groups: one label per voter (per type for a Plackett–Luce mixture)
        for every prompt, a sequence aligned with ``models`` or a mapping with the
        same keys (an entry may be None). Adds the columns :data:`GROUP_COLUMNS`:
        the group whose robust level is lowest for the row's policy, that level,
        and ``group_levels``, every group's level as ``{label: level}`` (those of
        :func:`ualign.group_levels`). Default: the groups a
        :class:`ualign.io.Dataset` carries (``dataset.groups``), else none;
        ``False`` audits without groups even then.
    labels:
        Response labels per prompt (a mapping like ``models``, or a sequence
        aligned with it; an entry may be ``None``); default: a
        :class:`ualign.io.Dataset`'s ``responses``. With labels the result has
        the columns ``opponent_label`` and ``best_response_label`` next to
        ``opponent`` and ``best_response`` (missing where a prompt has no labels).

    Returns
    -------
    One row per (prompt, method, k), ordered by prompt, then method (in the
    order given), then k, with the columns :data:`COLUMNS`: ``robust_level`` =
    ``min_y P[pi^{⊗k} ≻ y]``, ``level_low`` / ``level_high`` = the smallest and
    largest robust level over the method's set of optimal policies (equal to
    ``robust_level`` except for ``"nlhf"`` when the maximal lottery is not unique:
    then ``robust_level`` is that of the lottery the solver returned, and the range
    covers every maximal lottery), ``bound`` = ``k/(k+1)``, ``opponent`` (the ``y``
    attaining the robust level), ``best_response`` and ``best_utility`` (the
    deviation maximising ``u_y = P[y ≻ pi^{⊗k}]`` and its utility) and
    ``exploitability`` = ``max_y u_y - sum_y pi(y) u_y``. For ``"committee"``
    (a multi-output policy ``rho``) the best response maximises ``P[y ≻ rho]``
    and the exploitability is NaN (there is no symmetric profile).
    """
    response_labels = _response_labels(models, labels)
    columns, keys = audit_columns(models, policies, ks, methods, client, ties=ties, chunk_size=chunk_size,
                                  progress=progress, rlhf_beta=rlhf_beta, n_boot=n_boot, seed=seed, ci=ci,
                                  groups=groups)
    return to_frame(columns, keys, response_labels)


def to_frame(columns: Columns, keys: Optional[List[Any]], labels: Optional[List[Any]] = None) -> Any:
    """The columns of :func:`audit_columns` as a pandas DataFrame (prompt keys
    restored); ``labels[p]`` (per prompt position, or None) adds the label columns."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("audit_many returns a pandas DataFrame: pip install pandas "
                          "(or ualign[dask], which includes it)") from None
    data = dict(columns)
    names = list(COLUMNS)
    if labels is not None:
        for field in _INT_FIELDS:
            data[f"{field}_label"] = _keys_array([None if labels[p] is None or y < 0 else labels[p][y]
                                                  for p, y in zip(columns["prompt"].tolist(), data[field].tolist())])
            names.insert(names.index(field) + 1, f"{field}_label")
    if keys is not None:
        data["prompt"] = _keys_array(keys)[columns["prompt"]]
    return pd.DataFrame({name: data[name] for name in [*names, *BOOTSTRAP_COLUMNS, *GROUP_COLUMNS] if name in data})


def _response_labels(models: Any, labels: Any) -> Optional[List[Any]]:
    """Per prompt position, the response labels (or None); None when there are none."""
    from .io import Dataset

    if labels is None:
        if not isinstance(models, Dataset) or not models.responses:
            return None
        labels = models.responses
    if isinstance(labels, Mapping):
        if not isinstance(models, Mapping):
            raise TypeError("labels: a mapping needs models given as a mapping too")
        unknown = [key for key in labels if key not in models]
        if unknown:
            raise ValueError(f"labels: no model for prompt {unknown[0]!r}")
        keys: List[Any] = list(models.keys())
        rows = [labels.get(key) for key in keys]
    elif isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"labels: expected a sequence or mapping of response labels, got {type(labels).__name__}")
    else:
        keys = list(models.keys()) if isinstance(models, Mapping) else list(range(len(models)))
        rows = list(labels)
        if len(rows) != len(keys):
            raise ValueError(f"labels: expected one entry per prompt ({len(keys)}), got {len(rows)}")
    model_list = [models[key] for key in keys] if isinstance(models, Mapping) else list(models)
    for key, row, model in zip(keys, rows, model_list):
        if row is None:
            continue
        if isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(f"labels[{key!r}]: expected a sequence of labels, got {type(row).__name__}")
        if isinstance(model, PreferenceModel) and len(row) != model.n_responses:
            raise ValueError(f"labels[{key!r}]: expected {model.n_responses} labels, got {len(row)}")
    return [None if row is None else list(row) for row in rows]


def _keys_array(keys: List[Any]) -> NDArray[Any]:
    array = np.empty(len(keys), dtype=object)
    array[:] = keys
    return array


def audit_columns(models: Any, policies: Any = None, ks: Any = range(1, 9), methods: Any = None,
                  client: Any = None, *, ties: str = "uniform", chunk_size: Optional[int] = None,
                  progress: bool = False, rlhf_beta: float = 0.1, n_boot: Optional[int] = None,
                  seed: Optional[int] = None, ci: float = 0.95,
                  groups: Any = None) -> Tuple[Columns, Optional[List[Any]]]:
    """:func:`audit_many` without pandas: ``(columns, keys)``, where ``columns``
    maps each name of :data:`COLUMNS` (and of :data:`BOOTSTRAP_COLUMNS`,
    :data:`GROUP_COLUMNS` when asked for) to a numpy array and ``columns["prompt"]``
    holds prompt positions; ``keys`` (None for a sequence of models) maps
    positions to the names of a mapping."""
    tie_code(ties)
    options: Dict[str, Any] = {"rlhf_beta": as_positive_real(rlhf_beta, "rlhf_beta")}
    keys, model_list, policy_sets = _collect(models, policies)
    if n_boot is not None:
        plan = BootstrapPlan.create(n_boot, seed, ci)
        for label, model in zip(keys if keys is not None else range(len(model_list)), model_list):
            if not hasattr(model, "_store"):
                raise TypeError(f"n_boot: models[{label!r}] is a {type(model).__name__}; bootstrap replicates "
                                "need a RankingPopulation or a PlackettLuceMixture")
        options["bootstrap"] = plan
    if groups is None:
        from .io import Dataset

        groups = models.groups if isinstance(models, Dataset) and models.groups else False
    if groups is not False:
        options["groups"] = _collect_groups(groups, keys, model_list)
    k_values = as_ks(ks)
    present = [method for method, rows in policy_sets.items() if any(p is not None for p in rows)]
    method_list = resolve_methods(methods, list(policy_sets), present)
    labels: List[Any] = keys if keys is not None else list(range(len(model_list)))
    if client is not None:
        if chunk_size is not None:
            chunk_size = as_count(chunk_size, "chunk_size")
        columns = _audit_on_cluster(client, model_list, policy_sets, labels, k_values, method_list, ties,
                                    options, chunk_size, progress)
    else:
        with Progress(len(model_list) * len(method_list), enabled=progress, unit="prompt-method") as bar:
            columns = _audit_local(model_list, policy_sets, labels, k_values, method_list, ties, options,
                                   bar.update, first=0)
    return columns, keys


def policy_method(name: Any) -> str:
    """The method under which :func:`audit_many` audits the policy named ``name``."""
    return f"{POLICY_PREFIX}{name}"


def resolve_methods(methods: Any, policy_methods: Sequence[str],
                    present: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """The methods to run: ``methods`` checked against :data:`METHODS` and the
    methods of the supplied policies (``["given"]`` for unnamed ones,
    ``"policy:<name>"`` for named ones), with ``"given"`` standing for all named
    policies. The default is the policies that have an entry (``present``,
    default all of them), then ``"uniform"``."""
    named = tuple(method for method in policy_methods if method != "given")
    if methods is None:
        given = tuple(policy_methods if present is None else present)
        return given + ("uniform",)
    method_list = as_choices(methods, METHODS + named, "methods")
    if "given" in method_list and not policy_methods:
        raise ValueError("methods: 'given' needs policies")
    if named and "given" in method_list:
        before = method_list[:method_list.index("given")]
        rest = tuple(method for method in method_list if method not in named and method != "given")
        at = sum(method not in named for method in before)
        method_list = rest[:at] + named + rest[at:]
    return method_list


# -- inputs ------------------------------------------------------------------------------------------

def _collect(models: Any, policies: Any) -> Tuple[Optional[List[Any]], List[PreferenceModel], Dict[str, List[Any]]]:
    """(keys or None, models, {method: validated policy or None per prompt}):
    method ``"given"`` for unnamed policies, ``"policy:<name>"`` for named ones."""
    if isinstance(models, PreferenceModel):
        raise TypeError("models: expected a sequence or mapping of preference models (one per prompt), "
                        "got a single model; wrap it in a list")
    keys: Optional[List[Any]]
    if isinstance(models, Mapping):
        keys = list(models.keys())
        model_list = [models[key] for key in keys]
    elif isinstance(models, (str, bytes)) or not hasattr(models, "__iter__"):
        raise TypeError(f"models: expected a sequence or mapping of preference models, got {type(models).__name__}")
    else:
        keys = None
        model_list = list(models)
    if not model_list:
        raise ValueError("models: needs at least one prompt")
    labels = keys if keys is not None else list(range(len(model_list)))
    for label, model in zip(labels, model_list):
        if not isinstance(model, PreferenceModel):
            raise TypeError(f"models[{label!r}]: expected a preference model, got {type(model).__name__}")
    if policies is None:
        return keys, model_list, {}
    named = isinstance(policies, Mapping) and len(policies) > 0 and \
        (keys is None or (all(isinstance(entry, Mapping) for entry in policies.values())
                          and not any(name in models for name in policies)))
    if not named:
        return keys, model_list, {"given": _policy_rows(policies, models, keys, model_list, labels, "policies")}
    sets: Dict[str, List[Any]] = {}
    for name, entry in policies.items():
        method = policy_method(name)
        if method in sets:
            raise ValueError(f"policies: two names give the method {method!r}")
        if keys is None and _is_vector(entry):
            raise TypeError(f"policies[{name!r}]: expected one policy per prompt, got one probability vector (the "
                            "keys of policies name policies; a mapping of prompts to policies needs models given as "
                            "a mapping too)")
        sets[method] = _policy_rows(entry, models, keys, model_list, labels, f"policies[{name!r}]")
    return keys, model_list, sets


def _is_vector(value: Any) -> bool:
    """Whether ``value`` reads as one numeric vector (not one entry per prompt)."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged: one policy per prompt of different sizes
        return False
    return array.ndim == 1 and array.dtype.kind in "iuf"


def _policy_rows(policies: Any, models: Any, keys: Optional[List[Any]], model_list: List[PreferenceModel],
                 labels: List[Any], name: str) -> List[Any]:
    """One validated policy (or None) per prompt from a sequence or mapping of them."""
    if isinstance(policies, Mapping):
        if keys is None:
            raise TypeError(f"{name}: a mapping needs models given as a mapping too")
        unknown = [key for key in policies if key not in models]
        if unknown:
            raise ValueError(f"{name}: no model for prompt {unknown[0]!r} (several named policies: give each as a "
                             "mapping of prompts to policies)")
        rows = [policies.get(key) for key in keys]
    else:
        if isinstance(policies, (str, bytes)) or not hasattr(policies, "__len__"):
            raise TypeError(f"{name}: expected a sequence or mapping of policies, got {type(policies).__name__}")
        rows = list(policies)
        if len(rows) != len(model_list):
            raise ValueError(f"{name}: expected one policy per prompt ({len(model_list)}), got {len(rows)}")
    present = [p for p, row in enumerate(rows) if row is not None]
    flat, offsets = as_distribution_batch([rows[p] for p in present], [model_list[p].n_responses for p in present],
                                          [labels[p] for p in present], name)
    checked: List[Any] = [None] * len(model_list)
    for j, p in enumerate(present):
        checked[p] = flat[offsets[j]:offsets[j + 1]]
    return checked


def _collect_groups(groups: Any, keys: Optional[List[Any]], models: List[PreferenceModel]) -> List[Any]:
    """Validated group labels (sorted distinct labels, each voter's index) or None per prompt."""
    from .groups import as_group_labels

    labels = keys if keys is not None else list(range(len(models)))
    if isinstance(groups, Mapping):
        if keys is None:
            raise TypeError("groups: a mapping needs models given as a mapping too")
        unknown = [key for key in groups if key not in labels]
        if unknown:
            raise ValueError(f"groups: no model for prompt {unknown[0]!r}")
        rows = [groups.get(key) for key in keys]
    else:
        if isinstance(groups, (str, bytes)) or not hasattr(groups, "__len__"):
            raise TypeError(f"groups: expected a sequence or mapping of voter labels, got {type(groups).__name__}")
        rows = list(groups)
        if len(rows) != len(models):
            raise ValueError(f"groups: expected one label array per prompt ({len(models)}), got {len(rows)}")
    return [None if row is None else as_group_labels(row, model, f"groups[{label!r}]")
            for label, row, model in zip(labels, rows, models)]


# -- the local run -----------------------------------------------------------------------------------

def _audit_local(models: List[PreferenceModel], policy_sets: Dict[str, List[Any]], labels: List[Any],
                 ks: NDArray[np.int64], methods: Sequence[str], ties: str, options: Dict[str, Any],
                 update: Callable[[int], None], first: int) -> Columns:
    """Columns for prompts 0..P-1 (prompt = position; ``first + position`` in the
    whole audit, which seeds the prompt's bootstrap replicates)."""
    n_prompts = len(models)
    blocks: List[Dict[str, NDArray[Any]]] = []
    present: List[NDArray[np.bool_]] = []
    solved: Dict[str, Tuple[Dict[str, NDArray[Any]], List[Any]]] = {}
    for method in methods:
        if method in policy_sets:
            policies = policy_sets[method]
            mask = np.array([p is not None for p in policies], dtype=bool)
            chosen = policies
            block = _audit_fixed(models, policies, ks, ties, update, mask)
        elif method == "uniform":
            mask = np.ones(n_prompts, dtype=bool)
            chosen = [_uniform(model.n_responses) for model in models]
            block = _audit_fixed(models, [None] * n_prompts, ks, ties, update, mask)
        else:
            mask = np.ones(n_prompts, dtype=bool)
            twin = _SAME_SOLVE.get(method) if ties == "uniform" else None
            if twin in solved:  # the same policies, solved by the same calls: audited once
                block, chosen = dict(solved[twin][0]), solved[twin][1]
                update(n_prompts)
            else:
                block, chosen = _audit_solver(method, models, labels, ks, ties, options, update)
                solved[method] = dict(block), chosen
        if "groups" in options:
            _add_group_columns(block, chosen, mask, options["groups"], models, ks, ties)
        if "bootstrap" in options:
            fixed = method == "uniform" or method in policy_sets
            _add_bootstrap_columns(block, method, fixed, chosen, mask, models, labels, ks, ties, options, first)
        blocks.append(block)
        present.append(mask)
    return _assemble(blocks, present, n_prompts, ks, methods)


def _add_group_columns(block: Dict[str, NDArray[Any]], chosen: List[Any], mask: NDArray[np.bool_],
                       groups: List[Any], models: List[PreferenceModel], ks: NDArray[np.int64], ties: str) -> None:
    """The worst group and its level, for every prompt with groups."""
    from .groups import group_levels

    n_prompts, n_ks = len(models), ks.shape[0]
    block["worst_group"] = np.full((n_prompts, n_ks), None, dtype=object)
    block["worst_group_level"] = np.full((n_prompts, n_ks), np.nan)
    block["group_levels"] = np.full((n_prompts, n_ks), None, dtype=object)
    for p in np.flatnonzero(mask).tolist():
        if groups[p] is None:
            continue
        labels, inverse = groups[p]
        voters = labels[inverse]
        # one policy per k, or one for all k
        for columns, policy in ([(slice(j, j + 1), chosen[p][j]) for j in range(n_ks)]
                                if isinstance(chosen[p], list) else [(slice(0, n_ks), chosen[p])]):
            result = group_levels(models[p], policy, ks[columns], voters, ties)
            block["worst_group"][p, columns] = result.worst_group
            block["worst_group_level"][p, columns] = result.worst_level
            for j, level in zip(range(n_ks)[columns], result.levels.T.tolist()):
                block["group_levels"][p, j] = dict(zip(result.groups.tolist(), level))


def _add_bootstrap_columns(block: Dict[str, NDArray[Any]], method: str, fixed: bool, chosen: List[Any],
                           mask: NDArray[np.bool_], models: List[PreferenceModel], labels: List[Any],
                           ks: NDArray[np.int64], ties: str, options: Dict[str, Any], first: int) -> None:
    """Percentile intervals over the bootstrap replicates of every prompt. A fixed
    policy (``fixed``: given, not solved) is audited on all B replicates in one pass
    over the voters of a population of rankings or the types of a Plackett–Luce
    mixture (:func:`audit_replicates`); a solver's replicates share the prompt's
    rankings or types and are solved again as a batch of B prompts."""
    plan: BootstrapPlan = options["bootstrap"]
    n_prompts, n_ks = len(models), ks.shape[0]
    for name in BOOTSTRAP_COLUMNS:
        block[name] = np.full((n_prompts, n_ks), np.nan)
    quiet: Callable[[int], None] = lambda n: None  # noqa: E731
    for p in np.flatnonzero(mask).tolist():
        counts = plan.counts(models[p], first + p)
        if fixed:
            values = audit_replicates(models[p], chosen[p], counts, ks, ties)
        else:
            values, _ = _audit_solver(method, replicate_models(models[p], counts), [labels[p]] * plan.n_boot, ks,
                                      ties, options, quiet,
                                      init=chosen[p])
        block["level_ci_low"][p], block["level_ci_high"][p] = plan.interval(values["robust_level"])
        block["exploitability_ci_low"][p], block["exploitability_ci_high"][p] = plan.interval(
            values["exploitability"])
        block["best_response_freq"][p] = (values["best_response"] == block["best_response"][p]).mean(axis=0)


def _assemble(blocks: List[Dict[str, NDArray[Any]]], present: List[NDArray[np.bool_]], n_prompts: int,
              ks: NDArray[np.int64], methods: Sequence[str]) -> Columns:
    """The tidy columns from one (P, K) block per method: rows prompt-major, then
    method, then k; rows of prompts outside a method's mask are left out."""
    n_ks = ks.shape[0]
    mask = np.stack(present, axis=1)  # (P, J)
    columns: Columns = {}
    selected = np.repeat(mask.reshape(-1), n_ks)
    extra = tuple(name for name in BOOTSTRAP_COLUMNS + GROUP_COLUMNS if name in blocks[0])
    for field in _FIELDS + _RANGE_FIELDS + extra:
        stacked = np.stack([block.get(field, block["robust_level"]) for block in blocks], axis=1)  # (P, J, K)
        columns[field] = stacked.reshape(-1)[selected]
    grid_p, grid_j, grid_k = np.meshgrid(np.arange(n_prompts), np.arange(len(methods)), np.arange(n_ks),
                                         indexing="ij")
    columns["prompt"] = grid_p.reshape(-1)[selected]
    columns["method"] = np.array(methods, dtype=object)[grid_j.reshape(-1)[selected]]
    columns["k"] = ks[grid_k.reshape(-1)[selected]]
    columns["bound"] = columns["k"] / (columns["k"] + 1.0)
    return {name: columns[name] for name in COLUMNS + extra}


def _empty_block(n_prompts: int, n_ks: int) -> Dict[str, NDArray[Any]]:
    block: Dict[str, NDArray[Any]] = {}
    for field in _FIELDS:
        if field in _INT_FIELDS:
            block[field] = np.full((n_prompts, n_ks), -1, dtype=np.int64)
        else:
            block[field] = np.full((n_prompts, n_ks), np.nan)
    return block


def _audit_fixed(models: List[PreferenceModel], policies: List[Any], ks: NDArray[np.int64], ties: str,
                 update: Callable[[int], None], mask: Optional[NDArray[np.bool_]] = None,
                 count: bool = True) -> Dict[str, NDArray[Any]]:
    """Audit one fixed single-output policy per prompt (None: uniform) for every k.

    Populations of rankings go to the C++ batch kernel, other models through the
    per-prompt API. Prompts outside ``mask`` are skipped (NaN / -1)."""
    from .ranking import RankingPopulation

    n_prompts, n_ks = len(models), ks.shape[0]
    block = _empty_block(n_prompts, n_ks)
    todo = np.flatnonzero(mask) if mask is not None else np.arange(n_prompts)
    ranking = [p for p in todo if isinstance(models[p], RankingPopulation)]
    others = [p for p in todo if not isinstance(models[p], RankingPopulation)]
    core = _core_loader.core()
    code = tie_code(ties)
    uniform = all(policies[p] is None for p in ranking)
    for start in range(0, len(ranking), _BLOCK):
        chunk = ranking[start:start + _BLOCK]
        stores = [models[p]._store for p in chunk]  # type: ignore[attr-defined]
        if uniform:
            out = core.audit_policies(stores, None, None, ks, code)
        else:
            rows = [policies[p] if policies[p] is not None else _uniform(models[p].n_responses) for p in chunk]
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum([row.shape[0] for row in rows], out=offsets[1:])
            out = core.audit_policies(stores, np.concatenate(rows), offsets, ks, code)
        for field in _FIELDS:
            block[field][chunk] = out[field]
        if count:
            update(len(chunk))
    for p in others:
        pi = policies[p] if policies[p] is not None else _uniform(models[p].n_responses)
        for j, k in enumerate(ks):
            audit = _audit_product(models[p], pi, int(k), ties)
            for field in _FIELDS:
                block[field][p, j] = audit[field]
        if count:
            update(1)
    return block


def _uniform(m: int) -> NDArray[np.float64]:
    return np.full(m, 1.0 / m)  # the same bits as the C++ kernel's uniform policy


def _audit_product(model: PreferenceModel, pi: NDArray[np.float64], k: int, ties: str) -> Dict[str, Any]:
    """One prompt, one k, through the per-prompt API."""
    u = model.utilities(pi, k, ties)
    mirror = mirror_ties(ties)
    losses = u if mirror == ties else model.beats(Product(pi, k), mirror)
    return audit_utilities(u, losses, pi)._asdict()


def _audit_multiset(model: PreferenceModel, rho: MultisetPolicy, ties: str) -> Dict[str, Any]:
    return audit_utilities(model.beats(rho, ties), model.beats(rho, mirror_ties(ties)))._asdict()


def _batch_solvers() -> Dict[str, Callable[..., Any]]:
    from .solvers import rlhf_policy_batch, solve_committee, solve_mpne_batch, solve_nlhf_batch, solve_optimal_batch

    def committee(models: List[PreferenceModel], k: int, ties: str) -> List[Any]:
        return [solve_committee(model, k, ties=ties) for model in models]

    return {"nlhf": solve_nlhf_batch, "rlhf": rlhf_policy_batch, "mpne": solve_mpne_batch,
            "optimal": solve_optimal_batch, "committee": committee}


#: The game whose MPNE is audited under each level convention.
_MPNE_GAME_TIES = {"uniform": "uniform", "half": "uniform", "weak": "strict", "strict": "strict"}
#: Under "uniform" ties the optimal k-sample policy is the MPNE, and solve_optimal_batch
#: returns the policies of the same solve_mpne_batch call: an audit with both methods
#: solves once.
_SAME_SOLVE = {"mpne": "optimal", "optimal": "mpne"}


def _audit_solver(method: str, models: List[PreferenceModel], labels: List[Any], ks: NDArray[np.int64],
                  ties: str, options: Dict[str, Any], update: Callable[[int], None],
                  init: Any = None) -> Tuple[Dict[str, NDArray[Any]], List[Any]]:
    """Solve with the method's solver, a block of prompts at a time, then audit what
    it returns. Returns the block and the policies audited, per prompt: one policy
    ("nlhf", "rlhf") or a list with one per k. ``init`` (one policy per k, as
    returned) warm-starts every prompt's "mpne" and "optimal" solves at each k."""
    n_prompts, n_ks = len(models), ks.shape[0]
    blocks = [list(range(start, min(start + _SOLVER_BLOCK, n_prompts))) for start in range(0, n_prompts, _SOLVER_BLOCK)]

    def solve(rows: List[int], *args: Any, **kwargs: Any) -> List[Any]:
        try:
            return _batch_solvers()[method]([models[p] for p in rows], *args, **kwargs)  # type: ignore[no-any-return]
        except (ValueError, TypeError) as error:
            span = repr(labels[rows[0]]) + ("" if len(rows) == 1 else f"..{labels[rows[-1]]!r}")
            raise type(error)(f"prompts {span}: {method}: {error}") from error

    def vectors(rows: List[int], results: List[Any]) -> List[NDArray[np.float64]]:
        flat, offsets = as_distribution_batch([result.policy for result in results],
                                              [models[p].n_responses for p in rows], [labels[p] for p in rows],
                                              f"{method} policy of prompt")
        return np.split(flat, offsets[1:-1])

    if method in ("nlhf", "rlhf"):  # one policy per prompt, audited for every k
        args = (options["rlhf_beta"],) if method == "rlhf" else ()
        policies: List[Any] = []
        results: List[Any] = []
        for rows in blocks:
            solved = solve(rows, *args, ties=ties)
            results.extend(solved)
            policies.extend(vectors(rows, solved))
            update(len(rows))
        block = _audit_fixed(models, policies, ks, ties, update, count=False)
        if method == "nlhf":
            _nlhf_level_ranges(block, models, results, ks, ties)
        return block, policies
    block = _empty_block(n_prompts, n_ks)
    chosen: List[Any] = [[None] * n_ks for _ in range(n_prompts)]
    if method == "committee":
        for rows in blocks:
            for p in rows:
                for j, k in enumerate(ks):
                    rho = solve([p], int(k), ties=ties)[0].policy
                    chosen[p][j] = rho
                    audit = _audit_multiset(models[p], rho, ties)
                    for field in _FIELDS:
                        block[field][p, j] = audit[field]
                update(1)
        return block, chosen
    # mpne, optimal: one policy per (prompt, k), all prompts of a block solved together,
    # each k warm-started from the policies of the next smaller one
    game = _MPNE_GAME_TIES[ties] if method == "mpne" else ties
    for rows in blocks:
        previous: Any = None
        for j in np.argsort(ks, kind="stable"):
            start = previous if init is None else [init[j]] * len(rows)
            results = solve(rows, int(ks[j]), ties=game, init=start)
            if all(_certifies_audit(result.certificate, ties) for result in results):
                previous = [result.policy for result in results]
                column = _certified_rows(results)
            else:
                previous = vectors(rows, results)
                column = _audit_fixed([models[p] for p in rows], previous, ks[j:j + 1], ties, update, count=False)
            for p, policy in zip(rows, previous):
                chosen[p][j] = policy
            for field in _FIELDS:
                block[field][rows, j] = column[field][:, 0]
        update(len(rows))
    return block, chosen


def _certifies_audit(certificate: Any, ties: str) -> bool:
    """Whether a solver's certificate is already the audit of its policy under
    ``ties``: a single-output policy's level and game both under ``ties`` (a convention
    that is its own mirror), so its utilities are the audit's, and its losses too."""
    return (certificate.exploitability is not None and certificate.ties == ties
            and certificate.game_ties == ties)


def _certified_rows(results: List[Any]) -> Dict[str, NDArray[Any]]:
    """The audit columns (one k) of policies whose certificates are their audits
    (:func:`_certifies_audit`): the same kernel pass and audit arithmetic, not repeated.
    The losses are the utilities, so the opponent is the best response."""
    certificates = [result.certificate for result in results]
    best = np.array([[c.best_response] for c in certificates], dtype=np.int64)
    return {"robust_level": np.array([[c.robust_level] for c in certificates]), "opponent": best,
            "best_response": best.copy(), "best_utility": np.array([[c.best_response_utility] for c in certificates]),
            "exploitability": np.array([[c.exploitability] for c in certificates])}


def _nlhf_level_ranges(block: Dict[str, NDArray[Any]], models: List[PreferenceModel], results: List[Any],
                       ks: NDArray[np.int64], ties: str) -> None:
    """The range of robust levels over all maximal lotteries, where there are several
    (all such prompts searched together for each k)."""
    from .solvers.nlhf import level_ranges

    for field in _RANGE_FIELDS:
        block[field] = block["robust_level"].copy()
    several = [p for p, result in enumerate(results) if not result.unique]
    if not several:
        return
    for j, k in enumerate(ks):
        spans = level_ranges([models[p] for p in several], [results[p].lotteries for p in several], int(k), ties)
        block["level_low"][several, j] = [span.min_level for span in spans]
        block["level_high"][several, j] = [span.max_level for span in spans]


# Prompts solved together by the batched solvers: bounds their padded work arrays
# (a Newton step holds support x responses per prompt).
_SOLVER_BLOCK = 1024


# -- the cluster run ---------------------------------------------------------------------------------

def _pack(models: List[PreferenceModel], policy_sets: Dict[str, List[Any]], labels: List[Any], first: int = 0,
          groups: Optional[List[Any]] = None) -> Dict[str, Any]:
    """A chunk of prompts for the wire: the populations of rankings and the policies
    packed into a few flat arrays (pickling thousands of small objects one by one
    costs more than auditing them). Levels and normalised weights travel exactly,
    so the worker's populations compute the same bits."""
    from .ranking import RankingPopulation

    ranking = [j for j, model in enumerate(models) if type(model) is RankingPopulation]
    levels = [models[j].ranks for j in ranking]  # type: ignore[attr-defined]
    return {
        "size": len(models), "labels": labels, "first": first, "groups": groups,
        "ranking": np.array(ranking, dtype=np.int64),
        "n_levels": (np.concatenate([models[j]._store.n_levels for j in ranking])  # type: ignore[attr-defined]
                     if ranking else np.zeros(0, np.int32)),
        "shapes": np.array([level.shape for level in levels], dtype=np.int64).reshape(-1, 2),
        "levels": np.concatenate([level.reshape(-1) for level in levels]) if levels else np.zeros(0, np.uint8),
        "weights": np.concatenate([models[j].weights for j in ranking]) if ranking else np.zeros(0),  # type: ignore[attr-defined]
        "others": {j: model for j, model in enumerate(models) if type(model) is not RankingPopulation},
        "policy_sets": {method: _pack_policies(policies) for method, policies in policy_sets.items()},
    }


def _pack_policies(policies: List[Any]) -> Dict[str, NDArray[Any]]:
    """The prompts that have a policy, and their policies concatenated (with offsets)."""
    present = [j for j, policy in enumerate(policies) if policy is not None]
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum([policies[j].shape[0] for j in present], out=offsets[1:])
    return {"present": np.array(present, dtype=np.int64),
            "policies": np.concatenate([policies[j] for j in present]) if present else np.zeros(0),
            "offsets": offsets}


def _unpack(chunk: Dict[str, Any]) -> Tuple[List[PreferenceModel], Dict[str, List[Any]], List[Any]]:
    from .ranking import RankingPopulation

    store_from_levels = _core_loader.core().RankingStore.from_levels
    models: List[Any] = [None] * chunk["size"]
    cells = voters = 0
    for j, (n, m) in zip(chunk["ranking"].tolist(), chunk["shapes"].tolist()):
        levels = chunk["levels"][cells:cells + n * m].reshape(n, m)
        store = store_from_levels(levels, chunk["weights"][voters:voters + n])
        models[j] = RankingPopulation._from_store(store, None)
        cells, voters = cells + n * m, voters + n
    for j, model in chunk["others"].items():
        models[j] = model
    policy_sets: Dict[str, List[Any]] = {}
    for method, packed in chunk["policy_sets"].items():
        policies: List[Any] = [None] * chunk["size"]
        offsets = packed["offsets"]
        for i, j in enumerate(packed["present"].tolist()):
            policies[j] = packed["policies"][offsets[i]:offsets[i + 1]]
        policy_sets[method] = policies
    return models, policy_sets, chunk["labels"]


def _audit_part(chunk: Dict[str, Any], ks: NDArray[np.int64], methods: Tuple[str, ...], ties: str,
                options: Dict[str, Any]) -> Columns:
    """One task: the local audit of a chunk of prompts (positions local to the chunk)."""
    if chunk["groups"] is not None:
        options = {**options, "groups": chunk["groups"]}
    fixed = set(methods) <= set(chunk["policy_sets"]) | {"uniform"}
    if not chunk["others"] and fixed and set(options) == {"rlhf_beta"}:
        return _audit_packed(chunk, ks, methods, ties)
    models, policy_sets, labels = _unpack(chunk)
    return _audit_local(models, policy_sets, labels, ks, methods, ties, options, lambda n: None, first=chunk["first"])


def _audit_packed(chunk: Dict[str, Any], ks: NDArray[np.int64], methods: Sequence[str], ties: str) -> Columns:
    """Given (named or not) and uniform policies of a chunk of populations of rankings, straight from
    the packed arrays (no store is built per prompt): the kernels and the per-prompt
    computation are those of the local run, so are the bits."""
    core = _core_loader.core()
    n_prompts, code = chunk["size"], tie_code(ties)
    arrays = (chunk["levels"], chunk["shapes"], chunk["n_levels"], chunk["weights"])
    blocks, present = [], []
    for method in methods:
        if method == "uniform":
            blocks.append(core.audit_packed(*arrays, None, None, ks, code))
            present.append(np.ones(n_prompts, dtype=bool))
            continue
        packed = chunk["policy_sets"][method]
        mask = np.zeros(n_prompts, dtype=bool)
        mask[packed["present"]] = True
        # prompts without a policy get the uniform one here; their rows are dropped
        m = chunk["shapes"][:, 1]
        sizes = m.copy()
        flat = np.empty(int(sizes.sum()))
        offsets = np.zeros(n_prompts + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        given = packed["offsets"]
        for i, p in enumerate(packed["present"].tolist()):
            flat[offsets[p]:offsets[p + 1]] = packed["policies"][given[i]:given[i + 1]]
        for p in np.flatnonzero(~mask).tolist():
            flat[offsets[p]:offsets[p + 1]] = _uniform(int(m[p]))
        blocks.append(core.audit_packed(*arrays, flat, offsets, ks, code))
        present.append(mask)
    return _assemble(blocks, present, n_prompts, ks, methods)


def _audit_on_cluster(client: Any, models: List[PreferenceModel], policy_sets: Dict[str, List[Any]], labels: List[Any],
                      ks: NDArray[np.int64], methods: Tuple[str, ...], ties: str, options: Dict[str, Any],
                      chunk_size: Optional[int], progress: bool) -> Columns:
    try:
        from distributed import as_completed
    except ImportError:
        raise ImportError("client: running on a Dask cluster needs dask.distributed: "
                          "pip install 'ualign[dask]'") from None
    if not hasattr(client, "scatter") or not hasattr(client, "map"):
        raise TypeError(f"client: expected a dask.distributed.Client, got {type(client).__name__}")
    n_prompts = len(models)
    if chunk_size is None:
        threads = max(1, sum(client.nthreads().values()))  # worker threads of the cluster
        chunk_size = max(1, min(2000, math.ceil(n_prompts / (4 * threads))))
    starts = list(range(0, n_prompts, chunk_size))
    groups = options.get("groups")
    parts = [_pack(models[a:a + chunk_size],
                   {method: policies[a:a + chunk_size] for method, policies in policy_sets.items()},
                   labels[a:a + chunk_size], a, None if groups is None else groups[a:a + chunk_size]) for a in starts]
    shared = {name: value for name, value in options.items() if name != "groups"}
    data = client.scatter(parts, hash=False)
    futures = client.map(_audit_part, data, ks=ks, methods=methods, ties=ties, options=shared, pure=False)
    index = {future.key: j for j, future in enumerate(futures)}
    results: List[Any] = [None] * len(futures)
    with Progress(n_prompts * len(methods), enabled=progress, unit="prompt-method") as bar:
        for future in as_completed(futures):  # type: ignore[no-untyped-call, unused-ignore]
            j = index[future.key]
            results[j] = future.result()
            bar.update(parts[j]["size"] * len(methods))
    columns: Columns = {}
    for name in results[0]:
        pieces = []
        for start, result in zip(starts, results):
            pieces.append(result[name] + start if name == "prompt" else result[name])
        columns[name] = np.concatenate(pieces)
    return columns


__all__ = ["COLUMNS", "METHODS", "POLICY_PREFIX", "audit_columns", "audit_many", "policy_method", "resolve_methods",
           "to_frame"]

