"""RLHF: a Bradley–Terry reward fitted to the pairwise matrix by maximum
likelihood, then the KL-regularised policy ``pi ∝ reference · exp(r / beta)``
(the maximiser of ``E_pi[r] - beta KL(pi || reference)``)."""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import numpy as np

from .._validate import as_optional_distribution, as_positive_real, as_tolerance, tie_code
from ..batch import PromptBatch
from ._common import Array, Clock, checked_model
from .certify import certificates
from .results import RLHFResult


def _log_sigmoid(x: Array) -> Array:
    return -np.logaddexp(0.0, -x)


def bradley_terry_batch(matrices: Sequence[Array], ridge: float = 1e-8, tol: float = 1e-12, max_iter: int = 100
                        ) -> List[Tuple[Array, float, int, bool]]:
    """Maximum-likelihood Bradley–Terry rewards for each preference matrix
    ``P[y, z] = P[y ≻ z]`` (sizes may differ): maximise
    ``Σ_{y≠z} P[y,z] log σ(r_y - r_z) - ridge/2 |r|²`` by Newton's method (the Hessian
    is a weighted graph Laplacian, plus the ridge), every matrix advancing together
    (one batched solve per iteration); the rewards are centred (sum 0). The tiny ridge
    keeps them finite when a response beats another unanimously (the unregularised
    MLE diverges then). Padding rows and columns carry no preference, so they stay 0.

    Returns, per matrix, (rewards, mean log-likelihood per ordered pair, iterations, converged).
    """
    sizes = np.array([np.shape(M)[0] for M in matrices], dtype=np.int64)
    count, width = sizes.size, int(sizes.max())
    valid = np.arange(width)[None, :] < sizes[:, None]
    P = np.zeros((count, width, width))
    for j, M in enumerate(matrices):
        P[j, :sizes[j], :sizes[j]] = M
    P[:, np.arange(width), np.arange(width)] = 0.0
    pairs = np.maximum(sizes * (sizes - 1), 1)
    r = np.zeros((count, width))

    def objective(r: Array, P: Array) -> Array:
        d = r[:, :, None] - r[:, None, :]
        return (P * _log_sigmoid(d)).sum(axis=(1, 2)) - 0.5 * ridge * np.einsum("pw,pw->p", r, r)  # type: ignore[no-any-return]

    value = objective(r, P)
    converged = sizes == 1
    iterations = np.zeros(count, dtype=np.int64)
    active = ~converged
    for iteration in range(1, max_iter + 1):
        a = np.flatnonzero(active)
        if not a.size:
            break
        iterations[a] = iteration
        Pa, ra = P[a], r[a]
        d = ra[:, :, None] - ra[:, None, :]
        sig = 1.0 / (1.0 + np.exp(-d))                                  # σ(r_y - r_z)
        # ∂/∂r_y = Σ_z [P_yz σ(r_z - r_y) - P_zy σ(r_y - r_z)]
        Pt = np.transpose(Pa, (0, 2, 1))
        grad = (Pa * (1.0 - sig)).sum(axis=2) - (Pt * sig).sum(axis=2) - ridge * ra
        W = (Pa + Pt) * sig * (1.0 - sig)                               # symmetric pair weights
        W[:, np.arange(width), np.arange(width)] = 0.0
        H = -W
        H[:, np.arange(width), np.arange(width)] = W.sum(axis=2) + ridge  # minus the Hessian (PD)
        step = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
        t = np.ones(a.size)
        trial = ra + step
        new = objective(trial, Pa)
        for _ in range(60):   # backtracking, per matrix
            short = (new < value[a] - 1e-15 * np.abs(value[a])) & (t >= 1e-12)
            if not short.any():
                break
            t[short] *= 0.5
            trial[short] = ra[short] + t[short, None] * step[short]
            new[short] = objective(trial[short], Pa[short])
        mean = trial.sum(axis=1) / sizes[a]
        r[a] = np.where(valid[a], trial - mean[:, None], 0.0)
        value[a] = new
        done = np.abs(grad).max(axis=1) <= tol
        converged[a[done]] = True
        active[a[done]] = False
    return [(r[j, :sizes[j]].copy(), float(value[j] / pairs[j]), int(iterations[j]), bool(converged[j]))
            for j in range(count)]


