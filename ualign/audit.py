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
    as_distribution,
    as_distribution_batch,
    as_ks,
    as_positive_real,
    mirror_ties,
    tie_code,
)
from .game import audit_utilities
from .model import PreferenceModel
from .operands import MultisetPolicy, Product

#: Methods :func:`audit_many` compares. "given": the supplied policies; "uniform":
#: the uniform policy; the others are the policies of the solvers (docs/concepts.md, "Solvers"):
#: NLHF (maximal lottery), RLHF (Bradley–Terry reward maximiser), MPNE_k, the
#: optimal single-output k-sample policy and the optimal committee (a
#: multi-output policy).
METHODS = ("given", "uniform", "nlhf", "rlhf", "mpne", "optimal", "committee")

#: Columns of the result, in order.
COLUMNS = ("prompt", "method", "k", "robust_level", "level_low", "level_high", "bound", "opponent", "best_response",
           "best_utility",
           "exploitability")

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
               progress: bool = False, rlhf_beta: float = 0.1) -> Any:
    """Audit many prompts; returns a tidy ``pandas.DataFrame``.

    Parameters
    ----------
    models:
        A sequence of preference models (prompt = position) or a mapping of
        prompt names to models. Sizes may differ from prompt to prompt.
    policies:
        The policies to audit (method ``"given"``): a sequence aligned with
        ``models`` or a mapping with the same keys; an entry may be ``None``
        (that prompt then has no "given" rows). Each is a probability vector over
        its prompt's responses, used exactly as given.
    ks:
        Sample counts ``k`` (distinct integers >= 1).
    methods:
        Any of :data:`METHODS`; default ``("given", "uniform")`` when policies are
        supplied, else ``("uniform",)``.
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
    columns, keys = audit_columns(models, policies, ks, methods, client, ties=ties, chunk_size=chunk_size,
                                  progress=progress, rlhf_beta=rlhf_beta)
    return to_frame(columns, keys)


def to_frame(columns: Columns, keys: Optional[List[Any]]) -> Any:
    """The columns of :func:`audit_columns` as a pandas DataFrame (prompt keys restored)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("audit_many returns a pandas DataFrame: pip install pandas "
                          "(or ualign[dask], which includes it)") from None
    data = dict(columns)
    if keys is not None:
        data["prompt"] = _keys_array(keys)[columns["prompt"]]
    return pd.DataFrame({name: data[name] for name in COLUMNS})


def _keys_array(keys: List[Any]) -> NDArray[Any]:
    array = np.empty(len(keys), dtype=object)
    array[:] = keys
    return array


def audit_columns(models: Any, policies: Any = None, ks: Any = range(1, 9), methods: Any = None,
                  client: Any = None, *, ties: str = "uniform", chunk_size: Optional[int] = None,
                  progress: bool = False, rlhf_beta: float = 0.1) -> Tuple[Columns, Optional[List[Any]]]:
    """:func:`audit_many` without pandas: ``(columns, keys)``, where ``columns``
    maps each name of :data:`COLUMNS` to a numpy array and ``columns["prompt"]``
    holds prompt positions; ``keys`` (None for a sequence of models) maps
    positions to the names of a mapping."""
    tie_code(ties)
    options = {"rlhf_beta": as_positive_real(rlhf_beta, "rlhf_beta")}
    keys, model_list, policy_list = _collect(models, policies)
    k_values = as_ks(ks)
    if methods is None:
        methods = ("given", "uniform") if any(p is not None for p in policy_list) else ("uniform",)
    method_list = as_choices(methods, METHODS, "methods")
    if "given" in method_list and policies is None:
        raise ValueError("methods: 'given' needs policies")
    labels: List[Any] = keys if keys is not None else list(range(len(model_list)))
    if client is not None:
        if chunk_size is not None:
            chunk_size = as_count(chunk_size, "chunk_size")
        columns = _audit_on_cluster(client, model_list, policy_list, labels, k_values, method_list, ties,
                                    options, chunk_size, progress)
    else:
        with Progress(len(model_list) * len(method_list), enabled=progress, unit="prompt-method") as bar:
            columns = _audit_local(model_list, policy_list, labels, k_values, method_list, ties, options,
                                   bar.update)
    return columns, keys


