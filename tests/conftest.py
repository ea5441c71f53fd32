"""Shared pytest configuration: hypothesis profiles.

Select a profile with HYPOTHESIS_PROFILE (default "ci"):
  ci  - deterministic, ~60 examples per property, no example database (fast, reproducible)
  dev - 1000 random examples per property, examples saved in .hypothesis/
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
