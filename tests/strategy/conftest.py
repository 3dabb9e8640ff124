"""Hypothesis profiles for the strategy tests: derandomized in CI, random locally.

`tests/conftest.py` belongs to another owner; the profiles live here so the engine's
property tests stay reproducible in CI (`CI=true`) without touching it. Set
`HYPOTHESIS_PROFILE` to pick one explicitly.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
