from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from dialer.schemas.common import Day, In, Instant, Out, PositiveMoney
from strategy.model import Channel, Result


class OutcomeIn(In):
    """An agent's disposition: of an attempt already recorded, or of a contact made by hand
    (then `contact_point_id` and `channel` say which)."""

    attempt_id: uuid.UUID | None = None
    contact_point_id: uuid.UUID | None = None
    channel: Channel | None = None
    result: Result
    at: Instant | None = None
    promise_amount: PositiveMoney | None = None
    promise_date: Day | None = None
    callback_at: Instant | None = None
    notes: Annotated[str, Field(max_length=4000)] | None = None
    # A cease request: block these channels on the contact point at once (invariant 7).
    opt_out: list[Channel] = Field(default_factory=list)


class OutcomeOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    attempt_id: uuid.UUID | None
    result: Result
    promise_amount: Decimal | None
    promise_date: date | None
    callback_at: datetime | None
    notes: str | None
    recorded_by: str
    recorded_at: datetime


class PaymentIn(In):
    at: Instant
    amount: PositiveMoney


class PaymentOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    at: datetime
    amount: Decimal
