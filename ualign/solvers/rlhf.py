"""RLHF: a Bradley–Terry reward fitted to the pairwise matrix by maximum
likelihood, then the KL-regularised policy ``pi ∝ reference · exp(r / beta)``
(the maximiser of ``E_pi[r] - beta KL(pi || reference)``)."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .._validate import as_optional_distribution, as_positive_real, as_tolerance, tie_code
from ._common import Array, Clock, checked_model
from .certify import certify
from .results import RLHFResult


def _log_sigmoid(x: Array) -> Array:
    return -np.logaddexp(0.0, -x)


def bradley_terry(pairwise: Array, ridge: float = 1e-8, tol: float = 1e-12, max_iter: int = 100
                  ) -> Tuple[Array, float, int, bool]:
    """Maximum-likelihood Bradley–Terry rewards for the preference matrix
    ``P[y, z] = P[y ≻ z]``: maximise ``Σ_{y≠z} P[y,z] log σ(r_y - r_z) - ridge/2 |r|²``
    by Newton's method (the Hessian is a weighted graph Laplacian, plus the ridge);
    the rewards are centred (sum 0). The tiny ridge keeps them finite when a
    response beats another unanimously (the unregularised MLE diverges then).

    Returns (rewards, mean log-likelihood per ordered pair, iterations, converged).
    """
    P = np.asarray(pairwise, dtype=np.float64).copy()
    m = P.shape[0]
    np.fill_diagonal(P, 0.0)
    pairs = max(m * (m - 1), 1)
    r = np.zeros(m)

    def objective(r: Array) -> float:
        d = r[:, None] - r[None, :]
        return float((P * _log_sigmoid(d)).sum()) - 0.5 * ridge * float(r @ r)

    value = objective(r)
    converged = m == 1
    iterations = 0
    for iterations in range(1, max_iter + 1):
        if m == 1:
            break
        d = r[:, None] - r[None, :]
        s = 1.0 / (1.0 + np.exp(-d))                     # σ(r_y - r_z)
        # ∂/∂r_y = Σ_z [P_yz σ(r_z - r_y) - P_zy σ(r_y - r_z)]
        grad = (P * (1.0 - s)).sum(axis=1) - (P.T * s).sum(axis=1) - ridge * r
        W = (P + P.T) * s * (1.0 - s)                    # symmetric pair weights
        np.fill_diagonal(W, 0.0)
        H = np.diag(W.sum(axis=1) + ridge) - W            # minus the Hessian (PSD; PD with the ridge)
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:
            trial = r + t * step
            new = objective(trial)
            if new >= value - 1e-15 * abs(value) or t < 1e-12:
                break
            t *= 0.5
        r, value = trial - trial.mean(), new
        if float(np.abs(grad).max()) <= tol:
            converged = True
            break
    return r, value / pairs, iterations, converged


def rlhf_policy(model: Any, beta: float, reference: Any = None, ties: str = "uniform",
                ridge: float = 1e-8, tol: float = 1e-10) -> RLHFResult:
    """The RLHF policy: Bradley–Terry rewards ``r`` fitted by maximum likelihood to
    ``model.pairwise(ties)``, then ``pi ∝ reference · exp(r / beta)``.

    ``beta`` > 0 is the KL-regularisation strength (small: nearly the argmax of
    ``r``; large: nearly ``reference``); ``reference`` defaults to uniform. The
    result's ``robust_level`` and ``certificate`` are at k = 1 under ``ties``."""
    clock = Clock()
    model = checked_model(model)
    tie_code(ties)
    beta = as_positive_real(beta, "beta")
    ridge = as_positive_real(ridge, "ridge")
    tol = as_tolerance(tol)
    m = model.n_responses
    ref = as_optional_distribution(reference, "reference", m)
    if ref is None:
        ref = np.full(m, 1.0 / m)
    r, loglik, iterations, converged = bradley_terry(model.pairwise(ties), ridge=ridge, tol=tol)
    with np.errstate(divide="ignore"):
        logits = np.log(ref) + r / beta
    logits -= logits[np.isfinite(logits)].max()
    pi = np.exp(logits)
    pi /= pi.sum()
    cert = certify(model, pi, 1, ties=ties, tol=tol)
    return RLHFResult(policy=pi, robust_level=cert.robust_level, exploitability=cert.exploitability,
                      iterations=iterations, wall_time=clock(), converged=converged, certificate=cert,
                      method="bradley-terry mle (newton)", k=1, ties=ties, evaluations=1,
                      history=(loglik,), reward=r, beta=beta, log_likelihood=loglik)

