"""Opt-out and opt-in per contact point and channel, from any source (architecture
invariant 7; compliance.md "Always"): an inbound STOP/退订, keypad 9, Twilio error 21610,
or an agent's cease record. Recorded in the caller's transaction; the engine refuses the
channel (`optout.channel`) from the moment it commits, including for jobs already queued,
because the worker decides again with fresh data before it dials, and checks once more in
its fence, immediately before the provider call (`dialer.dispatch.worker`).

The check is ordered by commit, not by the request's arrival: the fence reads the contact
point as committed when it runs, under a share lock, so it either sees the opt-out or
passed before the opt-out's transaction could write the row. For the second kind,
`settle` (called after the commit, before the answer) waits until their requests have
reached the provider: nothing is created after the opt-out is answered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AttemptRow, ContactPointRow
from dialer.db.repositories import audit
from dialer.db.repositories import protective as facts_repo
from dialer.dispatch.fence import SEND_WINDOW, SETTLE_MARGIN
from dialer.domain.attempts import AttemptState
from dialer.services import protective
from strategy.model import Channel


async def opt_out(
    session: AsyncSession,
    points: Sequence[ContactPointRow],
    channel: Channel,
    *,
    source: str,
    actor: str,
    now: datetime,
) -> int:
    """Block `channel` on each point; returns how many were not blocked already."""
    changed = 0
    await facts_repo.lock_cases(session, [p.case_id for p in points])  # in id order
    for point in points:
        await session.refresh(point)
        stored = protective.point_facts(point.opted_out, point.do_not_call)
        merged = protective.merge(stored, stored | {f"{protective.OPTED_OUT}{channel.value}"})
        if not merged.added:
            continue
        point.opted_out = protective.channels(merged.facts, protective.OPTED_OUT)
        changed += 1
        subject = protective.Subject("contact_point", point.id, point.case_id)
        await protective.record(session, subject, merged.added, actor=actor, source=source, now=now)
        await audit.append(
            session,
            at=now,
            actor=actor,
            action="contact_point.opt_out",
            entity="contact_point",
            entity_id=str(point.id),
            detail={"case_id": str(point.case_id), "channel": channel.value, "source": source},
        )
    await session.flush()
    return changed


async def opt_in(
    session: AsyncSession,
    points: Sequence[ContactPointRow],
    channel: Channel,
    *,
    source: str,
    actor: str,
    now: datetime,
) -> int:
    """Lift an opt-out of `channel` (an inbound START/YES/UNSTOP): the consumer's own
    opt-in from that number (CTIA; 47 CFR 64.1200), the one lifting not made by a
    supervisor's clearing. Recorded like an opt-out."""
    changed = 0
    for point in points:
        if channel.value not in point.opted_out:
            continue
        point.opted_out = sorted(set(point.opted_out) - {channel.value})
        changed += 1
        await facts_repo.forget(session, point.id, f"{protective.OPTED_OUT}{channel.value}")
        await audit.append(
            session,
            at=now,
            actor=actor,
            action="contact_point.opt_in",
            entity="contact_point",
            entity_id=str(point.id),
            detail={"case_id": str(point.case_id), "channel": channel.value, "source": source},
        )
    await session.flush()
    return changed


async def settle(
    session: AsyncSession,
    point_ids: Sequence[uuid.UUID],
    channel: Channel,
    now: datetime,
    *,
    poll: float = 0.02,
) -> float:
    """After an opt-out has committed, before it is answered: wait while an attempt on
    these points and channel is still `dialing` from a fence that passed before the commit
    (within SEND_WINDOW + SETTLE_MARGIN of `now`), at most that long. Such a request is
    on its way to the provider or was never started (the worker starts one only within
    SEND_WINDOW of its fence). Returns the seconds waited."""
    if not point_ids:
        return 0.0
    horizon = SEND_WINDOW + SETTLE_MARGIN
    in_flight = select(
        exists().where(
            AttemptRow.contact_point_id.in_(list(point_ids)),
            AttemptRow.channel == channel.value,
            AttemptRow.state == AttemptState.DIALING.value,
            AttemptRow.dialing_at > now - horizon,
        )
    )
    start = time.monotonic()
    deadline = start + horizon.total_seconds()
    while True:
        busy = bool(await session.scalar(in_flight))
        await session.commit()  # end the read: no snapshot held, nothing expired
        if not busy or time.monotonic() >= deadline:
            return time.monotonic() - start
        await asyncio.sleep(poll)
