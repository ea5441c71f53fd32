"""Solvers with certificates (docs/concepts.md, "Solvers"): NLHF, the MPNE of the (k+1)-player
alignment game, the optimal k-sample policy, committees and RLHF."""

from __future__ import annotations

from .certify import Certificate, certify
from .committee import solve_committee
from .mpne import solve_mpne, solve_mpne_batch
from .nlhf import maximal_lotteries, maximal_lottery, nlhf_level_range, solve_nlhf, solve_nlhf_batch
from .optimal import solve_optimal, solve_optimal_batch
from .results import (
                      CommitteeResult,
                      MaximalLotterySet,
                      MPNEResult,
                      NLHFLevelRange,
                      NLHFResult,
                      OpponentCommitteeResult,
                      OpponentOptimalResult,
                      OptimalResult,
                      RLHFResult,
                      SolverResult,
)
from .rlhf import bradley_terry, bradley_terry_batch, rlhf_policy, rlhf_policy_batch

__all__ = [
    "Certificate",
    "CommitteeResult",
    "MPNEResult",
    "MaximalLotterySet",
    "NLHFLevelRange",
    "NLHFResult",
    "OpponentCommitteeResult",
    "OpponentOptimalResult",
    "OptimalResult",
    "RLHFResult",
    "SolverResult",
    "bradley_terry",
    "bradley_terry_batch",
    "certify",
    "maximal_lotteries",
    "maximal_lottery",
    "nlhf_level_range",
    "rlhf_policy",
    "rlhf_policy_batch",
    "solve_committee",
    "solve_mpne",
    "solve_mpne_batch",
    "solve_nlhf",
    "solve_nlhf_batch",
    "solve_optimal",
    "solve_optimal_batch",
]
