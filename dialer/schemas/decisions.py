"""The Decision serialiser: the engine's dataclass tree as JSON with ISO instants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from dialer.schemas.cases import CaseIn, UnreachableIn
from dialer.schemas.common import Day, In, Instant, PositiveMoney, ProfileName
from strategy.decision import AllowedAction, Decision, Reason, Refusal, TaskRequest
from strategy.model import Channel, Result


class ReasonOut(BaseModel):
    rule: str
    message: str
    next_allowed: datetime | None
    source: str | None


class CandidateOut(BaseModel):
    party_id: str
    party_role: str
    contact_point_id: str
    channel: str


class AllowedOut(BaseModel):
    candidate: CandidateOut
    disclosure: str
    template_key: str
    window_start: datetime
    window_end: datetime
    allowed_by: str
    zones: list[str]
    voicemail_disclosure: str
    append_opt_out: bool
    preference: int
    preference_notes: list[str]


class RefusalOut(BaseModel):
    candidate: CandidateOut
    reasons: list[ReasonOut]
    next_allowed: datetime | None
    disclosure: str  # what the candidate would be told, were it allowed


class TaskRequestOut(BaseModel):
    key: str
    action: str
    requires_approval: bool
    reason: str


class DecisionOut(BaseModel):
    case_id: str
    at: datetime
    strategy: str
    strategy_version: int
    profile: str
    tier: str | None
    days_past_due: int
    allowed: list[AllowedOut]
    refused: list[RefusalOut]
    case_reasons: list[ReasonOut]
    tasks: list[TaskRequestOut]
    guidance: list[str]
    extra: dict[str, Any]
    warnings: list[ReasonOut]  # e.g. calendar.no_published_schedule


def _reason(r: Reason) -> ReasonOut:
    return ReasonOut(rule=r.rule, message=r.message, next_allowed=r.next_allowed, source=r.source)


def _candidate(c: Any) -> CandidateOut:
    return CandidateOut(
        party_id=c.party_id,
        party_role=str(c.party_role),
        contact_point_id=c.contact_point_id,
        channel=str(c.channel),
    )


def _allowed(a: AllowedAction) -> AllowedOut:
    return AllowedOut(
        candidate=_candidate(a.candidate),
        disclosure=str(a.disclosure),
        template_key=a.template_key,
        window_start=a.window_start,
        window_end=a.window_end,
        allowed_by=a.allowed_by,
        zones=list(a.zones),
        voicemail_disclosure=str(a.voicemail_disclosure),
        append_opt_out=a.append_opt_out,
        preference=a.preference,
        preference_notes=list(a.preference_notes),
    )


def _refusal(r: Refusal) -> RefusalOut:
    return RefusalOut(
        candidate=_candidate(r.candidate),
        reasons=[_reason(x) for x in r.reasons],
        next_allowed=r.next_allowed,
        disclosure=str(r.disclosure),
    )


def _task(t: TaskRequest) -> TaskRequestOut:
    return TaskRequestOut(
        key=t.key, action=str(t.action), requires_approval=t.requires_approval, reason=t.reason
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def decision_out(d: Decision) -> DecisionOut:
    return DecisionOut(
        case_id=d.case_id,
        at=d.at,
        strategy=d.strategy,
        strategy_version=d.strategy_version,
        profile=d.profile,
        tier=d.tier,
        days_past_due=d.days_past_due,
        allowed=[_allowed(a) for a in d.allowed],
        refused=[_refusal(r) for r in d.refused],
        case_reasons=[_reason(r) for r in d.case_reasons],
        tasks=[_task(t) for t in d.tasks],
        guidance=list(d.guidance),
        extra=_jsonable(d.extra),
        warnings=[_reason(w) for w in d.warnings],
    )


class AttemptIn(In):
    at: Instant
    channel: Channel
    party_id: str = Field(description="the party's ref (or party-<index>)")
    contact_point_id: str = Field(description="the contact point's ref (or cp-<p>-<c>)")
    result: Result = Result.PENDING
    promise_amount: PositiveMoney | None = None
    promise_date: Day | None = None
    callback_at: Instant | None = None


class PaymentIn(In):
    at: Instant
    amount: PositiveMoney


class HistoryIn(In):
    attempts: list[AttemptIn] = Field(default_factory=list)
    payments: list[PaymentIn] = Field(default_factory=list)


class PreviewIn(In):
    """A what-if: a whole case with its history at an instant; nothing is stored."""

    case: CaseIn
    history: HistoryIn = Field(default_factory=HistoryIn)
    at: Instant
    portfolio: str | None = Field(default=None, description="use its profile and active strategy")
    strategy: dict[str, Any] | None = Field(default=None, description="a strategy document")
    strategy_id: uuid.UUID | None = None
    profile: ProfileName | None = Field(default=None, description="guardrail profile name")
    recorded_unreachable: UnreachableIn | None = Field(
        default=None,
        description="what if the debtor were recorded unreachable (PUT /cases/{id}/unreachable)",
    )

    @model_validator(mode="after")
    def _one_strategy(self) -> PreviewIn:
        given = [x is not None for x in (self.strategy, self.strategy_id)]
        if sum(given) > 1:
            raise ValueError("give a strategy document or a strategy_id, not both")
        if not any(given) and self.portfolio is None:
            raise ValueError("give a strategy document, a strategy_id or a portfolio")
        return self
