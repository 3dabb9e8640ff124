"""Table rows as plain dicts, for bulk writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class CaseRows:
    """One case document as plain row dicts, ready for a bulk upsert."""

    case: dict[str, Any]
    parties: list[dict[str, Any]] = field(default_factory=list)
    contact_points: list[dict[str, Any]] = field(default_factory=list)