def bradley_terry(pairwise: Array, ridge: float = 1e-8, tol: float = 1e-12, max_iter: int = 100
                  ) -> Tuple[Array, float, int, bool]:
    """Maximum-likelihood Bradley–Terry rewards of one preference matrix: the batch of
    one of :func:`bradley_terry_batch`; returns (rewards, mean log-likelihood per
    ordered pair, iterations, converged)."""
    return bradley_terry_batch([np.asarray(pairwise, dtype=np.float64)], ridge, tol, max_iter)[0]


def rlhf_policy_batch(models: Sequence[Any], beta: float, reference: Any = None, ties: str = "uniform",
                      ridge: float = 1e-8, tol: float = 1e-10) -> List[RLHFResult]:
    """:func:`rlhf_policy` for many prompts: the Bradley–Terry fits advance together.
    ``reference``: None (uniform) or one reference policy (or None) per prompt."""
    clock = Clock()
    if not len(models):
        raise ValueError("models: needs at least one prompt")
    batch = PromptBatch([checked_model(model) for model in models])
    tie_code(ties)
    beta = as_positive_real(beta, "beta")
    ridge = as_positive_real(ridge, "ridge")
    tol = as_tolerance(tol)
    references = [None] * len(batch) if reference is None else list(reference)
    if len(references) != len(batch):
        raise ValueError(f"reference: expected one reference policy per prompt ({len(batch)}), got {len(references)}")
    fits = bradley_terry_batch([model.pairwise(ties) for model in batch.models], ridge=ridge, tol=tol)
    policies = []
    for p, (r, _, _, _) in enumerate(fits):
        m = int(batch.sizes[p])
        name = "reference" if len(batch) == 1 else f"reference[{p}]"
        ref = as_optional_distribution(references[p], name, m)
        if ref is None:
            ref = np.full(m, 1.0 / m)
        with np.errstate(divide="ignore"):
            logits = np.log(ref) + r / beta
        logits -= logits[np.isfinite(logits)].max()
        pi = np.exp(logits)
        policies.append(pi / pi.sum())
    padded = batch.normalised(batch.padded(policies, batch.all), "policy")
    policies = [padded[p, :m] for p, m in enumerate(batch.sizes.tolist())]
    certs = certificates(batch, padded, 1, ties, tol)
    return [RLHFResult(policy=pi, robust_level=cert.robust_level, exploitability=cert.exploitability,
                       iterations=iterations, wall_time=clock(), converged=converged, certificate=cert,
                       method="bradley-terry mle (newton)", k=1, ties=ties, evaluations=1,
                       history=(loglik,), reward=r, beta=beta, log_likelihood=loglik)
            for pi, cert, (r, loglik, iterations, converged) in zip(policies, certs, fits)]


def rlhf_policy(model: Any, beta: float, reference: Any = None, ties: str = "uniform",
                ridge: float = 1e-8, tol: float = 1e-10) -> RLHFResult:
    """The RLHF policy: Bradley–Terry rewards ``r`` fitted by maximum likelihood to
    ``model.pairwise(ties)``, then ``pi ∝ reference · exp(r / beta)``.

    ``beta`` > 0 is the KL-regularisation strength (small: nearly the argmax of
    ``r``; large: nearly ``reference``); ``reference`` defaults to uniform. The
    result's ``robust_level`` and ``certificate`` are at k = 1 under ``ties``.
    The batch of one of :func:`rlhf_policy_batch`."""
    return rlhf_policy_batch([model], beta, None if reference is None else [reference], ties, ridge, tol)[0]
