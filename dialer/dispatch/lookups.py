"""The reconciler's look-ups beyond the ambiguous call: texts by recipient, and calls that
have gone silent.

Texts. A text left `unknown` (an ambiguous create) or `reserved` (a worker died) has no
provider id to fetch. It is looked for among the messages to that number since its
reservation (Twilio's Messages list by `To` and date) that no other attempt claims:
found -> that message's state and sid; not found -> `not_sent`, and the reconciler plans
it again as it does a call (`reconciler._replan`). Nothing here sends anything.

Silent calls. Twilio does not retry a status callback that got a 5xx or no answer, so a
call whose final callback was lost would hold its campaign's in-progress place
(`pacing.LIVE`) until the stuck timeout (30 minutes by default). A call that has been
silent for longer than a call can ring and play its flow (`silent_after`) is fetched at
the provider instead; once Twilio says it has ended, the attempt moves to its final
state, which frees its place. A call still live stays as it is and is asked again later.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.errors import AdapterError, NotFoundError
from adapters.ports import CallInfo, Telephony
from dialer.db.models import AttemptRow
from dialer.dispatch.agents import RECONCILER, end_call
from dialer.domain.attempts import (
    CALL_STATUS,
    MESSAGE_STATUS,
    AttemptState,
    advance,
    call_result,
    is_final,
    stronger,
)
from strategy.model import Channel

log = logging.getLogger(__name__)

# A provider stamps its record a little after our reservation, never before it: the look-up
# starts this much earlier to allow for clock skew between us and the provider.
SKEW = timedelta(seconds=5)
# States of a call the provider holds and whose end a callback should have reported.
SILENT_STATES = (AttemptState.SENT, AttemptState.RINGING, AttemptState.IN_PROGRESS)


async def find_text(
    telephony: Telephony, row: AttemptRow, to: str, claimed: set[str]
) -> tuple[str | None, AttemptState]:
    """A text without a provider id: the oldest message to `to` since its reservation that
    no other attempt claims (its sid and state), else `not_sent`."""
    since = (row.reserved_at or row.at) - SKEW
    found = [m for m in await telephony.find_messages(to, since) if m.sid not in claimed]
    if found:
        oldest = found[-1]  # newest first
        return oldest.sid, MESSAGE_STATUS.get(oldest.status, AttemptState.SENT)
    return None, AttemptState.NOT_SENT


@dataclass(slots=True)
class SilentReport:
    examined: int = 0
    ended: dict[str, int] = field(default_factory=dict)  # final state -> calls moved there
    errors: int = 0


async def end_silent_calls(
    maker: async_sessionmaker[AsyncSession],
    telephony: Telephony,
    now: datetime,
    *,
    silent_after: timedelta,
    limit: int = 200,
) -> SilentReport:
    """Fetch the calls silent for longer than `silent_after` (no callback, no change since)
    and record the end of those Twilio says have ended, freeing their in-progress places.
    No row is locked while Twilio is asked: the moves are applied afterwards in one short
    transaction, each from the state the row is in then (a callback may have come)."""
    report = SilentReport()
    async with maker() as session:
        silent = (await session.execute(_silent(now - silent_after, limit))).all()
    ended: dict[uuid.UUID, CallInfo] = {}
    for attempt_id, sid in silent:
        report.examined += 1
        if sid is None:  # selected on it
            continue
        try:
            call = await telephony.fetch_call(sid)
        except NotFoundError:
            continue  # Twilio does not know it: the stuck timeout's look-up decides
        except AdapterError as exc:
            report.errors += 1
            log.warning("silent call %s: look-up failed: %r", attempt_id, exc)
            continue
        target = CALL_STATUS.get(call.status)
        if target is not None and is_final(target):
            ended[attempt_id] = call  # else still ringing or talking: asked again later
    if not ended:
        return report
    async with maker() as session:
        stmt = select(AttemptRow).where(AttemptRow.id.in_(list(ended)))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        for row in (await session.scalars(stmt)).all():
            if _end(row, ended[row.id], now):
                report.ended[row.state] = report.ended.get(row.state, 0) + 1
                await end_call(session, row.id, now, actor=RECONCILER)
                log.info("silent call %s ended at the provider as %s", row.id, row.state)
        await session.commit()
    return report


def _end(row: AttemptRow, call: CallInfo, now: datetime) -> bool:
    """Move the attempt to the final state Twilio reports, as its callback would have."""
    target = CALL_STATUS[call.status]
    new = advance(AttemptState(row.state), target)
    if new is None:
        return False  # a callback got there first, or it is no longer live
    row.state = new.value
    row.provider_status = call.status
    row.updated_at = now
    if call.duration_seconds is not None:
        row.duration_seconds = call.duration_seconds
    if call.answered_by and not row.answered_by:
        row.answered_by = call.answered_by
    result = call_result(call.status, row.answered_by)
    if result is not None:
        row.result = stronger(row.result, result)
    return True


def _silent(before: datetime, limit: int) -> Select[uuid.UUID, str | None]:
    last_heard = func.coalesce(AttemptRow.updated_at, AttemptRow.sent_at, AttemptRow.reserved_at)
    return (
        select(AttemptRow.id, AttemptRow.provider_sid)
        .where(
            AttemptRow.channel == Channel.VOICE.value,
            AttemptRow.state.in_([s.value for s in SILENT_STATES]),
            AttemptRow.provider_sid.is_not(None),
            last_heard <= before,
        )
        .order_by(last_heard)
        .limit(limit)
    )
