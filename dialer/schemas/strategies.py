from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from dialer.schemas.common import In, Instant, Out


class InProgressPolicy(StrEnum):
    FINISH_ON_OLD = "finish_on_old"  # cases already in progress keep the version they began on
    REEVALUATE = "reevaluate"  # every open case moves to the new version at once


class StrategyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


class StrategyIn(In):
    portfolio: str
    document: dict[str, Any] = Field(description="a strategy document (strategy.document)")
    teams: dict[str, str] = Field(default_factory=dict, description="tier id -> team")
    in_progress_policy: InProgressPolicy = InProgressPolicy.FINISH_ON_OLD


class StrategyCheckIn(In):
    portfolio: str
    document: dict[str, Any]


class StrategyFromPresetIn(In):
    portfolio: str
    preset: str


class StrategyOut(Out):
    id: uuid.UUID
    portfolio: str
    name: str
    version: int
    status: str
    in_progress_policy: InProgressPolicy
    teams: dict[str, str]
    digest: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    activated_by: str | None
    document: dict[str, Any]


class ViolationOut(BaseModel):
    tier: str | None
    path: str
    clause: str
    source: str
    message: str


class ValidationOut(BaseModel):
    valid: bool
    profile: str
    violations: list[ViolationOut]


class Change(BaseModel):
    path: str
    before: Any = None
    after: Any = None


class DiffOut(BaseModel):
    from_id: uuid.UUID
    from_version: int
    to_id: uuid.UUID
    to_version: int
    changes: list[Change]


class SimulateIn(In):
    at: Instant | None = None
    limit: int | None = Field(default=None, ge=0, le=5000)


class CaseChange(BaseModel):
    case_id: uuid.UUID
    external_ref: str
    tier_before: str | None
    tier_after: str | None
    newly_allowed: list[str]  # "party/contact point/channel"
    newly_refused: list[dict[str, Any]]  # candidate and the rules that refuse it now


class SimulationOut(BaseModel):
    at: datetime
    portfolio: str
    draft_id: uuid.UUID
    active_id: uuid.UUID | None
    cases: int
    tiers_active: dict[str, int]
    tiers_draft: dict[str, int]
    changed_cases: int
    changes: list[CaseChange]
    truncated: bool
