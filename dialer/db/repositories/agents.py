"""The agents table: created once per name (concurrent first uses agree), every move of
an agent made by compare-and-set and audited in the same transaction (`move`: a call held
for an available agent is one), and the agents assigned to each campaign.

A campaign's agents are those a supervisor assigned to it; a campaign with none assigned
takes any agent (`may_take`): a floor working one campaign needs no set-up."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, Uuid, delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.core.errors import ConflictError
from dialer.db.models import AgentCampaignRow, AgentRow, AttemptRow, CampaignRow
from dialer.db.repositories import audit
from dialer.db.repositories.paging import after_key
from dialer.domain.agents import AgentState, cleared_by, may_move, owes_wrap_up

_AGENTS: Table = AgentRow.__table__  # type: ignore[assignment]


def _works(agent: Any, campaign: Any) -> ColumnElement[bool]:
    """The one rule of assignment: an agent works a campaign they are assigned to, and
    every campaign that has no agent assigned."""
    assigned = select(AgentCampaignRow.agent_id).where(AgentCampaignRow.campaign_id == campaign)
    return or_(agent.in_(assigned), ~assigned.exists())


def may_take(campaign_id: uuid.UUID) -> ColumnElement[bool]:
    """The agents (rows of `agents`) who may take this campaign's calls."""
    return _works(AgentRow.id, campaign_id)


def works(agent_id: uuid.UUID) -> ColumnElement[bool]:
    """The campaigns (rows of `campaigns`) whose calls this agent may take."""
    return _works(literal(agent_id, Uuid), CampaignRow.id)


