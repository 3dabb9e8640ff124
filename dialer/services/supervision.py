"""What a supervisor watches on the floor: every agent's state, and per running campaign
its live answers and abandoned calls (the figure the predictive pacer holds under the
profile's limit, 3% by default).

A live answer is an attempt a person answered: a conversation result, an answered-by of
`human`, or an abandoned call. An abandoned call is an attempt with `abandoned_at` set
(a person answered and no agent was free: `voice_flow` records it at the bridge).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AgentRow, AttemptRow, CampaignRow, Portfolio
from dialer.schemas.campaigns import CampaignStatus
from strategy.model import CONVERSATION_RESULTS


@dataclass(frozen=True)
class CampaignAbandonment:
    id: uuid.UUID
    name: str
    portfolio: str
    timezone: str
    live_answered: int
    abandoned: int

    @property
    def rate(self) -> float | None:
        return self.abandoned / self.live_answered if self.live_answered else None


@dataclass(frozen=True)
class Board:
    agents: list[tuple[AgentRow, str | None]]  # each agent, with its campaign's time zone
    campaigns: list[CampaignAbandonment]


async def board(session: AsyncSession) -> Board:
    """Every agent (by name) and every running campaign's abandonment figures."""
    live = or_(
        AttemptRow.result.in_([str(r) for r in CONVERSATION_RESULTS]),
        AttemptRow.answered_by == "human",
        AttemptRow.abandoned_at.is_not(None),
    )
    running = select(CampaignRow.id).where(CampaignRow.status == CampaignStatus.RUNNING)
    counts = (
        select(
            AttemptRow.campaign_id,
            func.count().label("live"),
            func.sum(case((AttemptRow.abandoned_at.is_not(None), 1), else_=0)).label("abandoned"),
        )
        .where(live, AttemptRow.campaign_id.in_(running))  # only running campaigns' rows
        .group_by(AttemptRow.campaign_id)
        .subquery()
    )
    rows = await session.execute(
        select(CampaignRow, Portfolio.timezone, counts.c.live, counts.c.abandoned)
        .join(Portfolio, Portfolio.name == CampaignRow.portfolio)
        .outerjoin(counts, counts.c.campaign_id == CampaignRow.id)
        .where(CampaignRow.status == CampaignStatus.RUNNING)
        .order_by(CampaignRow.created_at, CampaignRow.id)
    )
    campaigns = [
        CampaignAbandonment(c.id, c.name, c.portfolio, tz, int(live or 0), int(abandoned or 0))
        for c, tz, live, abandoned in rows.all()
    ]
    zones = await session.execute(
        select(AgentRow, Portfolio.timezone)
        .outerjoin(CampaignRow, CampaignRow.id == AgentRow.campaign_id)
        .outerjoin(Portfolio, Portfolio.name == CampaignRow.portfolio)
        .order_by(AgentRow.name)
    )
    return Board([(agent, tz) for agent, tz in zones.all()], campaigns)
