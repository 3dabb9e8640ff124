"""The agents table: created once per name (concurrent first uses agree), and a call held
for an available agent by compare-and-set."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AgentRow
from dialer.db.repositories.paging import after_key

_AGENTS: Table = AgentRow.__table__  # type: ignore[assignment]


async def ensure(session: AsyncSession, name: str, state: str, now: datetime) -> AgentRow:
    """The row of `name`, inserted in `state` if missing (two first requests at once agree)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(_AGENTS)
        .values(id=uuid.uuid4(), name=name, state=state, state_since=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = await session.scalar(select(AgentRow).where(AgentRow.name == name))
    assert row is not None
    return row


async def take_available(
    session: AsyncSession,
    *,
    held: str,
    available: str,
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    now: datetime,
) -> AgentRow | None:
    """Move the longest-waiting `available` agent to `held` for this call, or None.

    Each candidate is taken by `UPDATE ... WHERE state = available`: of two workers after
    the same agent, only one UPDATE still finds it available."""
    candidates = await session.scalars(
        select(AgentRow.id)
        .where(AgentRow.state == available)
        .order_by(AgentRow.state_since, AgentRow.id)
        .limit(20)
    )
    for agent_id in list(candidates):
        taken = await session.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.state == available)
            .values(state=held, state_since=now, campaign_id=campaign_id, attempt_id=attempt_id)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return await session.get(AgentRow, agent_id, populate_existing=True)
    return None


async def page(
    session: AsyncSession, *, after: Sequence[Any] | None, limit: int
) -> Sequence[AgentRow]:
    """Agents by name."""
    return (
        await session.scalars(after_key(select(AgentRow), (AgentRow.name,), after, limit))
    ).all()
