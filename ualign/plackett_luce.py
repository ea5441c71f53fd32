"""Mixtures of Plackett–Luce types, and fitting them to rankings.

``rewards[i, y]`` is type ``i``'s reward for response ``y``; with
``W_i(S) = sum_{z in S} exp(rewards[i, z])`` (with multiplicity),
``P_i[S ≻ T] = W_i(S) / (W_i(S) + W_i(T))``. There are no ties in this model, so
every ``ties`` convention gives the same numbers (the argument is still
validated). Everything is exact: ratios where they exist, and for product
policies one-dimensional integrals over exponential clocks (each draw fires
after an ``Exp(e(z))`` time; the earliest wins), evaluated to ~1e-15 absolute by
a trapezoidal rule in ``log t`` whose nodes are shared by all responses of a
type (see ``src/pl_kernels.hpp``). Rewards may be any finite floats: the kernels
use only differences of two rewards, so a pair ``0, log 2`` under a row maximum of
``1e16`` keeps its ``P = 1/3``. Every ``k >= 1`` that fits in int64 is supported
(``2**63 - 1`` included): a k-sample policy enters through the chance
``D(t) = sum_y pi(y) (1 - e^{-e(y) t})`` that one draw has fired, summed to full
relative precision, so ``(1 - D)^k`` is exactly 1 at ``t = 0`` whatever the
rounding of ``sum pi`` (``(sum pi)^k`` would be off by ``k m eps``). A policy
accepted with ``sum pi = 1 + delta`` counts as putting mass ``-delta`` on a
draw that never wins, which moves results by ``O(delta)``.

Fitting (:func:`fit_plackett_luce`): maximum a posteriori estimation from a
:class:`~ualign.RankingPopulation` by the minorisation–maximisation algorithm of
Hunter (2004) — the algorithm of ``choix.mm_rankings`` / ``choix.mm_top1``,
including its gamma prior ``(wins + alpha) / (denominators + alpha)`` — and, for
several types, expectation–maximisation over mixtures (Gormley & Murphy 2008).
We do not call ``choix`` itself: it has no per-observation weights (needed for
voter weights and for the EM responsibilities), loops over observations in
Python (hours for 10^5 voters x 10^3 responses), needs Python >= 3.10 (ualign
supports 3.9) and raises when a ranking set is not strongly connected. The
vectorised MM below is ~60 lines of numpy; the test suite checks it against
``choix`` on unweighted data when ``choix`` is installed.

Choice data (:class:`Choices`): observation ``j`` shows a set ``S_j`` of
responses and records the one picked, with likelihood
``exp(u_c) / sum_{s in S_j} exp(u_s)`` — only the shown responses compete, so a
response that was not shown says nothing about that observation (it is *not*
read as ranked below the chosen one). The same MM step applies (Hunter 2004,
§5: each observation is one "choice from a set"), with the same prior and EM.

Partial rankings are weak orders whose unranked responses tie at the bottom:
a voter's ranking is read as the sequence of choices "each response above the
bottom level is chosen from itself and everything ranked below it", which is
the exact Plackett–Luce likelihood of a top-``j`` list (and of a full ranking).
Ties above the bottom level are read the same way (each tied response is
chosen over everything strictly below it), a composite likelihood that is exact
whenever the only ties are at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core_loader
from ._validate import as_choice_sets, as_count, as_index_array, as_positive_real, as_rewards, as_weights
from .model import CompiledModel

if TYPE_CHECKING:
    from ._core import PLStore


class PlackettLuceMixture(CompiledModel):
    """A weighted mixture of Plackett–Luce types over ``m`` responses.

    ``rewards`` is ``(n_types, m)``, any finite reals, kept as given (the kernels
    use only differences of rewards, so ``exp`` never overflows and no digits are
    lost to a shift by the row maximum); ``weights`` (default uniform) are
    normalised to sum to 1. ``n_voters`` is the
    number of types. The model implements every method of
    :class:`~ualign.PreferenceModel`, so the solvers and audits work on it
    unchanged.
    """

    _store: PLStore
    # measured on 2 cores, per type × response: 370–780 ns (utilities) and 100–220 ns
    # (Jacobian rows, which share one pass)
    _PASS_SECONDS = 4e-7
    _JACOBIAN_ROW_SECONDS = 1.2e-7

    def __init__(self, rewards: ArrayLike, weights: Optional[ArrayLike] = None) -> None:
        store = _core_loader.core().PLStore.from_rewards(as_rewards(rewards, "rewards"))
        checked = as_weights(weights, store.n)
        if checked is not None:
            store.set_weights(checked)
        self._store = store

    @classmethod
    def from_scores(cls, scores: ArrayLike, temperature: float = 1.0,
                    weights: Optional[ArrayLike] = None) -> PlackettLuceMixture:
        """Rewards ``scores / temperature`` (a softmax policy's logits at that
        temperature): lower temperatures make every type more decisive."""
        tau = as_positive_real(temperature, "temperature")
        array = as_rewards(scores, "scores")
        with np.errstate(over="ignore"):
            rewards = array / tau
        if not np.isfinite(rewards).all():
            raise ValueError("temperature: scores / temperature overflows float64; use a larger temperature")
        return cls(rewards, weights)

    @classmethod
    def fit(cls, population: Any, n_types: int = 1, **options: Any) -> PlackettLuceMixture:
        """The fitted model of :func:`fit_plackett_luce` (same arguments)."""
        return fit_plackett_luce(population, n_types, **options).model

    @property
    def n_types(self) -> int:
        """Number of Plackett–Luce types (the same as ``n_voters``)."""
        return int(self._store.n)

    @property
    def rewards(self) -> NDArray[np.float64]:
        """The rewards with each row shifted so that its maximum is 0 (a read-only
        copy; rows spanning more than the float64 range clamp their bottom members
        at ``-1.8e308``). The model itself keeps the rewards as given: a shift by
        ``1e16`` rounds rewards 0 and ``log 2`` to the same value."""
        return self._store.rewards

    def _pairwise(self, ties: int) -> NDArray[np.float64]:
        return self._store.pairwise(ties)

    def _utilities_vjps(self, policy: NDArray[np.float64], q: NDArray[np.float64], k: int,
                        ties: int) -> Tuple[NDArray[np.float64], NDArray[np.float64]]:
        u, g = self._store.utilities_vjp(policy, q, k, ties)   # one sweep over the nodes for all rows
        return u, g


# ---------------------------------------------------------------------------
# Fitting
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PlackettLuceFit:
    """Result of :func:`fit_plackett_luce`."""

    model: PlackettLuceMixture
    #: mean log-likelihood per voter (voter weights normalised), prior excluded
    log_likelihood: float
    #: ``(n_voters, n_types)`` posterior probability of each type for each voter
    responsibilities: NDArray[np.float64]
    n_iter: int
    #: the relative change of the objective fell below ``tol`` (else ``max_iter`` ran out)
    converged: bool
    #: ``"global"`` for one type (the objective is strictly concave in the
    #: utilities, so a converged fit is its unique maximum); ``"local"`` for a
    #: mixture: EM only climbs to a stationary point that depends on the start
    #: (``seed``) — refit with other seeds and keep the largest ``log_likelihood``.
    optimum: str = "global"

    @property
    def utilities(self) -> NDArray[np.float64]:
        """``(n_types, m)`` fitted utilities in the gauge where each type's row sums
        to 0 (the likelihood sees only differences of utilities)."""
        rewards = self.model.rewards
        centred: NDArray[np.float64] = rewards - rewards.mean(axis=1, keepdims=True)
        return centred


class Choices:
    """Choice observations for :func:`fit_plackett_luce`: in observation ``j``
    the responses ``shown[j]`` were offered and ``chosen[j]`` was picked.

    A pairwise comparison is ``shown = [winner, loser]``. ``voters[j]`` (default:
    every observation its own voter) groups observations made by the same person,
    who belongs to one type of a mixture; ``weights`` are per voter (relative, as
    in :func:`fit_plackett_luce`). ``n_responses`` defaults to one more than the
    largest index shown (a response never shown is estimated from the prior
    alone); ``labels`` (default ``0..m-1``) name the responses.
    """

    def __init__(self, chosen: ArrayLike, shown: Any, n_responses: Optional[int] = None,
                 voters: Optional[ArrayLike] = None, weights: Optional[ArrayLike] = None,
                 labels: Optional[List[Any]] = None) -> None:
        self.chosen, self.members, self.offsets, self.n_responses = as_choice_sets(chosen, shown, n_responses)
        n_obs = self.chosen.shape[0]
        if voters is None:
            self.voters = np.arange(n_obs, dtype=np.int64)
        else:
            self.voters = as_index_array(voters, "voters", size=n_obs)
            present = np.bincount(self.voters)
            if (present == 0).any():
                raise ValueError(f"voters: voter {int(np.argmin(present))} has no observation "
                                 f"(voters are numbered 0..n_voters-1)")
        self.n_voters = int(self.voters.max()) + 1
        checked = as_weights(weights, self.n_voters)
        self.weights = np.full(self.n_voters, 1.0 / self.n_voters) if checked is None else checked / checked.sum()
        if labels is None:
            self.labels: List[Any] = list(range(self.n_responses))
        else:
            self.labels = list(labels)
            if len(self.labels) != self.n_responses:
                raise ValueError(f"labels: expected {self.n_responses} labels, got {len(self.labels)}")

    @property
    def n_observations(self) -> int:
        """Number of choices."""
        return int(self.chosen.shape[0])

    def shown(self, j: int) -> NDArray[np.int64]:
        """The responses shown in observation ``j``."""
        return self.members[self.offsets[j]:self.offsets[j + 1]]

    def __repr__(self) -> str:
        return (f"Choices(n_observations={self.n_observations}, n_voters={self.n_voters}, "
                f"n_responses={self.n_responses})")


_CHUNK = 4096  # voters per numpy chunk


class _Rankings:
    """Dense levels of a ranking population, read as Plackett–Luce choices."""

    def __init__(self, population: Any) -> None:
        self.levels = np.asarray(population.ranks)
        self.weights = np.asarray(population.weights, dtype=np.float64)
        self.n, self.m = self.levels.shape
        bottom = self.levels.max(axis=1)
        self.winner = self.levels < bottom[:, None]  # chosen over everything ranked below it

    def chunks(self) -> Any:
        for start in range(0, self.n, _CHUNK):
            stop = min(start + _CHUNK, self.n)
            yield slice(start, stop), self.levels[start:stop].astype(np.int64), self.winner[start:stop]

    def statistics(self, theta: NDArray[np.float64], omega: Optional[NDArray[np.float64]]
                   ) -> Tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(log-likelihood per voter, wins, MM denominators) for one type; the
        last two weighted by omega (skipped when omega is None)."""
        gamma = np.exp(theta - theta.max())
        log_gamma = np.log(gamma)
        ll = np.empty(self.n)
        wins = np.zeros(self.m)
        denominators = np.zeros(self.m)
        for rows, levels, winner in self.chunks():
            c = levels.shape[0]
            flat = (np.arange(c)[:, None] * self.m + levels).ravel()
            mass = np.bincount(flat, weights=np.broadcast_to(gamma, levels.shape).ravel(),
                               minlength=c * self.m).reshape(c, self.m)
            below = np.cumsum(mass[:, ::-1], axis=1)[:, ::-1] - mass  # mass strictly below each level
            denominator = gamma + np.take_along_axis(below, levels, axis=1)
            ll[rows] = np.where(winner, log_gamma - np.log(denominator), 0.0).sum(axis=1)
            if omega is None:
                continue
            inverse = np.where(winner, 1.0 / denominator, 0.0)
            per_level = np.bincount(flat, weights=inverse.ravel(), minlength=c * self.m).reshape(c, self.m)
            before = np.cumsum(per_level, axis=1) - per_level  # choices made at levels strictly above
            w = omega[rows]
            wins += w @ winner
            denominators += w @ (inverse + np.take_along_axis(before, levels, axis=1))
        return ll, wins, denominators


    def features(self) -> NDArray[np.float64]:
        """Per voter, the levels scaled to [0, 1] (what EM's initial clustering sees)."""
        spread = np.maximum(self.levels.max(axis=1, keepdims=True), 1).astype(np.float64)
        points: NDArray[np.float64] = self.levels / spread
        return points