# -- inputs ------------------------------------------------------------------------------------------

def _collect(models: Any, policies: Any) -> Tuple[Optional[List[Any]], List[PreferenceModel], List[Any]]:
    """(keys or None, models, validated policies or None per prompt)."""
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
        return keys, model_list, [None] * len(model_list)
    if isinstance(policies, Mapping):
        if keys is None:
            raise TypeError("policies: a mapping needs models given as a mapping too")
        unknown = [key for key in policies if key not in models]
        if unknown:
            raise ValueError(f"policies: no model for prompt {unknown[0]!r}")
        rows = [policies.get(key) for key in keys]
    else:
        if isinstance(policies, (str, bytes)) or not hasattr(policies, "__len__"):
            raise TypeError(f"policies: expected a sequence or mapping of policies, got {type(policies).__name__}")
        rows = list(policies)
        if len(rows) != len(model_list):
            raise ValueError(f"policies: expected one policy per prompt ({len(model_list)}), got {len(rows)}")
    present = [p for p, row in enumerate(rows) if row is not None]
    flat, offsets = as_distribution_batch([rows[p] for p in present], [model_list[p].n_responses for p in present],
                                          [labels[p] for p in present], "policies")
    checked: List[Any] = [None] * len(model_list)
    for j, p in enumerate(present):
        checked[p] = flat[offsets[j]:offsets[j + 1]]
    return keys, model_list, checked


# -- the local run -----------------------------------------------------------------------------------

def _audit_local(models: List[PreferenceModel], policies: List[Any], labels: List[Any], ks: NDArray[np.int64],
                 methods: Sequence[str], ties: str, options: Dict[str, Any],
                 update: Callable[[int], None]) -> Columns:
    """Columns for prompts 0..P-1 (prompt = position)."""
    n_prompts = len(models)
    blocks: List[Dict[str, NDArray[Any]]] = []
    present: List[NDArray[np.bool_]] = []
    for method in methods:
        if method == "given":
            mask = np.array([p is not None for p in policies], dtype=bool)
            blocks.append(_audit_fixed(models, policies, ks, ties, update, mask))
        elif method == "uniform":
            mask = np.ones(n_prompts, dtype=bool)
            blocks.append(_audit_fixed(models, [None] * n_prompts, ks, ties, update, mask))
        else:
            mask = np.ones(n_prompts, dtype=bool)
            blocks.append(_audit_solver(method, models, labels, ks, ties, options, update))
        present.append(mask)
    return _assemble(blocks, present, n_prompts, ks, methods)


def _assemble(blocks: List[Dict[str, NDArray[Any]]], present: List[NDArray[np.bool_]], n_prompts: int,
              ks: NDArray[np.int64], methods: Sequence[str]) -> Columns:
    """The tidy columns from one (P, K) block per method: rows prompt-major, then
    method, then k; rows of prompts outside a method's mask are left out."""
    n_ks = ks.shape[0]
    mask = np.stack(present, axis=1)  # (P, J)
    columns: Columns = {}
    selected = np.repeat(mask.reshape(-1), n_ks)
    for field in _FIELDS + _RANGE_FIELDS:
        stacked = np.stack([block.get(field, block["robust_level"]) for block in blocks], axis=1)  # (P, J, K)
        columns[field] = stacked.reshape(-1)[selected]
    grid_p, grid_j, grid_k = np.meshgrid(np.arange(n_prompts), np.arange(len(methods)), np.arange(n_ks),
                                         indexing="ij")
    columns["prompt"] = grid_p.reshape(-1)[selected]
    columns["method"] = np.array(methods, dtype=object)[grid_j.reshape(-1)[selected]]
    columns["k"] = ks[grid_k.reshape(-1)[selected]]
    columns["bound"] = columns["k"] / (columns["k"] + 1.0)
    return {name: columns[name] for name in COLUMNS}


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


