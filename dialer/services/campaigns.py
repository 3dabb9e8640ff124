"""Campaigns: create, start, pause, resume, cancel, progress.

Starting only marks the campaign running and opens its pacing row: the planner (in every
`dialer worker`, under a lease) picks it up, so an API process never does long work and a
crashed planner is resumed by another from the campaign's cursor.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import AttemptRow, CampaignRow, Portfolio
from dialer.db.repositories import audit
from dialer.dispatch import pacing
from dialer.domain.attempts import NO_TELEPHONY, AttemptState, can_advance
from dialer.schemas.campaigns import CampaignIn, ProgressOut

# status -> the statuses it may move to
_LIFECYCLE: dict[str, frozenset[str]] = {
    "draft": frozenset({"running", "cancelled"}),
    "running": frozenset({"paused", "cancelled", "done"}),
    "paused": frozenset({"running", "cancelled"}),
    "cancelled": frozenset(),
    "done": frozenset(),
}
_TO_CANCELLED = [s.value for s in AttemptState if can_advance(s, AttemptState.CANCELLED)]


async def create_campaign(
    session: AsyncSession, body: CampaignIn, *, actor: str, now: datetime
) -> CampaignRow:
    if await session.get(Portfolio, body.portfolio) is None:
        raise ValidationFailedError(
            f"no portfolio {body.portfolio!r}", [FieldError("portfolio", "unknown portfolio")]
        )
    row = CampaignRow(
        id=uuid.uuid4(),
        name=body.name,
        portfolio=body.portfolio,
        filter=body.filter.model_dump(exclude_none=True),
        channels=[c.value for c in body.channels],
        window=body.window,
        pacing_cps=body.pacing_cps,
        max_in_progress=body.max_in_progress,
        status="draft",
        created_by=actor,
        created_at=now,
        updated_at=now,
        plan_done=False,
        cases_seen=0,
        planned=0,
        refused_by_rule={},
    )
    session.add(row)
    await session.flush()
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="campaign.create",
        entity="campaign",
        entity_id=str(row.id),
        detail={"name": row.name, "portfolio": row.portfolio},
    )
    await session.commit()
    return row


async def get_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> CampaignRow:
    row = await session.get(CampaignRow, campaign_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    return row


async def list_campaigns(
    session: AsyncSession, *, portfolio: str | None, status: str | None, limit: int
) -> Sequence[CampaignRow]:
    stmt = select(CampaignRow).order_by(CampaignRow.created_at.desc()).limit(limit)
    if portfolio:
        stmt = stmt.where(CampaignRow.portfolio == portfolio)
    if status:
        stmt = stmt.where(CampaignRow.status == status)
    return (await session.scalars(stmt)).all()


async def transition(
    session: AsyncSession, campaign_id: uuid.UUID, target: str, *, actor: str, now: datetime
) -> CampaignRow:
    """start (draft -> running), pause, resume (paused -> running), cancel."""
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
    if target == "running" and row.started_at is None:
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


async def progress(session: AsyncSession, campaign_id: uuid.UUID) -> ProgressOut:
    row = await get_campaign(session, campaign_id)
    by_state: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for state, result, n in await session.execute(
        select(AttemptRow.state, AttemptRow.result, func.count())
        .where(AttemptRow.campaign_id == campaign_id)
        .group_by(AttemptRow.state, AttemptRow.result)
    ):
        by_state[state] += n
        if state == AttemptState.COMPLETED.value:
            outcomes[result] += n
    rules: Counter[str] = Counter(row.refused_by_rule or {})
    for refusal in await session.scalars(
        select(AttemptRow.refusal).where(
            AttemptRow.campaign_id == campaign_id,
            AttemptRow.state == AttemptState.REFUSED.value,
        )
    ):
        for rule in {r.get("rule", "?") for r in (refusal or {}).get("reasons", [])}:
            rules[rule] += 1
    s = AttemptState
    next_send_at = await session.scalar(
        select(func.min(AttemptRow.not_before)).where(
            AttemptRow.campaign_id == campaign_id,
            AttemptRow.state.in_([s.PLANNED.value, s.QUEUED.value]),
        )
    )
    undialled = await session.scalar(
        select(func.count()).where(
            AttemptRow.campaign_id == campaign_id,
            AttemptRow.state == s.NOT_SENT.value,
            AttemptRow.error_code == NO_TELEPHONY,
        )
    )
    warnings = (
        [
            f"{undialled} attempts were not sent: the worker that took them has no "
            "telephony configured and dials nobody (set DIALER_TWILIO_ACCOUNT_SID and "
            "DIALER_TWILIO_AUTH_TOKEN, or DIALER_TELEPHONY=simulator)"
        ]
        if undialled
        else []
    )
    live = sum(by_state[x.value] for x in pacing.LIVE)
    dispatched = live + sum(by_state[x.value] for x in (s.COMPLETED, s.FAILED, s.NOT_SENT))
    return ProgressOut(
        campaign_id=row.id,
        status=row.status,
        plan_done=row.plan_done,
        cases_seen=row.cases_seen,
        planned=row.planned,
        waiting=by_state[s.PLANNED.value],
        queued=by_state[s.QUEUED.value],
        dispatched=dispatched,
        in_progress=live,
        completed=by_state[s.COMPLETED.value],
        completed_by_outcome=dict(outcomes),
        failed=by_state[s.FAILED.value],
        unknown=by_state[s.UNKNOWN.value],
        not_sent=by_state[s.NOT_SENT.value],
        cancelled=by_state[s.CANCELLED.value],
        refused_at_dispatch=by_state[s.REFUSED.value],
        refused_by_rule=dict(rules),
        next_send_at=next_send_at,
        warnings=warnings,
    )
