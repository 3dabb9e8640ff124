"""The reconciler: attempts whose provider outcome is not known, looked up, never redialed.

Covers attempts in `unknown` (an ambiguous create) for longer than `unknown_after` since
that create (not since the reservation: the provider may still be completing it); `reserved`
ones whose lease has run out (a worker died or stalled before its fence); `dialing` ones
whose fence is older than `dialing_after` (`fence.dialing_reclaim_after`: the send window,
the HTTP client's whole timeout and a margin: a worker that died mid-request); and
`sent`/`ringing`/`in_progress` ones older than `stuck_after` (a lost final callback; the
webhooks side calls `reconcile` for those too).

A `reserved` attempt is reclaimed only by taking its lease: one compare-and-set (still
reserved, lease run out) straight to `not_sent`, with no look-up: its worker can no
longer pass the fence, so it was never dialled and never will be (issue 19). Rows
reserved before leases existed (no `lease_until`) are looked up after `reserved_after`.
Any other is looked up at the provider. With a provider id: fetch the call or
message and map its status. Without one: a call or a text is looked for among the calls
or messages to that number since the reservation that no other attempt claims
(`lookups.find_text` for texts); found -> its state, not found -> `not_sent`. An email
without an id cannot be looked up: it is failed, never sent again. A failure the
reconciler concludes by itself (that, or a provider that knows nothing of the id) carries
`INFERRED_FAILURE`, and the provider's later delivered callback corrects it. Calls silent
past their expected length are `lookups.end_silent_calls`. Nothing here ever places a
call or sends a message.

A call or text found `not_sent` certainly never reached the provider (a worker died
before the request left, or an ambiguous create turned out to have done nothing). When
its campaign is still running, a fresh attempt is planned for the same contact point, due
at once, and its job staged in the outbox in the same transaction, at most `replans`
times per campaign, case and contact point: the worker asks the engine again before it
dials, so windows, caps and everything that happened since still decide whether it is
placed.

An attempt the reconciler reclaims or finalises lets go of its collector the way its
callbacks would have (`dispatch.agents`): an agent held for it is available again, an
agent it was bridged to owes its wrap-up; each move audited under `reconciler`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.errors import AdapterError, NotFoundError
from adapters.ports import Telephony
from dialer.db.models import AttemptRow, CampaignRow, ContactPointRow
from dialer.dispatch import lookups, outbox
from dialer.dispatch.agents import RECONCILER, end_call, free_held_agent
from dialer.dispatch.fence import dialing_reclaim_after
from dialer.domain.attempts import (
    CALL_STATUS,
    INFERRED_FAILURE,
    MESSAGE_STATUS,
    AttemptState,
    advance,
    is_final,
)
from strategy.model import Channel

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    examined: int = 0
    moved: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    replanned: int = 0  # fresh attempts planned for calls found never placed


REPLAN_NOTE = "re-planned by the reconciler: "
LEASE_TAKER = "reconciler"
DIALING_AFTER = dialing_reclaim_after(timedelta(seconds=15), timedelta(seconds=30))


def _move(row: AttemptRow, target: AttemptState) -> bool:
    """Advance through the state machine; `reserved -> not_sent` goes by way of `unknown`."""
    moved = False
    if target is AttemptState.NOT_SENT:
        step = advance(AttemptState(row.state), AttemptState.UNKNOWN)
        if step is not None:
            row.state = step.value
            moved = True
    new = advance(AttemptState(row.state), target)
    if new is not None:
        row.state = new.value
        moved = True
    return moved


async def reconcile(
    maker: async_sessionmaker[AsyncSession],
    telephony: Telephony,
    now: datetime,
    *,
    unknown_after: timedelta = timedelta(seconds=30),
    reserved_after: timedelta = timedelta(minutes=5),
    dialing_after: timedelta = DIALING_AFTER,
    stuck_after: timedelta = timedelta(hours=2),
    limit: int = 200,
    replans: int = 2,
) -> ReconcileReport:
    report = ReconcileReport()
    async with maker() as session:
        rows = await _due(
            session, now, unknown_after, reserved_after, dialing_after, stuck_after, limit
        )
        claimed = await _claimed_sids(session, rows)
        for row, to in rows:
            report.examined += 1
            if row.state == AttemptState.RESERVED.value and row.lease_until is not None:
                if await _take_lease(session, row, now):
                    report.moved["not_sent"] = report.moved.get("not_sent", 0) + 1
                    await free_held_agent(session, row.id, now, actor=RECONCILER)
                    if await _replan(session, row, now, replans):
                        report.replanned += 1
                continue
            try:
                target = await _look_up(telephony, row, to, claimed)
            except AdapterError as exc:
                report.errors += 1
                log.warning("reconcile %s: look-up failed: %r", row.id, exc)
                continue
            if target is None:
                continue
            sid, state, inferred = target
            if state is AttemptState.NOT_SENT and (sid or row.provider_sid):
                continue  # an attempt with a provider id is never not_sent
            if sid and not row.provider_sid:
                row.provider_sid = sid
                claimed.add(sid)
            if _move(row, state):
                row.updated_at = now
                if inferred:  # the reconciler's conclusion: the provider may correct it
                    row.error_code = INFERRED_FAILURE
                elif state is AttemptState.FAILED and not row.error_code:
                    row.error_code = "provider_failed"
                report.moved[state.value] = report.moved.get(state.value, 0) + 1
                if is_final(AttemptState(row.state)):  # its collector is freed or owes wrap-up
                    await end_call(session, row.id, now, actor=RECONCILER)
                if state is AttemptState.NOT_SENT and await _replan(session, row, now, replans):
                    report.replanned += 1
        await session.commit()
    return report


async def _due(
    session: AsyncSession,
    now: datetime,
    unknown_after: timedelta,
    reserved_after: timedelta,
    dialing_after: timedelta,
    stuck_after: timedelta,
    limit: int,
) -> Sequence[tuple[AttemptRow, str]]:
    stmt = (
        select(AttemptRow, ContactPointRow.value)
        .join(ContactPointRow, ContactPointRow.id == AttemptRow.contact_point_id)
        .where(
            or_(
                and_(
                    # From when the create turned ambiguous (recorded in updated_at), not
                    # from the reservation: a timed-out create may still be completing at
                    # the provider, and a text may have waited long for a pacing slot.
                    AttemptRow.state == AttemptState.UNKNOWN.value,
                    func.coalesce(AttemptRow.updated_at, AttemptRow.reserved_at)
                    <= now - unknown_after,
                ),
                and_(
                    AttemptRow.state == AttemptState.RESERVED.value,
                    or_(
                        AttemptRow.lease_until <= now,
                        and_(
                            AttemptRow.lease_until.is_(None),
                            AttemptRow.reserved_at <= now - reserved_after,
                        ),
                    ),
                ),
                and_(
                    AttemptRow.state == AttemptState.DIALING.value,
                    AttemptRow.dialing_at <= now - dialing_after,
                ),
                and_(
                    AttemptRow.state.in_(
                        [
                            AttemptState.SENT.value,
                            AttemptState.RINGING.value,
                            AttemptState.IN_PROGRESS.value,
                        ]
                    ),
                    AttemptRow.reserved_at <= now - stuck_after,
                ),
            )
        )
        .order_by(AttemptRow.reserved_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=AttemptRow, skip_locked=True)
    return [(r[0], r[1]) for r in (await session.execute(stmt)).all()]


async def _take_lease(session: AsyncSession, row: AttemptRow, now: datetime) -> bool:
    """Reclaim a reserved attempt whose lease has run out: compare-and-set (still reserved,
    the lease still run out, no provider id) to `not_sent`, through the state machine's
    `reserved -> unknown -> not_sent`. False when its worker passed the fence first."""
    step = advance(AttemptState.RESERVED, AttemptState.UNKNOWN)
    if step is None or advance(step, AttemptState.NOT_SENT) is None:
        return False
    result = await session.execute(
        update(AttemptRow)
        .where(
            AttemptRow.id == row.id,
            AttemptRow.state == AttemptState.RESERVED.value,
            AttemptRow.lease_until <= now,
            AttemptRow.provider_sid.is_(None),
        )
        .values(
            state=AttemptState.NOT_SENT.value,
            lease_owner=LEASE_TAKER,
            updated_at=now,
            error_code=func.coalesce(AttemptRow.error_code, "lease_expired"),
        )
        .execution_options(synchronize_session="fetch")
    )
    taken = bool(result.rowcount)  # type: ignore[attr-defined]
    if taken:
        log.info("attempt %s: its lease ran out before its fence; reclaimed", row.id)
    return taken


async def _claimed_sids(session: AsyncSession, rows: Sequence[tuple[AttemptRow, str]]) -> set[str]:
    numbers = {to for row, to in rows if not row.provider_sid}
    if not numbers:
        return set()
    found = await session.scalars(
        select(AttemptRow.provider_sid)
        .join(ContactPointRow, ContactPointRow.id == AttemptRow.contact_point_id)
        .where(ContactPointRow.value.in_(numbers), AttemptRow.provider_sid.is_not(None))
    )
    return {s for s in found if s}


async def _look_up(
    telephony: Telephony, row: AttemptRow, to: str, claimed: set[str]
) -> tuple[str | None, AttemptState, bool] | None:
    """(the provider's sid when found, the state to move to, whether that state is the
    reconciler's own conclusion rather than the provider's word), None: leave it."""
    channel = Channel(row.channel)
    if row.provider_sid:
        try:
            if channel is Channel.VOICE:
                call = await telephony.fetch_call(row.provider_sid)
                return None, CALL_STATUS.get(call.status, AttemptState.SENT), False
            if channel is Channel.SMS:
                msg = await telephony.fetch_message(row.provider_sid)
                return None, MESSAGE_STATUS.get(msg.status, AttemptState.SENT), False
        except NotFoundError:
            return None, AttemptState.FAILED, True
        return None  # email: the mail server's acceptance is all there is
    if channel is Channel.VOICE:
        since = (row.reserved_at or row.at) - lookups.SKEW
        calls = [c for c in await telephony.find_calls(to, since) if c.sid not in claimed]
        if calls:
            oldest = calls[-1]  # newest first
            return oldest.sid, CALL_STATUS.get(oldest.status, AttemptState.SENT), False
        return None, AttemptState.NOT_SENT, False
    if channel is Channel.SMS:
        return *await lookups.find_text(telephony, row, to, claimed), False
    # No look-up by recipient for email: never send again, close it.
    return None, AttemptState.FAILED, True


async def _replan(session: AsyncSession, row: AttemptRow, now: datetime, replans: int) -> bool:
    """A fresh attempt and its job for a call that was never placed, in the caller's
    transaction, when its campaign is still running (or paused: its jobs wait) and fewer
    than `replans` were made for this campaign, case and contact point. Due at once (at
    the original send time, which has passed); the worker decides it anew."""
    if row.campaign_id is None or replans < 1:
        return False
    status = await session.scalar(
        select(CampaignRow.status).where(CampaignRow.id == row.campaign_id)
    )
    if status not in ("running", "paused"):
        return False
    made = await session.scalar(
        select(func.count())
        .select_from(AttemptRow)
        .where(
            AttemptRow.campaign_id == row.campaign_id,
            AttemptRow.case_id == row.case_id,
            AttemptRow.contact_point_id == row.contact_point_id,
            AttemptRow.notes.startswith(REPLAN_NOTE),
        )
    )
    if (made or 0) >= replans:
        return False
    when = min(now, row.not_before or now)  # its send time, which has passed
    notes = f"{REPLAN_NOTE}{row.id} was never placed"
    fresh = await outbox.plan_again(session, row, when, now, notes=notes)
    log.info("attempt %s was never placed: planned %s in its place", row.id, fresh.id)
    return True
