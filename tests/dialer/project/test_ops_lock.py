"""The lock files pin what pyproject.toml asks for: every dependency (and the test extra)
is pinned to a version its specifier admits, and the test lock keeps the runtime lock's
versions, so the Docker image runs what the tests ran. Stale? `make lock`.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FIX = "the lock is stale: run `make lock` and review the diff"


def pins(name: str) -> dict[str, str]:
    """Package -> pinned version, from a lock file written by `uv pip compile`."""
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    found = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", text, flags=re.MULTILINE)
    return {canonicalize_name(n): v for n, v in found}


RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
TEST = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("runtime.txt", RUNTIME), ("test.txt", RUNTIME + TEST)],
)
def test_every_dependency_is_pinned_within_its_specifier(
    lock: str, requirements: list[Requirement]
) -> None:
    locked = pins(lock)
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements/{lock}: {FIX}"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={locked[name]}, outside {req.specifier}: {FIX}"
        )


def test_the_test_lock_keeps_the_runtime_versions() -> None:
    runtime, test = pins("runtime.txt"), pins("test.txt")
    differ = {n: (v, test.get(n)) for n, v in runtime.items() if test.get(n) != v}
    assert not differ, f"runtime and test locks disagree {differ}: {FIX}"
