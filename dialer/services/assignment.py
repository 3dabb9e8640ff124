"""Assignment: the strategy maps tiers to teams; a case whose tier changes moves to that
tier's team (and loses its agent); escalations become tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError
from dialer.db.models import StrategyRow
from dialer.db.repositories import audit, cases, strategies
from dialer.facts.batch import load_facts
from dialer.facts.strategies import compiled_for
from dialer.services import tasks
from dialer.services.portfolios import get_portfolio
from strategy.compiled import CompiledStrategy
from strategy.engine import decide


async def refresh(
    session: AsyncSession, portfolio_name: str, *, at: datetime, actor: str
) -> dict[str, Any]:
    """Re-decide every open case at `at`: store its tier, reassign on a tier change, and
    create its escalation tasks once. Commits per batch."""
    portfolio = await get_portfolio(session, portfolio_name)
    if portfolio.active_strategy_id is None:
        raise ConflictError(f"portfolio {portfolio.name!r} has no active strategy")
    compiled: dict[Any, tuple[StrategyRow, CompiledStrategy]] = {}
    counts = {"cases": 0, "tier_changed": 0, "reassigned": 0, "tasks_created": 0}
    profile = portfolio.profile
    async for batch in cases.stream_open(session, portfolio.name):
        facts = await load_facts(session, [c.id for c in batch], at)
        for row in batch:
            version_id = row.strategy_version_id or portfolio.active_strategy_id
            if version_id not in compiled:
                version = await strategies.get(session, version_id)
                if version is None:
                    continue
                compiled[version_id] = (version, compiled_for(version, profile))
            version, cs = compiled[version_id]
            decision = decide(facts[row.id].case, facts[row.id].history, at, cs)
            counts["cases"] += 1
            counts["tasks_created"] += await tasks.record_requests(session, row.id, decision, at)
            if decision.tier == row.tier:
                continue
            counts["tier_changed"] += 1
            team = version.teams.get(decision.tier or "", row.team)
            before = {"tier": row.tier, "team": row.team, "agent": row.agent}
            row.tier = decision.tier
            if team != row.team:
                row.team, row.agent = team, None
                counts["reassigned"] += 1
            row.updated_at = at
            await audit.append(
                session,
                at=at,
                actor=actor,
                action="case.tier_change",
                entity="case",
                entity_id=str(row.id),
                detail={"before": before, "after": {"tier": row.tier, "team": row.team}},
            )
        await session.commit()
    return counts
