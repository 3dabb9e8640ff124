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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
    agent_id = await hold(
        session, held=held, available=available, campaign_id=campaign_id,
        attempt_id=attempt_id, now=now,
    )  # fmt: skip
    if agent_id is None:
        return None
    return await session.get(AgentRow, agent_id, populate_existing=True)


async def hold(
    conn: AsyncSession | AsyncConnection,
    *,
    held: str,
    available: str,
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    now: datetime,
) -> uuid.UUID | None:
    """`take_available` in Core statements (the dispatch worker's transaction): the id of
    the agent now `held` for this call, or None when no agent is available."""
    candidates = (
        await conn.execute(
            select(AgentRow.id)
            .where(AgentRow.state == available)
            .order_by(AgentRow.state_since, AgentRow.id)
            .limit(20)
        )
    ).scalars()
    for agent_id in list(candidates):
        taken: Any = await conn.execute(
            update(AgentRow)
            .where(AgentRow.id == agent_id, AgentRow.state == available)
            .values(state=held, state_since=now, campaign_id=campaign_id, attempt_id=attempt_id)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            return agent_id
    return None


async def page(
    session: AsyncSession, *, after: Sequence[Any] | None, limit: int
) -> Sequence[AgentRow]:
    """Agents by name."""
    return (
        await session.scalars(after_key(select(AgentRow), (AgentRow.name,), after, limit))
    ).all()


async def release(
    conn: AsyncSession | AsyncConnection,
    attempt_id: uuid.UUID,
    *,
    held: str,
    available: str,
    now: datetime,
) -> None:
    """The agent `held` for an attempt that will not ring is `available` again."""
    await conn.execute(
        update(AgentRow)
        .where(AgentRow.attempt_id == attempt_id, AgentRow.state == held)
        .values(state=available, state_since=now, attempt_id=None)
        .execution_options(synchronize_session=False)
    )


async def floor(
    conn: AsyncSession | AsyncConnection, *, available: str, busy: list[str], now: datetime
) -> tuple[int, list[float]]:
    """The agents available now, and per busy agent the seconds since their state began
    (what the predictive pacer weighs: a busy agent long into a call is soon free)."""
    rows = (
        await conn.execute(
            select(AgentRow.state, AgentRow.state_since).where(
                AgentRow.state.in_([available, *busy])
            )
        )
    ).all()
    free = sum(1 for r in rows if r.state == available)
    elapsed = [seconds_between(now, r.state_since) for r in rows if r.state != available]
    return free, elapsed


def seconds_between(now: datetime, since: datetime) -> float:
    if since.tzinfo is None and now.tzinfo is not None:  # SQLite gives naive UTC back
        now = now.replace(tzinfo=None)
    return max(0.0, (now - since).total_seconds())
