"""Stored strategy versions, compiled once per process, version and profile.

A version row is never rewritten once stored (every change is a new version with a new
id), so its compiled form can live as long as the process. The key still carries the
row's `digest` (the SHA-256 of its document, written with it): should a row's document
ever change under the same id, the new content misses the cache instead of deciding on
the old one. The compiled versions live in the strategy package's one bounded compile
cache (least recently used out first), with each its own engine caches.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import StrategyRow
from strategy.compiled import COMPILED, CompiledStrategy, StrategyCache
from strategy.document import Strategy
from strategy.guardrails import get_profile

Key = tuple[uuid.UUID, str, str]  # (version id, document digest, profile name)


class CompiledStrategies:
    """Stored versions looked up in a `strategy.compiled.StrategyCache` (the process's one
    compile cache, `COMPILED`, unless a test passes its own) under the version key
    (version id, digest): a hit needs neither the document parsed nor a database read."""

    def __init__(self, cache: StrategyCache | None = None, *, maxsize: int = 256) -> None:
        self.cache = cache if cache is not None else StrategyCache(maxsize)
        self.compiles = 0  # how many times a version was compiled (tests read it)

    def get(self, row: StrategyRow, profile_name: str) -> CompiledStrategy:
        """The stored version compiled under its portfolio's profile (`profile_name`)."""
        found = self.find((row.id, row.digest, profile_name))
        if found is not None:
            return found
        self.compiles += 1
        return self.cache.get(
            Strategy.model_validate(row.document),
            get_profile(profile_name),
            key=(row.id, row.digest),
            portfolio_profile=profile_name,
        )

    def find(self, key: Key) -> CompiledStrategy | None:
        """The compiled version under `key` if it is held (no database read needed)."""
        version_id, digest, profile_name = key
        return self.cache.find((version_id, digest), profile_name)

    def clear(self) -> None:
        self.cache.clear()

    def __len__(self) -> int:
        return len(self.cache)


REGISTRY = CompiledStrategies(COMPILED)


async def compiled_version(
    session: AsyncSession, version_id: uuid.UUID, digest: str, profile_name: str
) -> CompiledStrategy | None:
    """The version `version_id` (whose stored digest the caller read, e.g. with the case)
    compiled under `profile_name`: read from the database only when not yet compiled.
    None: no such version."""
    found = REGISTRY.find((version_id, digest, profile_name))
    if found is not None:
        return found
    row = await session.get(StrategyRow, version_id)
    return None if row is None else REGISTRY.get(row, profile_name)


def compiled_for(row: StrategyRow, profile_name: str) -> CompiledStrategy:
    """The stored version `row` compiled under `profile_name`, from the process registry."""
    return REGISTRY.get(row, profile_name)
