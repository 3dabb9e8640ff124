"""Campaigns (create, list, start, pause, resume, cancel, progress) and dead letters."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from adapters.errors import QueueError
from adapters.ports import JobQueue
from dialer.api.deps import NowDep, PageLimit, SessionDep, Supervisor
from dialer.api.filters import PortfolioFilter
from dialer.core.errors import DialerError
from dialer.schemas.campaigns import (
    CampaignIn,
    CampaignOut,
    CampaignStatus,
    DeadLetterOut,
    ProgressOut,
    ReplayIn,
    ReplayOut,
)
from dialer.schemas.common import Page
from dialer.services import campaigns, dead_letters

router = APIRouter(tags=["campaigns"])


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


class QueueUnavailableError(DialerError):
    status_code = 503
    code = "queue_unavailable"


@router.post("/campaigns", response_model=CampaignOut, status_code=201)
async def create_campaign(
    body: CampaignIn, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    """A draft campaign: a portfolio (and filter), channels, a local start window, pacing."""
    return await campaigns.create_campaign(session, body, actor=who.actor, now=now)


@router.get("/campaigns", response_model=Page[CampaignOut])
async def list_campaigns(
    session: SessionDep,
    who: Supervisor,
    portfolio: PortfolioFilter,
    status: CampaignStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Campaigns, newest first; `next_cursor` pages on."""
    rows, next_cursor = await campaigns.list_campaigns(
        session, portfolio=portfolio, status=status, cursor=cursor, limit=limit
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: uuid.UUID, session: SessionDep, who: Supervisor) -> object:
    return await campaigns.get_campaign(session, campaign_id)


@router.get("/campaigns/{campaign_id}/progress", response_model=ProgressOut)
async def campaign_progress(campaign_id: uuid.UUID, session: SessionDep, who: Supervisor) -> object:
    """Planned, queued, dispatched, in progress, completed by outcome, refused by rule."""
    return await campaigns.progress(session, campaign_id)


def _transition(target: str, doc: str):  # type: ignore[no-untyped-def]
    async def endpoint(
        campaign_id: uuid.UUID, session: SessionDep, now: NowDep, who: Supervisor
    ) -> object:
        return await campaigns.transition(session, campaign_id, target, actor=who.actor, now=now)

    endpoint.__doc__ = doc
    return endpoint


for _verb, _target, _doc in (
    ("start", "running", "Start: workers plan the campaign's cases and dispatch them."),
    ("pause", "paused", "Pause: queued jobs wait; nothing new is reserved."),
    ("resume", "running", "Resume a paused campaign."),
    ("cancel", "cancelled", "Cancel: attempts not yet reserved are cancelled."),
):
    router.add_api_route(
        f"/campaigns/{{campaign_id}}/{_verb}",
        _transition(_target, _doc),
        methods=["POST"],
        response_model=CampaignOut,
        name=f"{_verb}_campaign",
    )


@router.get("/dead-letters", response_model=Page[DeadLetterOut])
async def list_dead_letters(
    queue: QueueDep,
    who: Supervisor,
    cursor: str | None = None,
    limit: PageLimit = 100,
) -> object:
    """Jobs that kept failing, by message id (browsing leaves them in place);
    `next_cursor` pages on."""
    try:
        letters, next_cursor = await dead_letters.page(queue, cursor=cursor, limit=limit)
    except QueueError as exc:
        raise QueueUnavailableError(f"the queue is unreachable: {exc}") from exc
    items = [
        DeadLetterOut(
            message_id=d.message_id,
            attempt_id=d.job.attempt_id if d.job else None,
            case_id=d.job.case_id if d.job else None,
            campaign_id=d.job.campaign_id if d.job else None,
            reason=d.reason,
            died_at=d.died_at,
        )
        for d in letters
    ]
    return {"items": items, "next_cursor": next_cursor}


@router.post("/dead-letters/replay", response_model=ReplayOut)
async def replay_dead_letters(body: ReplayIn, queue: QueueDep, who: Supervisor) -> object:
    """Move dead letters back to the work queue (the worker still acts at most once)."""
    try:
        moved = await queue.replay_dead_letters(body.message_ids)
    except QueueError as exc:
        raise QueueUnavailableError(f"the queue is unreachable: {exc}") from exc
    return ReplayOut(replayed=moved)
