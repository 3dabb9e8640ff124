"""Which collectors take a campaign's calls: a supervisor assigns agents (by their key's
name) to a campaign; the worker then holds only those agents for its calls, the
predictive pacer counts only them, and the desk offers its preview cases only to them.
A campaign with no agent assigned is worked by the whole floor (`agents.may_take`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, FieldError
from dialer.db.models import AgentRow
from dialer.db.repositories import agents as agent_repo
from dialer.domain.agents import AgentState, DialingMode
from dialer.schemas.campaigns import CampaignStatus
from dialer.services.campaigns import get_campaign
from dialer.services.changes import record_change
from dialer.services.keys import refuse_unknown_agents

ENDED = frozenset({CampaignStatus.DONE, CampaignStatus.CANCELLED})


async def assigned(session: AsyncSession, campaign_id: uuid.UUID) -> list[AgentRow]:
    """The campaign's assigned agents by name (empty: the whole floor works it)."""
    await get_campaign(session, campaign_id)
    return await agent_repo.assigned(session, campaign_id)


async def assign(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    names: Sequence[str],
    *,
    actor: str,
    now: datetime,
) -> list[AgentRow]:
    """The campaign's agents become exactly `names` (each the name of an active agent
    key; an agent who never opened the desk is created offline). Audited; committed.
    Refused (409 naming the field) for a campaign that has ended (`status` done or
    cancelled: nobody takes its calls again) or that no agent works (`mode` ivr)."""
    campaign = await get_campaign(session, campaign_id)
    if campaign.status in ENDED:
        raise ConflictError(
            f"campaign {campaign_id} is {campaign.status}: it places no more calls",
            [
                FieldError(
                    "status", f"agents are assigned to a live campaign, not a {campaign.status} one"
                )
            ],
        )
    if campaign.mode == DialingMode.IVR:
        raise ConflictError(
            f"campaign {campaign_id} is an ivr campaign: its calls go to the automated flow",
            [
                FieldError(
                    "mode", "agents take calls only in preview, progressive or predictive mode"
                )
            ],
        )
    wanted = list(dict.fromkeys(n.strip() for n in names))
    await refuse_unknown_agents(session, wanted, "agents")
    before = [a.name for a in await agent_repo.assigned(session, campaign_id)]
    rows = [await agent_repo.ensure(session, n, AgentState.OFFLINE.value, now) for n in wanted]
    await agent_repo.assign(session, campaign_id, [r.id for r in rows], actor=actor, now=now)
    await record_change(
        session,
        actor=actor,
        now=now,
        action="campaign.agents",
        entity="campaign",
        entity_id=campaign_id,
        before={"agents": before},
        after={"agents": wanted},
    )
    await session.commit()
    return await agent_repo.assigned(session, campaign_id)
