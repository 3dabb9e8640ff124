"""Collectors at the desk: their own state and wrap-up; supervisors see every agent live."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dialer.api.deps import AgentSelf, NowDep, PageLimit, SessionDep, SettingsDep, Supervisor
from dialer.api.pages import html_page
from dialer.schemas.agents import (
    AgentOut,
    CampaignAgentsIn,
    CampaignAgentsOut,
    DisconnectIn,
    EndpointIn,
    PreviewChoiceOut,
    PreviewSkipIn,
    PreviewStartIn,
    StateIn,
    VoiceTokenOut,
)
from dialer.schemas.common import Page
from dialer.schemas.outcomes import OutcomeIn, OutcomeOut
from dialer.services import agent_endpoints, agents, campaign_agents, desk, preview, voice_access

router = APIRouter(tags=["agents"])
page = APIRouter(tags=["agents"])


@router.get("/agents", response_model=Page[AgentOut])
async def list_agents(
    session: SessionDep,
    who: Supervisor,
    cursor: str | None = None,
    limit: PageLimit = 100,
) -> object:
    """Every agent's state, by name; `next_cursor` pages on."""
    rows, next_cursor = await agents.list_agents(session, cursor=cursor, limit=limit)
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/agents/me", response_model=AgentOut)
async def my_state(session: SessionDep, who: AgentSelf, now: NowDep) -> object:
    row = await agents.me(session, who, now)
    await session.commit()
    return row


@router.put("/agents/me/state", response_model=AgentOut)
async def set_my_state(body: StateIn, session: SessionDep, who: AgentSelf, now: NowDep) -> object:
    return await agents.set_state(session, who, body.state, now)


@router.put("/agents/me/endpoint", response_model=AgentOut)
async def set_my_endpoint(
    body: EndpointIn, session: SessionDep, who: AgentSelf, now: NowDep
) -> object:
    """The agent's own browser identity, `client:<its name>` (422 for anything else: a
    phone number or SIP URI is set by a supervisor, PUT /v1/agents/{name}/endpoint)."""
    return await agent_endpoints.set_own(session, who, body.endpoint, now)


@router.post("/agents/me/wrap-up", response_model=OutcomeOut, status_code=201)
async def wrap_up(body: OutcomeIn, session: SessionDep, who: AgentSelf, now: NowDep) -> object:
    return await agents.wrap_up(session, who, body, now)


@router.post("/agents/me/disconnect", response_model=AgentOut)
async def disconnect(
    session: SessionDep, who: AgentSelf, now: NowDep, body: DisconnectIn | None = None
) -> object:
    """The desk went away: the agent is offline (a call held for them and not yet bridged
    is let go; a bridged one keeps its record). No body, or `{}`."""
    return await agents.disconnected(session, who, now)


@router.get("/agents/me/call")
async def my_call(session: SessionDep, who: AgentSelf, now: NowDep) -> dict[str, Any]:
    """The call held or in hand, shown as its granted disclosure allows (see services.desk)."""
    shown = await desk.current_call(session, who, now)
    await session.commit()
    return shown


@router.get("/agents/me/preview")
async def my_preview(session: SessionDep, who: AgentSelf, now: NowDep) -> dict[str, Any]:
    """The agent's next preview case (None: none waiting for them): whom the call is for,
    the decision now (what may be said to whom, the allowed actions and their windows,
    refusals and when they lift), the last briefing and the latest timeline entries."""
    shown = await preview.next_case(session, who, now)
    await session.commit()
    return shown


@router.post("/agents/me/preview/start", response_model=PreviewChoiceOut)
async def start_preview(
    body: PreviewStartIn, session: SessionDep, who: AgentSelf, now: NowDep
) -> object:
    """Start the offered call: the agent is held for it and a worker decides it again and
    dials it, bridging the verified debtor to this agent (409: not offered to them)."""
    return await preview.start(session, who, body.attempt_id, now)


@router.post("/agents/me/preview/skip", response_model=PreviewChoiceOut)
async def skip_preview(
    body: PreviewSkipIn, session: SessionDep, who: AgentSelf, now: NowDep
) -> object:
    """Pass on the offered call with a reason: the attempt is cancelled, the reason kept
    on the case's timeline and in the audit log."""
    return await preview.skip(session, who, body.attempt_id, body.reason, now)


@router.post("/agents/me/token", response_model=VoiceTokenOut)
async def voice_token(
    session: SessionDep, who: AgentSelf, now: NowDep, settings: SettingsDep
) -> object:
    """A Twilio Voice SDK access token for the agent's `client:` identity (503 naming the
    settings when no API key or TwiML app is configured)."""
    return await voice_access.issue(session, who, settings, now)


@router.put("/agents/{name}/endpoint", response_model=AgentOut)
async def set_agent_endpoint(
    name: str, body: EndpointIn, session: SessionDep, who: Supervisor, now: NowDep
) -> object:
    """Where agent `name`'s bridged calls ring: its `client:<name>`, a phone number in
    E.164 or a SIP URI; audited (404: no active agent key of that name)."""
    return await agent_endpoints.set_for(session, name, body.endpoint, who, now)


@router.get("/campaigns/{campaign_id}/agents", response_model=CampaignAgentsOut)
async def campaign_agents_list(
    campaign_id: uuid.UUID, session: SessionDep, who: Supervisor
) -> object:
    """The agents assigned to the campaign (none: every agent may take its calls)."""
    rows = await campaign_agents.assigned(session, campaign_id)
    return {"campaign_id": campaign_id, "agents": rows}


@router.put("/campaigns/{campaign_id}/agents", response_model=CampaignAgentsOut)
async def campaign_agents_set(
    campaign_id: uuid.UUID,
    body: CampaignAgentsIn,
    session: SessionDep,
    who: Supervisor,
    now: NowDep,
) -> object:
    """Assign exactly these agents (agent keys' names) to the campaign: the worker holds
    only them for its calls (an empty list: the whole floor again)."""
    rows = await campaign_agents.assign(session, campaign_id, body.agents, actor=who.actor, now=now)
    return {"campaign_id": campaign_id, "agents": rows}


@page.get("/desk", response_class=HTMLResponse)
@page.head("/desk", include_in_schema=False)
def desk_page() -> HTMLResponse:
    """The collector's page (static; it asks for the agent's key and reads the API with it)."""
    return html_page("desk.html")