class _ChoiceSets:
    """:class:`Choices` as flat arrays: member ``t`` of the concatenated shown
    sets belongs to observation ``observation[t]``."""

    def __init__(self, choices: Choices) -> None:
        self.chosen, self.members = choices.chosen, choices.members
        self.observation = np.repeat(np.arange(choices.n_observations), np.diff(choices.offsets))
        self.voter = choices.voters
        self.weights = choices.weights
        self.n, self.m = choices.n_voters, choices.n_responses
        self.size = np.diff(choices.offsets).astype(np.float64)

    def statistics(self, theta: NDArray[np.float64], omega: Optional[NDArray[np.float64]]
                   ) -> Tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """As :meth:`_Rankings.statistics`: each observation is one choice of its
        chosen response from the shown set."""
        top = theta.max()
        gamma = np.exp(theta - top)
        total = np.bincount(self.observation, weights=gamma[self.members], minlength=self.chosen.shape[0])
        ll = np.asarray(np.bincount(self.voter, weights=(theta[self.chosen] - top) - np.log(total),
                                    minlength=self.n), dtype=np.float64)
        wins = np.zeros(self.m)
        denominators = np.zeros(self.m)
        if omega is not None:
            w = omega[self.voter]
            wins = np.asarray(np.bincount(self.chosen, weights=w, minlength=self.m), dtype=np.float64)
            denominators = np.asarray(np.bincount(self.members, weights=(w / total)[self.observation],
                                                  minlength=self.m), dtype=np.float64)
        return ll, wins, denominators

    def features(self) -> NDArray[np.float64]:
        """Per voter and response, (times chosen - times shown / set size) per
        observation: how much more often than at random the voter picked it."""
        excess = np.zeros((self.n, self.m))
        np.add.at(excess, (self.voter, self.chosen), 1.0)
        np.add.at(excess, (self.voter[self.observation], self.members), -1.0 / self.size[self.observation])
        counts = np.bincount(self.voter, minlength=self.n).astype(np.float64)
        points: NDArray[np.float64] = excess / counts[:, None]
        return points


