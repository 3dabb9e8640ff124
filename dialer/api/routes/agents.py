"""Collectors at the desk: their own state and wrap-up; supervisors see every agent live."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dialer.api.deps import Agent, NowDep, PageLimit, SessionDep, Supervisor
from dialer.schemas.agents import AgentOut, EndpointIn, StateIn
from dialer.schemas.common import Page
from dialer.schemas.outcomes import OutcomeIn, OutcomeOut
from dialer.services import agents, desk

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
async def my_state(session: SessionDep, who: Agent, now: NowDep) -> object:
    row = await agents.me(session, who, now)
    await session.commit()
    return row


@router.put("/agents/me/state", response_model=AgentOut)
async def set_my_state(body: StateIn, session: SessionDep, who: Agent, now: NowDep) -> object:
    return await agents.set_state(session, who, body.state, now)


@router.put("/agents/me/endpoint", response_model=AgentOut)
async def set_my_endpoint(body: EndpointIn, session: SessionDep, who: Agent, now: NowDep) -> object:
    return await agents.set_endpoint(session, who, body.endpoint, now)


@router.post("/agents/me/wrap-up", response_model=OutcomeOut, status_code=201)
async def wrap_up(body: OutcomeIn, session: SessionDep, who: Agent, now: NowDep) -> object:
    return await agents.wrap_up(session, who, body, now)


@router.post("/agents/me/disconnect", response_model=AgentOut)
async def disconnect(session: SessionDep, who: Agent, now: NowDep) -> object:
    return await agents.disconnected(session, who, now)


@router.get("/agents/me/call")
async def my_call(session: SessionDep, who: Agent, now: NowDep) -> dict[str, Any]:
    """The call held or in hand, shown as its granted disclosure allows (see services.desk)."""
    shown = await desk.current_call(session, who, now)
    await session.commit()
    return shown


@cache
def _html() -> str:
    return files("dialer").joinpath("static/desk.html").read_text(encoding="utf-8")


@page.get("/desk", response_class=HTMLResponse)
def desk_page() -> HTMLResponse:
    """The collector's page (static; it asks for the agent's key and reads the API with it)."""
    return HTMLResponse(_html())
