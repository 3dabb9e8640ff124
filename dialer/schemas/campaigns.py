"""Campaigns: what a supervisor creates and what progress reports."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from dialer.domain.agents import DialingMode
from dialer.domain.windows import WINDOW_PATTERN, LocalWindow
from dialer.schemas.common import In, Out
from strategy.model import Channel

MIN_CPS = 0.01


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


class CampaignFilter(In):
    tiers: list[str] | None = None
    teams: list[str] | None = None
    external_refs: list[str] | None = Field(default=None, max_length=10_000)


class CampaignIn(In):
    name: str = Field(min_length=1, max_length=100)
    portfolio: str = Field(min_length=1, max_length=64)
    filter: CampaignFilter = Field(default_factory=CampaignFilter)
    channels: list[Channel] = Field(min_length=1)
    # The pattern is declared in the schema; `_window` checks it with a plain message.
    window: str = Field(
        description="local start window in each party's zone, e.g. 09:00-11:30",
        max_length=16,
        json_schema_extra={"pattern": WINDOW_PATTERN},
    )
    # At least one call per 100 s: a slot is 1/cps seconds after the last, and a rate near
    # zero put the next slot past the end of time (OverflowError, the jobs dead-lettered).
    pacing_cps: float = Field(
        ge=MIN_CPS, le=1000, description="calls per second, all workers together"
    )
    max_in_progress: int | None = Field(
        default=10, ge=1, le=100_000, description="attempts in progress at most; null: no limit"
    )

    mode: DialingMode = Field(
        default=DialingMode.IVR,
        description="ivr: the automated flow; preview/progressive/predictive put a collector"
        " on the line (voice only)",
    )
    wrap_up_limit_s: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="seconds wrap-up is owed after an agent's call before the next; null:"
        " the default (domain.agents.DEFAULT_WRAP_UP_LIMIT_S)",
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not re.match(WINDOW_PATTERN, value):  # as declared: no spaces, 24:00 at most
            raise ValueError(f"a window is 'HH:MM-HH:MM' (24:00 at the latest), not {value!r}")
        return str(LocalWindow.parse(value))

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[Channel]) -> list[Channel]:
        return list(dict.fromkeys(value))


class CampaignOut(Out):
    id: uuid.UUID
    name: str
    portfolio: str
    filter: dict[str, Any]
    channels: list[str]
    window: str | None
    pacing_cps: float
    max_in_progress: int | None
    mode: str
    wrap_up_limit_s: int | None
    status: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    plan_done: bool
    cases_seen: int
    planned: int


class ProgressOut(Out):
    campaign_id: uuid.UUID
    status: str
    plan_done: bool
    cases_seen: int
    planned: int  # attempts the planner recorded
    waiting: int  # planned, not yet handed to the queue
    queued: int
    dispatched: int  # reserved by a worker (whatever happened next)
    in_progress: int  # reserved, sent, ringing, in progress or unknown
    completed: int
    completed_by_outcome: dict[str, int]
    failed: int
    unknown: int
    not_sent: int
    cancelled: int
    refused_at_dispatch: int
    refused_by_rule: dict[str, int]  # planning (cases) and dispatch (attempts), by rule
    # the earliest send time still waiting (planned or queued): the next opening of the
    # window when the campaign was started after today's had closed
    next_send_at: datetime | None = None
    # what an operator must know about this campaign, in words: e.g. attempts a worker
    # ended because it has no telephony configured (it dials nobody)
    warnings: list[str] = Field(default_factory=list)


class DeadLetterOut(Out):
    message_id: str
    attempt_id: str | None
    case_id: str | None
    campaign_id: str | None
    reason: str
    died_at: datetime | None


class ReplayIn(In):
    message_ids: list[str] | None = Field(default=None, description="null: replay all")


class ReplayOut(Out):
    replayed: int