_Data = Union[_Rankings, _ChoiceSets]


def _mm_step(data: _Data, theta: NDArray[np.float64], omega: NDArray[np.float64],
             prior: float) -> NDArray[np.float64]:
    """One minorisation–maximisation update of a type's log-strengths."""
    _, wins, denominators = data.statistics(theta, omega)
    scale = float(np.exp(theta.max()))
    out: NDArray[np.float64] = np.log((wins + prior) / (denominators / scale + prior))
    # The likelihood does not see a common shift of the log-strengths; the prior
    # alpha * sum(r - e^r) is maximised over it exactly when sum e^r = m. Taking
    # that step too (coordinate ascent, still monotone) removes the slow mode of
    # plain MM along the shift.
    top = float(out.max())
    shift = float(np.log(out.shape[0]) - (top + np.log(np.exp(out - top).sum())))
    return out + shift


def _initial_responsibilities(data: _Data, n_types: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """k-means++ seeding and a few Lloyd steps on the voters' features."""
    points = data.features()
    weights = data.weights
    centres = [points[rng.choice(data.n, p=weights)]]
    for _ in range(1, n_types):
        distance = np.min([((points - c) ** 2).sum(axis=1) for c in centres], axis=0) * weights
        total = distance.sum()
        centres.append(points[rng.choice(data.n, p=distance / total)] if total > 0 else points[rng.integers(data.n)])
    centre = np.array(centres)
    for _ in range(10):
        assign = np.argmin(((points[:, None, :] - centre[None]) ** 2).sum(axis=2), axis=1)
        for c in range(n_types):
            members = assign == c
            if (weights[members]).sum() > 0:
                centre[c] = np.average(points[members], axis=0, weights=weights[members])
    resp = np.full((data.n, n_types), 0.1 / max(n_types - 1, 1))
    resp[np.arange(data.n), assign] = 0.9 if n_types > 1 else 1.0
    return resp


def fit_plackett_luce(population: Any, n_types: int = 1, *, prior: float = 0.1, max_iter: int = 1000,
                      tol: float = 1e-10, seed: Optional[int] = 0) -> PlackettLuceFit:
    """Fit a Plackett–Luce model (``n_types = 1``) or a mixture of ``n_types``
    Plackett–Luce types (EM) to a :class:`~ualign.RankingPopulation` or to
    :class:`Choices` (each choice: the chosen response against the shown ones only).

    Voter weights are relative: the population counts as ``n_voters``
    observations in total, voter ``i`` as ``n_voters * weights[i]`` of them
    (so integer weights summing to ``n_voters`` are the same as repeating
    voters). ``prior`` (> 0) is the
    pseudo-count of the gamma prior of ``choix``'s MM: it keeps the rewards of a
    response that is never (or always) chosen finite; the objective is the
    posterior ``sum_i n w_i log p(ranking_i) + sum_{type, y} prior (r - e^r)``,
    which every iteration increases. Stops when its relative change is below
    ``tol`` (``converged``) or after ``max_iter`` iterations. EM starts from a
    k-means++ clustering of the voters (their levels, or how often they picked
    each response beyond chance) drawn with ``seed``. One type: the objective is
    strictly concave in the utilities and MM converges to its unique maximum
    (``optimum = "global"``); several types: EM is a local method and the result
    is a local maximum that depends on ``seed`` (``optimum = "local"``). The
    fitted utilities are identified up to a shift per type: ``fit.utilities``
    has each row summing to 0.
    """
    from .ranking import RankingPopulation

    data: _Data
    if isinstance(population, RankingPopulation):
        data = _Rankings(population)
    elif isinstance(population, Choices):
        data = _ChoiceSets(population)
    else:
        raise TypeError(f"population: expected a RankingPopulation or Choices, got {type(population).__name__}")
    n_types = as_count(n_types, "n_types")
    alpha = as_positive_real(prior, "prior")
    max_iter = as_count(max_iter, "max_iter")
    tolerance = as_positive_real(tol, "tol")
    rng = np.random.default_rng(seed)
    counts = data.weights * data.n  # voter weights in units of voters

    resp = np.ones((data.n, 1)) if n_types == 1 else _initial_responsibilities(data, n_types, rng)
    theta = np.zeros((n_types, data.m))
    mix = np.full(n_types, 1.0 / n_types)
    previous = -np.inf
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        # M-step (one MM step per type: a generalised EM step, still monotone)
        for c in range(n_types):
            theta[c] = _mm_step(data, theta[c], counts * resp[:, c], alpha)
        if n_types > 1:
            mix = (data.weights @ resp)
            mix = np.maximum(mix, 1e-300)
            mix /= mix.sum()
        # E-step and objective
        ll = np.stack([data.statistics(theta[c], None)[0] for c in range(n_types)], axis=1)
        joint = ll + np.log(mix)[None, :]
        top = joint.max(axis=1, keepdims=True)
        evidence = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
        resp = np.exp(joint - evidence[:, None])
        objective = float(counts @ evidence + alpha * (theta - np.exp(theta)).sum())
        if abs(objective - previous) <= tolerance * max(1.0, abs(objective)):
            converged = True
            break
        previous = objective
    log_likelihood = float(data.weights @ evidence)
    model = PlackettLuceMixture(theta - theta.mean(axis=1, keepdims=True), mix)
    return PlackettLuceFit(model, log_likelihood, resp, iteration, converged, "global" if n_types == 1 else "local")