def _audit_solver(method: str, models: List[PreferenceModel], labels: List[Any], ks: NDArray[np.int64],
                  ties: str, options: Dict[str, Any], update: Callable[[int], None]) -> Dict[str, NDArray[Any]]:
    """Solve with the method's solver, a block of prompts at a time, then audit what it returns."""
    n_prompts, n_ks = len(models), ks.shape[0]
    blocks = [list(range(start, min(start + _SOLVER_BLOCK, n_prompts))) for start in range(0, n_prompts, _SOLVER_BLOCK)]

    def solve(rows: List[int], *args: Any, **kwargs: Any) -> List[Any]:
        try:
            return _batch_solvers()[method]([models[p] for p in rows], *args, **kwargs)  # type: ignore[no-any-return]
        except (ValueError, TypeError) as error:
            span = repr(labels[rows[0]]) + ("" if len(rows) == 1 else f"..{labels[rows[-1]]!r}")
            raise type(error)(f"prompts {span}: {method}: {error}") from error

    def vector(p: int, policy: Any) -> NDArray[np.float64]:
        return as_distribution(policy, f"{method} policy of prompt {labels[p]!r}", size=models[p].n_responses)

    if method in ("nlhf", "rlhf"):  # one policy per prompt, audited for every k
        args = (options["rlhf_beta"],) if method == "rlhf" else ()
        policies: List[Any] = []
        results: List[Any] = []
        for rows in blocks:
            solved = solve(rows, *args, ties=ties)
            results.extend(solved)
            policies.extend(vector(p, result.policy) for p, result in zip(rows, solved))
            update(len(rows))
        block = _audit_fixed(models, policies, ks, ties, update, count=False)
        if method == "nlhf":
            _nlhf_level_ranges(block, models, results, ks, ties)
        return block
    block = _empty_block(n_prompts, n_ks)
    if method == "committee":
        for rows in blocks:
            for p in rows:
                for j, k in enumerate(ks):
                    rho = solve([p], int(k), ties=ties)[0].policy
                    audit = _audit_multiset(models[p], rho, ties)
                    for field in _FIELDS:
                        block[field][p, j] = audit[field]
                update(1)
        return block
    # mpne, optimal: one policy per (prompt, k), all prompts of a block solved together,
    # each k warm-started from the policies of the next smaller one
    game = _MPNE_GAME_TIES[ties] if method == "mpne" else ties
    for rows in blocks:
        previous: Any = None
        for j in np.argsort(ks, kind="stable"):
            results = solve(rows, int(ks[j]), ties=game, init=previous)
            previous = [vector(p, result.policy) for p, result in zip(rows, results)]
            column = _audit_fixed([models[p] for p in rows], previous, ks[j:j + 1], ties, update, count=False)
            for field in _FIELDS:
                block[field][rows, j] = column[field][:, 0]
        update(len(rows))
    return block


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

def _pack(models: List[PreferenceModel], policies: List[Any], labels: List[Any]) -> Dict[str, Any]:
    """A chunk of prompts for the wire: the populations of rankings and the policies
    packed into a few flat arrays (pickling thousands of small objects one by one
    costs more than auditing them). Levels and normalised weights travel exactly,
    so the worker's populations compute the same bits."""
    from .ranking import RankingPopulation

    ranking = [j for j, model in enumerate(models) if type(model) is RankingPopulation]
    levels = [models[j].ranks for j in ranking]  # type: ignore[attr-defined]
    present = [j for j, policy in enumerate(policies) if policy is not None]
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum([policies[j].shape[0] for j in present], out=offsets[1:])
    return {
        "size": len(models), "labels": labels,
        "ranking": np.array(ranking, dtype=np.int64),
        "n_levels": (np.concatenate([models[j]._store.n_levels for j in ranking])  # type: ignore[attr-defined]
                     if ranking else np.zeros(0, np.int32)),
        "shapes": np.array([level.shape for level in levels], dtype=np.int64).reshape(-1, 2),
        "levels": np.concatenate([level.reshape(-1) for level in levels]) if levels else np.zeros(0, np.uint8),
        "weights": np.concatenate([models[j].weights for j in ranking]) if ranking else np.zeros(0),  # type: ignore[attr-defined]
        "others": {j: model for j, model in enumerate(models) if type(model) is not RankingPopulation},
        "present": np.array(present, dtype=np.int64),
        "policies": np.concatenate([policies[j] for j in present]) if present else np.zeros(0),
        "offsets": offsets,
    }


