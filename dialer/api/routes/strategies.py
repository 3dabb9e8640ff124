"""Strategies for supervisors: every version kept, validated, diffed, simulated, audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from dialer.api.deps import NowDep, SessionDep, SettingsDep, StrategyReader, Supervisor
from dialer.api.filters import PortfolioFilter
from dialer.schemas.common import Page
from dialer.schemas.strategies import (
    DiffOut,
    SimulateIn,
    SimulationOut,
    StrategyCheckIn,
    StrategyFromPresetIn,
    StrategyIn,
    StrategyOut,
    StrategyStatus,
    ValidationOut,
)
from dialer.services import strategies

router = APIRouter(prefix="/strategies", tags=["strategies"])


@router.post("", status_code=201, response_model=StrategyOut)
async def create_strategy(
    body: StrategyIn, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    """Save a draft version; 422 listing every rule and guardrail clause it breaks."""
    return await strategies.create_draft(session, body, actor=who.actor, now=now)


@router.post("/from-preset", status_code=201, response_model=StrategyOut)
async def create_from_preset(
    body: StrategyFromPresetIn, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    return await strategies.create_from_preset(
        session, portfolio=body.portfolio, preset=body.preset, actor=who.actor, now=now
    )


@router.post("/validate", response_model=ValidationOut)
async def validate_document(body: StrategyCheckIn, session: SessionDep, who: Supervisor) -> object:
    """Check a document against a portfolio's profile without saving it."""
    profile = await strategies.validate_document(session, body.portfolio, body.document)
    return {"valid": True, "profile": profile, "violations": []}


@router.get("", response_model=Page[StrategyOut])
async def list_strategies(
    session: SessionDep,
    who: StrategyReader,
    portfolio: PortfolioFilter,
    status: StrategyStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="rows per page")] = 100,
) -> object:
    """Versions by portfolio, name and version; `next_cursor` pages on."""
    rows, next_cursor = await strategies.list_strategies(
        session, portfolio, status, cursor=cursor, limit=limit
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.get("/{strategy_id}", response_model=StrategyOut)
async def get_strategy(strategy_id: uuid.UUID, session: SessionDep, who: StrategyReader) -> object:
    return await strategies.get_strategy(session, strategy_id)


@router.post("/{strategy_id}/validate", response_model=ValidationOut)
async def validate_strategy(strategy_id: uuid.UUID, session: SessionDep, who: Supervisor) -> object:
    profile = await strategies.validate_stored(session, strategy_id)
    return {"valid": True, "profile": profile, "violations": []}


@router.get("/{strategy_id}/diff", response_model=DiffOut)
async def diff_strategy(
    strategy_id: uuid.UUID,
    against: Annotated[uuid.UUID, Query(description="the version to compare with")],
    session: SessionDep,
    who: StrategyReader,
) -> object:
    return await strategies.diff(session, strategy_id, against)


@router.post("/{strategy_id}/simulate", response_model=SimulationOut)
async def simulate_strategy(
    strategy_id: uuid.UUID,
    body: SimulateIn,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    who: Supervisor,
) -> object:
    """Decide every open case of the portfolio under this version and under the active
    one at the same instant; count tiers and list what changes per case."""
    limit = settings.simulate_change_limit if body.limit is None else body.limit
    return await strategies.simulate(session, strategy_id, at=body.at or now, limit=limit)


@router.post("/{strategy_id}/activate", response_model=StrategyOut)
async def activate_strategy(
    strategy_id: uuid.UUID, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    return await strategies.activate(session, strategy_id, actor=who.actor, now=now)


@router.post("/{strategy_id}/rollback", response_model=StrategyOut)
async def rollback_strategy(
    strategy_id: uuid.UUID, session: SessionDep, now: NowDep, who: Supervisor
) -> object:
    """Make an earlier (retired) version active again."""
    return await strategies.rollback(session, strategy_id, actor=who.actor, now=now)
