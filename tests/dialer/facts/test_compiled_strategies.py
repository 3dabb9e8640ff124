"""A stored strategy version is compiled once per process, version and profile."""

from __future__ import annotations

import uuid

from dialer.core.digest import digest
from dialer.db.models import StrategyRow
from dialer.facts.strategies import CompiledStrategies
from strategy.presets import load_preset
from tests.dialer.support import NOW


def _row(preset: str = "consumer-loan", **document: object) -> StrategyRow:
    doc = load_preset(preset).model_dump(mode="json") | document
    return StrategyRow(
        id=uuid.uuid4(),
        portfolio="cn-loans",
        name=doc["name"],
        version=1,
        status="active",
        document=doc,
        teams={},
        in_progress_policy="finish_on_old",
        digest=digest(doc),
        created_by="test",
        created_at=NOW,
    )


def test_a_version_is_compiled_once_whatever_row_object_carries_it() -> None:
    registry = CompiledStrategies()
    row = _row()
    first = registry.get(row, "cn-consumer")
    # A later request loads the same version as a new ORM object: still a hit.
    again = StrategyRow(**{c: getattr(row, c) for c in ("id", "document", "digest")})
    assert registry.get(again, "cn-consumer") is first
    assert registry.compiles == 1


def test_other_content_under_the_same_id_compiles_again() -> None:
    registry = CompiledStrategies()
    row = _row()
    registry.get(row, "cn-consumer")
    edited = _row(description="edited")
    edited.id = row.id  # the same id with other content must not hit the stale entry
    changed = registry.get(edited, "cn-consumer")
    assert changed.strategy.description == "edited"
    assert registry.compiles == 2


def test_the_registry_is_bounded_least_recently_used_out_first() -> None:
    registry = CompiledStrategies(maxsize=2)
    a, b, c = _row(), _row(), _row()
    registry.get(a, "cn-consumer")
    registry.get(b, "cn-consumer")
    registry.get(a, "cn-consumer")  # a is now the most recent
    registry.get(c, "cn-consumer")  # evicts b
    assert len(registry) == 2
    registry.get(a, "cn-consumer")
    assert registry.compiles == 3
    registry.get(b, "cn-consumer")
    assert registry.compiles == 4
