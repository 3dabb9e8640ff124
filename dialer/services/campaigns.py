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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import AttemptRow, CampaignRow, Portfolio, StrategyRow
from dialer.db.repositories import audit
from dialer.db.repositories.paging import after_key
from dialer.dispatch import pacing
from dialer.dispatch.lifecycle import transition as transition  # the one lifecycle rule
from dialer.domain.agents import AGENT_MODES
from dialer.domain.attempts import NO_TELEPHONY, AttemptState
from dialer.domain.windows import LocalWindow
from dialer.schemas.campaigns import CampaignIn, ProgressOut
from dialer.services import paging
from strategy.guardrails import get_profile
from strategy.model import Channel


async def create_campaign(
    session: AsyncSession, body: CampaignIn, *, actor: str, now: datetime
) -> CampaignRow:
    portfolio = await session.get(Portfolio, body.portfolio)
    if portfolio is None:
        raise ValidationFailedError(
            f"no portfolio {body.portfolio!r}", [FieldError("portfolio", "unknown portfolio")]
        )
    _check_window(body.window, portfolio.profile)
    _check_mode(body)
    await _check_tiers(session, portfolio, body.filter.tiers)
    row = CampaignRow(
        id=uuid.uuid4(),
        name=body.name,
        portfolio=body.portfolio,
        filter=body.filter.model_dump(exclude_none=True),
        channels=[c.value for c in body.channels],
        window=body.window,
        pacing_cps=body.pacing_cps,
        max_in_progress=body.max_in_progress,
        mode=body.mode.value,
        wrap_up_limit_s=body.wrap_up_limit_s,
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
        detail={"name": row.name, "portfolio": row.portfolio, "mode": row.mode},
    )
    await session.commit()
    return row


def _check_mode(body: CampaignIn) -> None:
    """An agent mode bridges a collector into a call: voice only (an SMS has no one to bridge)."""
    others = [c.value for c in body.channels if c is not Channel.VOICE]
    if body.mode in AGENT_MODES and others:
        raise ValidationFailedError(
            f"mode {body.mode.value} connects a collector by voice: channels may only be voice",
            [FieldError("channels", f"{', '.join(others)} cannot be used in {body.mode.value}")],
        )


def _check_window(window: str, profile_name: str) -> None:
    """A start window that shares no minute with the profile's contact hours would plan
    nothing (every case refused by the window clause): refused here, naming the clause."""
    profile = get_profile(profile_name)
    ours, allowed = LocalWindow.parse(window), profile.window
    if ours.start < allowed.end and allowed.start < ours.end:
        return
    clause = profile.window_clause
    hours = f"{allowed.start:%H:%M}-{allowed.end:%H:%M}"
    raise ValidationFailedError(
        f"window {window} lies outside the contact hours {hours} of profile {profile_name}"
        f" ({clause.id}: {clause.text}; {clause.source})",
        [FieldError("window", f"outside {hours}, the hours {clause.id} allows")],
    )


async def _check_tiers(
    session: AsyncSession, portfolio: Portfolio, tiers: Sequence[str] | None
) -> None:
    """A tier filter names tiers of the portfolio's active strategy (an unknown one would
    silently match no case)."""
    if not tiers:
        return
    active = (
        await session.get(StrategyRow, portfolio.active_strategy_id)
        if portfolio.active_strategy_id
        else None
    )
    known = [t["id"] for t in active.document.get("tiers", [])] if active else []
    unknown = [t for t in tiers if t not in known]
    if unknown:
        why = f"known: {', '.join(known)}" if known else "the portfolio has no active strategy"
        raise ValidationFailedError(
            f"unknown tier{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} ({why})",
            [
                FieldError("filter.tiers", f"{t!r} is not a tier of the active strategy")
                for t in unknown
            ],
        )


async def get_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> CampaignRow:
    row = await session.get(CampaignRow, campaign_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    return row


async def list_campaigns(
    session: AsyncSession,
    *,
    portfolio: str | None,
    status: str | None,
    cursor: str | None = None,
    limit: int,
) -> tuple[list[CampaignRow], str | None]:
    """A page of campaigns, newest first (by created_at, then id), and the next cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[CampaignRow]:
        stmt = select(CampaignRow)
        if portfolio:
            stmt = stmt.where(CampaignRow.portfolio == portfolio)
        if status:
            stmt = stmt.where(CampaignRow.status == status)
        order = (CampaignRow.created_at, CampaignRow.id)
        return (await session.scalars(after_key(stmt, order, after, n, descending=True))).all()

    return await paging.page(
        fetch,
        cursor=cursor,
        limit=limit,
        parts=(paging.instant, uuid.UUID),
        key=lambda r: (r.created_at, r.id),
    )


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
