"""ualign: exact asymptotic universal alignment.

Win rates between responses, multisets, k-sample product policies and
multi-output policies; the utilities ``P[y ≻ pi^{⊗k}]`` of the (k+1)-player
alignment game; robust alignment levels, best responses and exploitability —
all computed exactly by a C++ core, following Yang Cai and Weiqiang Zheng,
"Asymptotic Universal Alignment: A New Alignment Framework via Test-Time Scaling",
arXiv:2601.08777 (ICML 2026). The concepts are explained in docs/concepts.md.
"""

from __future__ import annotations

from ._core_loader import core as _load_core

_core = _load_core()

from . import (  # noqa: E402
    bootstrap,
    instances,
    io,  # noqa: E402
    solvers,
)
from ._validate import TIES  # noqa: E402
from .audit import audit_many  # noqa: E402
from .game import (  # noqa: E402
    OpponentSearch,
    best_response,
    exploitability,
    opponent_search,
    robust_level,
    worst_case_opponent,
)
from .groups import group_levels  # noqa: E402
from .model import PreferenceModel  # noqa: E402
from .operands import MultisetPolicy, Product, ProductMixture  # noqa: E402
from .plackett_luce import Choices, PlackettLuceFit, PlackettLuceMixture, fit_plackett_luce  # noqa: E402
from .ranking import RankingPopulation  # noqa: E402
from .solvers import certify, rlhf_policy, solve_committee, solve_mpne, solve_nlhf, solve_optimal  # noqa: E402

#: True when the core was compiled with OpenMP.
has_openmp: bool = bool(_core.has_openmp)

__version__ = "0.1.0"

__all__ = [
    "TIES",
    "Choices",
    "MultisetPolicy",
    "OpponentSearch",
    "PlackettLuceFit",
    "PlackettLuceMixture",
    "PreferenceModel",
    "Product",
    "ProductMixture",
    "RankingPopulation",
    "audit_many",
    "best_response",
    "bootstrap",
    "certify",
    "exploitability",
    "fit_plackett_luce",
    "group_levels",
    "has_openmp",
    "instances",
    "io",
    "opponent_search",
    "rlhf_policy",
    "robust_level",
    "solve_committee",
    "solve_mpne",
    "solve_nlhf",
    "solve_optimal",
    "solvers",
    "worst_case_opponent",
]
