"""Dispositions and payments: what agents and the ledger record; history for the engine."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.api.schemas.outcomes import OutcomeIn, PaymentIn
from dialer.db.models import AttemptRow, OutcomeRow, PaymentRow
from dialer.db.repositories import audit, history
from dialer.errors import FieldError, NotFoundError, ValidationFailedError
from dialer.services.cases import get_case
from strategy.model import Result


async def record_outcome(
    session: AsyncSession, case_id: uuid.UUID, body: OutcomeIn, *, actor: str, now: datetime
) -> OutcomeRow:
    case = await get_case(session, case_id)
    at = body.at or now
    if body.result == Result.PROMISE_TO_PAY and (
        body.promise_amount is None or body.promise_date is None
    ):
        raise ValidationFailedError(
            "a promise to pay needs an amount and a date",
            [FieldError("promise_amount", "required for promise_to_pay"),
             FieldError("promise_date", "required for promise_to_pay")],
        )  # fmt: skip
    if body.attempt_id is not None:
        attempt = await history.get_attempt(session, body.attempt_id)
        if attempt is None or attempt.case_id != case_id:
            raise NotFoundError(f"no attempt {body.attempt_id} in case {case_id}")
    else:
        points = {cp.id: cp for p in case.parties for cp in p.contact_points}
        if body.contact_point_id not in points or body.channel is None:
            raise ValidationFailedError(
                "name the attempt, or the contact point and channel of the contact",
                [FieldError("contact_point_id", "not a contact point of this case")],
            )
        point = points[body.contact_point_id]
        attempt = AttemptRow(
            id=uuid.uuid4(),
            case_id=case_id,
            party_id=point.party_id,
            contact_point_id=point.id,
            channel=body.channel.value,
            state="completed",
            at=at,
            notes="recorded by hand",
        )
        await history.add_attempt(session, attempt)
    attempt.result = body.result.value
    attempt.promise_amount = body.promise_amount
    attempt.promise_date = body.promise_date
    attempt.callback_at = body.callback_at
    outcome = OutcomeRow(
        id=uuid.uuid4(),
        case_id=case_id,
        attempt_id=attempt.id,
        result=body.result.value,
        promise_amount=body.promise_amount,
        promise_date=body.promise_date,
        callback_at=body.callback_at,
        notes=body.notes,
        recorded_by=actor,
        recorded_at=now,
    )
    await history.add_outcome(session, outcome)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="outcome.record",
        entity="case",
        entity_id=str(case_id),
        detail={"attempt_id": str(attempt.id), "result": body.result.value},
    )
    await session.commit()
    return outcome


async def record_payment(
    session: AsyncSession, case_id: uuid.UUID, body: PaymentIn, *, actor: str, now: datetime
) -> PaymentRow:
    await get_case(session, case_id)
    row = PaymentRow(id=uuid.uuid4(), case_id=case_id, at=body.at, amount=body.amount)
    await history.add_payment(session, row)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="payment.record",
        entity="case",
        entity_id=str(case_id),
        detail={"amount": str(body.amount), "at": body.at.isoformat()},
    )
    await session.commit()
    return row
