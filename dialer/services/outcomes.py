"""Dispositions and payments: what agents and the ledger record; history for the engine.

After every outcome the case is decided again and the decision's escalations become tasks
exactly once per (case, key): outcomes drive the ladders (a right-party conversation starts
the quiet period, a broken promise resumes collection, thresholds create tasks).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import AttemptRow, CaseRow, OutcomeRow, PaymentRow
from dialer.db.repositories import audit, history
from dialer.schemas.outcomes import OutcomeIn, PaymentIn
from dialer.services.cases import get_case
from dialer.services.optouts import opt_out, settle
from dialer.services.tasks import record_requests
from strategy.model import Result

log = logging.getLogger(__name__)


async def follow_up(session: AsyncSession, case_id: uuid.UUID, now: datetime) -> int:
    """Decide for the case now and create the decision's tasks (once each); returns how
    many are new. Does not commit. A portfolio without an active strategy has no ladder."""
    from dialer.services.decisions import decide_stored  # decisions imports this module's peers

    try:
        decision = await decide_stored(session, case_id, now)
    except ConflictError as exc:
        log.info("no follow-up decision for case %s: %s", case_id, exc.message)
        return 0
    return await record_requests(session, case_id, decision, now)


def _check_promise(body: OutcomeIn) -> None:
    if body.result == Result.PROMISE_TO_PAY and (
        body.promise_amount is None or body.promise_date is None
    ):
        raise ValidationFailedError(
            "a promise to pay needs an amount and a date",
            [FieldError("promise_amount", "required for promise_to_pay"),
             FieldError("promise_date", "required for promise_to_pay")],
        )  # fmt: skip


async def _attempt_for(
    session: AsyncSession, case: CaseRow, body: OutcomeIn, at: datetime
) -> AttemptRow:
    """The attempt the outcome names, or, for a contact made outside the dialer, a completed
    attempt recorded by hand on the contact point and channel given."""
    if body.attempt_id is not None:
        attempt = await history.get_attempt(session, body.attempt_id)
        if attempt is None or attempt.case_id != case.id:
            raise NotFoundError(f"no attempt {body.attempt_id} in case {case.id}")
        return attempt
    points = {cp.id: cp for p in case.parties for cp in p.contact_points}
    if body.contact_point_id not in points or body.channel is None:
        raise ValidationFailedError(
            "name the attempt, or the contact point and channel of the contact",
            [FieldError("contact_point_id", "not a contact point of this case")],
        )
    point = points[body.contact_point_id]
    attempt = AttemptRow(
        id=uuid.uuid4(),
        case_id=case.id,
        party_id=point.party_id,
        contact_point_id=point.id,
        channel=body.channel.value,
        state="completed",
        at=at,
        notes="recorded by hand",
    )
    await history.add_attempt(session, attempt)
    return attempt


async def record_outcome(
    session: AsyncSession, case_id: uuid.UUID, body: OutcomeIn, *, actor: str, now: datetime
) -> OutcomeRow:
    """An agent's disposition: it lands on the attempt it names (or on one recorded by hand),
    any cease request on that contact point takes effect, and the case is decided again."""
    case = await get_case(session, case_id)
    _check_promise(body)
    attempt = await _attempt_for(session, case, body, body.at or now)
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
    ceased = next(
        (cp for p in case.parties for cp in p.contact_points if cp.id == attempt.contact_point_id),
        None,
    )
    if ceased is not None and body.opt_out:
        # An agent's cease record: that channel on that contact point, at once.
        for channel in body.opt_out:
            await opt_out(session, [ceased], channel, source="agent", actor=actor, now=now)
    await follow_up(session, case_id, now)
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
    if ceased is not None:  # answered only once no create can follow (issue 19)
        for channel in body.opt_out or ():
            await settle(session, [ceased.id], channel, now)
    return outcome


async def record_payment(
    session: AsyncSession, case_id: uuid.UUID, body: PaymentIn, *, actor: str, now: datetime
) -> PaymentRow:
    """A payment joins the case's history and lowers its balance (never below zero), under
    the case's row lock so two payments posted at once both count; a case paid off is
    `case.settled` for the engine from this commit on, queued jobs included. The audit entry
    keeps the balance before, so `dialer audit` can rebuild the case as it stood earlier."""
    stmt = select(CaseRow).where(CaseRow.id == case_id).with_for_update()
    case = await session.scalar(stmt.execution_options(populate_existing=True))
    if case is None:
        raise NotFoundError(f"no case {case_id}")
    before = case.balance
    case.balance = max((case.amount if before is None else before) - body.amount, Decimal(0))
    case.updated_at = now
    row = PaymentRow(id=uuid.uuid4(), case_id=case_id, at=body.at, amount=body.amount)
    await history.add_payment(session, row)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="payment.record",
        entity="case",
        entity_id=str(case_id),
        detail={
            "amount": str(body.amount),
            "at": body.at.isoformat(),
            "before": {"balance": None if before is None else str(before)},
            "after": {"balance": str(case.balance)},
        },
    )
    await session.commit()
    return row
