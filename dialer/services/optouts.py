"""Opt-out and opt-in per contact point and channel, from any source (architecture
invariant 7; compliance.md "Always"): an inbound STOP/退订, keypad 9, Twilio error 21610,
or an agent's cease record. Recorded in the caller's transaction; the engine refuses the
channel (`optout.channel`) from the moment it commits, including for jobs already queued,
because the worker decides again with fresh data before it dials.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import ContactPointRow
from dialer.db.repositories import audit
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
    for point in points:
        if channel.value in point.opted_out:
            continue
        point.opted_out = sorted({*point.opted_out, channel.value})
        changed += 1
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
    """Lift an opt-out of `channel` (an inbound START/YES/UNSTOP); recorded like one."""
    changed = 0
    for point in points:
        if channel.value not in point.opted_out:
            continue
        point.opted_out = sorted(set(point.opted_out) - {channel.value})
        changed += 1
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