def _unpack(chunk: Dict[str, Any]) -> Tuple[List[PreferenceModel], List[Any], List[Any]]:
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
    policies: List[Any] = [None] * chunk["size"]
    offsets = chunk["offsets"]
    for i, j in enumerate(chunk["present"].tolist()):
        policies[j] = chunk["policies"][offsets[i]:offsets[i + 1]]
    return models, policies, chunk["labels"]


def _audit_part(chunk: Dict[str, Any], ks: NDArray[np.int64], methods: Tuple[str, ...], ties: str,
                options: Dict[str, Any]) -> Columns:
    """One task: the local audit of a chunk of prompts (positions local to the chunk)."""
    if not chunk["others"] and set(methods) <= {"given", "uniform"}:
        return _audit_packed(chunk, ks, methods, ties)
    models, policies, labels = _unpack(chunk)
    return _audit_local(models, policies, labels, ks, methods, ties, options, lambda n: None)


def _audit_packed(chunk: Dict[str, Any], ks: NDArray[np.int64], methods: Sequence[str], ties: str) -> Columns:
    """Given and uniform policies of a chunk of populations of rankings, straight from
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
        mask = np.zeros(n_prompts, dtype=bool)
        mask[chunk["present"]] = True
        # prompts without a policy get the uniform one here; their rows are dropped
        m = chunk["shapes"][:, 1]
        sizes = m.copy()
        flat = np.empty(int(sizes.sum()))
        offsets = np.zeros(n_prompts + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        given = chunk["offsets"]
        for i, p in enumerate(chunk["present"].tolist()):
            flat[offsets[p]:offsets[p + 1]] = chunk["policies"][given[i]:given[i + 1]]
        for p in np.flatnonzero(~mask).tolist():
            flat[offsets[p]:offsets[p + 1]] = _uniform(int(m[p]))
        blocks.append(core.audit_packed(*arrays, flat, offsets, ks, code))
        present.append(mask)
    return _assemble(blocks, present, n_prompts, ks, methods)


def _audit_on_cluster(client: Any, models: List[PreferenceModel], policies: List[Any], labels: List[Any],
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
    parts = [_pack(models[a:a + chunk_size], policies[a:a + chunk_size], labels[a:a + chunk_size]) for a in starts]
    data = client.scatter(parts, hash=False)
    futures = client.map(_audit_part, data, ks=ks, methods=methods, ties=ties, options=options, pure=False)
    index = {future.key: j for j, future in enumerate(futures)}
    results: List[Any] = [None] * len(futures)
    with Progress(n_prompts * len(methods), enabled=progress, unit="prompt-method") as bar:
        for future in as_completed(futures):  # type: ignore[no-untyped-call, unused-ignore]
            j = index[future.key]
            results[j] = future.result()
            bar.update(parts[j]["size"] * len(methods))
    columns: Columns = {}
    for name in COLUMNS:
        pieces = []
        for start, result in zip(starts, results):
            pieces.append(result[name] + start if name == "prompt" else result[name])
        columns[name] = np.concatenate(pieces)
    return columns


__all__ = ["COLUMNS", "METHODS", "audit_columns", "audit_many", "to_frame"]

