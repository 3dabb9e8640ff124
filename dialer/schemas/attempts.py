"""Attempts and promises as lists and exports read them: the filters they take (also the
query parameters of `/v1/attempts`, `/v1/attempts/export` and `/v1/promises`) and the
rows they return."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from dialer.core.errors import FieldError, ValidationFailedError
from dialer.domain.attempts import AttemptState
from dialer.schemas.common import Day, In, Instant, Out
from strategy.model import Channel, Result


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class AttemptFilter(In):
    """Which attempts: every filter given must hold. `since` is inclusive and `until`
    exclusive, on the attempt's instant (its planned send time, then when it was made)."""

    campaign: uuid.UUID | None = Field(default=None, description="a campaign's id")
    case: uuid.UUID | None = Field(default=None, description="a case's id")
    portfolio: str | None = Field(default=None, max_length=64)
    channel: Channel | None = None
    state: AttemptState | None = None
    outcome: Result | None = Field(default=None, description="the attempt's result")
    since: Instant | None = None
    until: Instant | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValidationFailedError(
                "until must come after since", [FieldError("until", "must be after since")]
            )
        return self


class AttemptOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    portfolio: str
    external_ref: str
    campaign_id: uuid.UUID | None
    party_id: uuid.UUID
    contact_point_id: uuid.UUID
    channel: str
    state: str
    result: str
    at: datetime
    planned_at: datetime | None
    reserved_at: datetime | None
    sent_at: datetime | None
    answered_by: str | None
    duration_seconds: int | None
    provider_status: str | None
    error_code: str | None
    promise_amount: Decimal | None
    promise_date: date | None
    callback_at: datetime | None
    strategy_version_id: uuid.UUID | None
    profile: str | None
    allowed_by: str | None


# An export row: the list's columns, then the number or address contacted.
EXPORT_COLUMNS: tuple[str, ...] = (*AttemptOut.model_fields, "contact_kind", "contact_value")


class PromiseFilter(In):
    """Promises to pay falling due on a day (`due`) or in a range of days (`due_from`,
    `due_to`, both inclusive; either may be left open), optionally in one portfolio."""

    due: Day | None = None
    due_from: Day | None = None
    due_to: Day | None = None
    portfolio: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.due is not None and (self.due_from is not None or self.due_to is not None):
            raise ValidationFailedError(
                "name a due day or a range, not both",
                [FieldError("due", "given with due_from or due_to")],
            )
        if self.due is None and self.due_from is None and self.due_to is None:
            raise ValidationFailedError(
                "name a due day (due) or a range (due_from, due_to)",
                [FieldError("due", "required unless due_from or due_to is given")],
            )
        if self.due_from and self.due_to and self.due_to < self.due_from:
            raise ValidationFailedError(
                "due_to comes before due_from", [FieldError("due_to", "before due_from")]
            )
        return self

    def bounds(self) -> tuple[date | None, date | None]:
        return (self.due, self.due) if self.due is not None else (self.due_from, self.due_to)


class PromiseOut(Out):
    attempt_id: uuid.UUID
    case_id: uuid.UUID
    portfolio: str
    external_ref: str
    promise_date: date
    promise_amount: Decimal | None
    currency: str
    balance: Decimal | None
    result: str
    channel: str
    at: datetime
    agent: str | None
