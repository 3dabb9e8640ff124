"""A campaign's life: its status moves (start, pause, resume, cancel, done) and the
planning lease the workers' planners take turns on.

Here, below the services, so that the planner closes a finished campaign through the same
rule the API's supervisor uses (the service re-exports `transition`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.core.errors import ConflictError, NotFoundError
from dialer.db.models import AttemptRow, CampaignRow
from dialer.db.repositories import audit
from dialer.dispatch import pacing
from dialer.domain.attempts import AttemptState, is_final, sources

log = logging.getLogger(__name__)

RUNNING = "running"
LEASE = timedelta(minutes=2)  # a planner's hold on a campaign, renewed by every batch

# status -> the statuses it may move to
_LIFECYCLE: dict[str, frozenset[str]] = {
    "draft": frozenset({"running", "cancelled"}),
    "running": frozenset({"paused", "cancelled", "done"}),
    "paused": frozenset({"running", "cancelled"}),
    "cancelled": frozenset(),
    "done": frozenset(),
}
_TO_CANCELLED = list(sources(AttemptState.CANCELLED))


async def transition(
    session: AsyncSession, campaign_id: uuid.UUID, target: str, *, actor: str, now: datetime
) -> CampaignRow:
    """start (draft -> running), pause, resume (paused -> running), cancel, done."""
    stmt = select(CampaignRow).where(CampaignRow.id == campaign_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt.execution_options(populate_existing=True))
    if row is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    before = row.status
    if target not in _LIFECYCLE.get(before, frozenset()):
        raise ConflictError(f"a {before} campaign cannot become {target}")
    row.status = target
    row.updated_at = now
    if target == RUNNING and row.started_at is None:
        row.started_at = now
        await pacing.ensure_row(session, row.id, now)
    if target in ("cancelled", "done"):
        row.finished_at = now
    if target == "cancelled":
        # Attempts not yet reserved are cancelled now; a worker holding one of their jobs
        # finds them cancelled and acks it.
        await session.execute(
            update(AttemptRow)
            .where(AttemptRow.campaign_id == row.id, AttemptRow.state.in_(_TO_CANCELLED))
            .values(state=AttemptState.CANCELLED.value, updated_at=now)
        )
    await audit.append(
        session,
        at=now,
        actor=actor,
        action=f"campaign.{target}",
        entity="campaign",
        entity_id=str(row.id),
        detail={"from": before, "to": target},
    )
    await session.commit()
    return row


async def finish_completed(
    maker: async_sessionmaker[AsyncSession], now: datetime
) -> list[uuid.UUID]:
    """Running campaigns whose planning is finished and whose attempts are all final
    (completed, failed, refused, cancelled, not sent) become `done`."""
    outstanding = [s.value for s in AttemptState if not is_final(s)]
    async with maker() as session:
        finished = (
            await session.scalars(
                select(CampaignRow.id).where(
                    CampaignRow.status == RUNNING,
                    CampaignRow.plan_done.is_(True),
                    ~exists().where(
                        AttemptRow.campaign_id == CampaignRow.id,
                        AttemptRow.state.in_(outstanding),
                    ),
                )
            )
        ).all()
    done: list[uuid.UUID] = []
    for cid in finished:
        async with maker() as session:
            try:
                await transition(session, cid, "done", actor="planner", now=now)
            except ConflictError:
                continue  # paused or cancelled meanwhile
            done.append(cid)
            log.info("campaign %s done: planned to the end, every attempt final", cid)
    return done


async def claim(
    maker: async_sessionmaker[AsyncSession], owner: str, now: datetime
) -> uuid.UUID | None:
    """Take the planning lease of one running campaign that still has cases to plan;
    first, close the campaigns that are finished (`finish_completed`): the planner loop
    of every worker calls this every few seconds."""
    await finish_completed(maker, now)
    claimable = (
        CampaignRow.status == RUNNING,
        CampaignRow.plan_done.is_(False),
        (CampaignRow.plan_lease_until.is_(None))
        | (CampaignRow.plan_lease_until < now)
        | (CampaignRow.plan_lease_owner == owner),
    )
    async with maker() as session:
        candidates = (await session.scalars(select(CampaignRow.id).where(*claimable))).all()
        for cid in candidates:
            result = await session.execute(
                update(CampaignRow)
                .where(CampaignRow.id == cid, *claimable)
                .values(plan_lease_owner=owner, plan_lease_until=now + LEASE)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await session.commit()
                return cid
        await session.commit()
        return None
