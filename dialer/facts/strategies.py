"""Stored strategy versions, compiled once per process, version and profile.

A version row is never rewritten once stored (every change is a new version with a new
id), so its compiled form can live as long as the process. The key still carries the
row's `digest` (the SHA-256 of its document, written with it): should a row's document
ever change under the same id, the new content misses the cache instead of deciding on
the old one. The registry is bounded (least recently used out first) so a long-lived
API process that simulates many drafts does not grow without limit.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import StrategyRow
from strategy.compiled import CompiledStrategy, compile_strategy
from strategy.document import Strategy
from strategy.guardrails import get_profile

Key = tuple[uuid.UUID, str, str]  # (version id, document digest, profile name)


class CompiledStrategies:
    """A bounded, process-wide map from (version id, digest, profile) to the compiled
    strategy. Compiling is synchronous, so no await can interleave a lookup and its
    insertion: one event loop needs no lock."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Key, CompiledStrategy] = OrderedDict()
        self.compiles = 0  # how many times a version was compiled (tests read it)

    def get(self, row: StrategyRow, profile_name: str) -> CompiledStrategy:
        """The stored version compiled under its portfolio's profile (`profile_name`)."""
        key = (row.id, row.digest, profile_name)
        found = self.find(key)
        if found is not None:
            return found
        compiled = compile_strategy(
            Strategy.model_validate(row.document),
            get_profile(profile_name),
            portfolio_profile=profile_name,
        )
        self.compiles += 1
        self._entries[key] = compiled
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return compiled

    def find(self, key: Key) -> CompiledStrategy | None:
        """The compiled version under `key` if it is held (no database read needed)."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


REGISTRY = CompiledStrategies()


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