def offered(agent_id: uuid.UUID, now: datetime, *, preview: str, waiting: list[str]) -> Select[Any]:
    """The attempts the desk may offer this agent to start or skip, next first: waiting
    (`waiting` states) and due, in a running `preview` campaign the agent works, and held
    by no agent."""
    holder = select(AgentRow.id).where(AgentRow.attempt_id == AttemptRow.id)
    return (
        select(AttemptRow)
        .join(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
        .where(
            CampaignRow.mode == preview,
            CampaignRow.status == "running",
            AttemptRow.state.in_(waiting),
            AttemptRow.not_before <= now,
            works(agent_id),
            ~holder.exists(),
        )
        .order_by(AttemptRow.not_before, AttemptRow.id)
    )


async def holder_of(session: AsyncSession, attempt_id: uuid.UUID) -> AgentRow | None:
    """The agent whose call (held, in hand or in wrap-up) this attempt is, if any."""
    return await session.scalar(select(AgentRow).where(AgentRow.attempt_id == attempt_id))


async def hold_agent(
    conn: AsyncSession | AsyncConnection,
    agent_id: uuid.UUID,
    *,
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> bool:
    """This agent, if still `available`, is now `reserved` for this call (`move`'s
    compare-and-set: a second request for the same agent finds them held already)."""
    return await move(
        conn, agent_id, AgentState.RESERVED, actor=actor, now=now,
        expect=AgentState.AVAILABLE,
        values={"campaign_id": campaign_id, "attempt_id": attempt_id},
    )  # fmt: skip


async def move(
    conn: AsyncSession | AsyncConnection,
    agent_id: uuid.UUID,
    target: AgentState,
    *,
    actor: str,
    now: datetime,
    expect: AgentState | None = None,
    values: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> bool:
    """The one way an agent moves, whoever moves them (the API, the worker, the callbacks,
    the reconciler): by `domain.agents.may_move`, as a compare-and-set on the state and
    call it was seen in, recorded in the audit log (entity `agent`, action `agent.<state>`,
    the call before and after, and `reason` when given) in the caller's transaction.

    `expect`: move only from that state (else False, nothing written); `values` sets
    `attempt_id`, `campaign_id` or `wrap_up_due_at` with the move. False when the agent is
    gone, already in `target`, or moved meanwhile (another worker won); ConflictError when
    the move does not exist."""
    seen = (
        await conn.execute(
            select(
                AgentRow.state, AgentRow.attempt_id, AgentRow.endpoint, AgentRow.wrap_up_due_at
            ).where(AgentRow.id == agent_id)
        )
    ).first()
    if seen is None:
        return False
    current = AgentState(seen.state)
    if (expect is not None and current is not expect) or current is target:
        return False
    if not may_move(current, target):
        raise ConflictError(f"an agent {current} cannot become {target}")
    changes: dict[str, Any] = {
        "state": target.value,
        "state_since": now,
        **cleared_by(current, target, owes=owes_wrap_up(seen.wrap_up_due_at)),
        **(values or {}),
    }
    same_call = (
        AgentRow.attempt_id.is_(None)
        if seen.attempt_id is None
        else AgentRow.attempt_id == seen.attempt_id
    )
    taken: Any = await conn.execute(
        update(AgentRow)
        .where(AgentRow.id == agent_id, AgentRow.state == current.value, same_call)
        .values(**changes)
        .execution_options(synchronize_session="fetch" if isinstance(conn, AsyncSession) else False)
    )
    if taken.rowcount != 1:
        return False
    await audit.record_change(
        conn,
        actor=actor,
        now=now,
        action=f"agent.{target}",
        entity="agent",
        entity_id=agent_id,
        before={"state": current.value, "attempt_id": seen.attempt_id},
        after={
            "state": target.value,
            "endpoint": seen.endpoint,
            "attempt_id": changes.get("attempt_id", seen.attempt_id),
        },
        detail={"reason": reason} if reason else None,
    )
    return True


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
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> AgentRow | None:
    """The longest-waiting `available` agent who may take the campaign's calls, now
    `reserved` for this call, or None."""
    agent_id = await hold(
        session, campaign_id=campaign_id, attempt_id=attempt_id, actor=actor, now=now
    )
    if agent_id is None:
        return None
    return await session.get(AgentRow, agent_id, populate_existing=True)


async def hold(
    conn: AsyncSession | AsyncConnection,
    *,
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> uuid.UUID | None:
    """Hold the longest-waiting `available` agent who may take the campaign's calls for
    this call (`reserved`): the id of the agent held, or None when none is available.
    Each candidate is taken by `move`'s compare-and-set: of two workers after the same
    agent, only one still finds it available, so no agent is offered two calls at once."""
    candidates = (
        await conn.execute(
            select(AgentRow.id)
            .where(AgentRow.state == AgentState.AVAILABLE.value, may_take(campaign_id))
            .order_by(AgentRow.state_since, AgentRow.id)
            .limit(20)
        )
    ).scalars()
    for agent_id in list(candidates):
        if await hold_agent(
            conn, agent_id, campaign_id=campaign_id, attempt_id=attempt_id, actor=actor, now=now
        ):
            return agent_id
    return None


async def held_for(
    conn: AsyncSession | AsyncConnection, attempt_ids: Sequence[uuid.UUID], *, held: str
) -> set[uuid.UUID]:
    """Which of these attempts an agent is `held` for."""
    if not attempt_ids:
        return set()
    rows = await conn.execute(
        select(AgentRow.attempt_id).where(
            AgentRow.attempt_id.in_(list(attempt_ids)), AgentRow.state == held
        )
    )
    return {r[0] for r in rows if r[0] is not None}


async def page(
    session: AsyncSession, *, after: Sequence[Any] | None, limit: int
) -> Sequence[AgentRow]:
    """Agents by name."""
    return (
        await session.scalars(after_key(select(AgentRow), (AgentRow.name,), after, limit))
    ).all()


async def release(
    conn: AsyncSession | AsyncConnection, attempt_id: uuid.UUID, *, actor: str, now: datetime
) -> int:
    """The agent held (`reserved`) for an attempt that will not ring is `available`
    again; how many were (0 or 1)."""
    held = (
        await conn.execute(
            select(AgentRow.id).where(
                AgentRow.attempt_id == attempt_id,
                AgentRow.state == AgentState.RESERVED.value,
            )
        )
    ).scalars()
    freed = 0
    for agent_id in list(held):
        freed += await move(
            conn, agent_id, AgentState.AVAILABLE, actor=actor, now=now,
            expect=AgentState.RESERVED, values={"attempt_id": None},
        )  # fmt: skip
    return freed


async def overdue_wrap_ups(
    conn: AsyncSession | AsyncConnection, now: datetime, limit: int = 200
) -> list[uuid.UUID]:
    """Agents still in `wrap_up` whose wrap-up limit has passed, oldest due first."""
    return list(
        (
            await conn.execute(
                select(AgentRow.id)
                .where(
                    AgentRow.state == AgentState.WRAP_UP.value,
                    AgentRow.wrap_up_due_at <= now,
                )
                .order_by(AgentRow.wrap_up_due_at, AgentRow.id)
                .limit(limit)
            )
        ).scalars()
    )


async def floor(
    conn: AsyncSession | AsyncConnection,
    *,
    available: str,
    busy: list[str],
    now: datetime,
    campaign_id: uuid.UUID | None = None,
) -> tuple[int, list[float]]:
    """The agents available now, and per busy agent the seconds since their state began
    (what the predictive pacer weighs: a busy agent long into a call is soon free); with
    `campaign_id`, only the agents who may take that campaign's calls."""
    stmt = select(AgentRow.state, AgentRow.state_since).where(
        AgentRow.state.in_([available, *busy])
    )
    if campaign_id is not None:
        stmt = stmt.where(may_take(campaign_id))
    rows = (await conn.execute(stmt)).all()
    free = sum(1 for r in rows if r.state == available)
    elapsed = [seconds_between(now, r.state_since) for r in rows if r.state != available]
    return free, elapsed


async def assigned(session: AsyncSession, campaign_id: uuid.UUID) -> list[AgentRow]:
    """The agents assigned to a campaign, by name."""
    stmt = (
        select(AgentRow)
        .join(AgentCampaignRow, AgentCampaignRow.agent_id == AgentRow.id)
        .where(AgentCampaignRow.campaign_id == campaign_id)
        .order_by(AgentRow.name)
    )
    return list((await session.scalars(stmt)).all())


async def assign(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    agent_ids: Sequence[uuid.UUID],
    *,
    actor: str,
    now: datetime,
) -> None:
    """The campaign's agents become exactly `agent_ids`."""
    await session.execute(
        delete(AgentCampaignRow).where(AgentCampaignRow.campaign_id == campaign_id)
    )
    session.add_all(
        AgentCampaignRow(campaign_id=campaign_id, agent_id=a, assigned_at=now, assigned_by=actor)
        for a in dict.fromkeys(agent_ids)
    )
    await session.flush()


async def by_names(session: AsyncSession, names: Sequence[str]) -> list[AgentRow]:
    return list((await session.scalars(select(AgentRow).where(AgentRow.name.in_(names)))).all())


def seconds_between(now: datetime, since: datetime) -> float:
    if since.tzinfo is None and now.tzinfo is not None:  # SQLite gives naive UTC back
        now = now.replace(tzinfo=None)
    return max(0.0, (now - since).total_seconds())
