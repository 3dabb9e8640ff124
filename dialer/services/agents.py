"""Collectors at the desk: their state, the call the dialer holds for them, and wrap-up.

Every move is made by `db.repositories.agents.move` (the rule, a compare-and-set and the
audit entry, one path for the API, the worker, the callbacks and the reconciler). A call
is held for an agent with a compare-and-set (`UPDATE ... WHERE state = 'available'`), so
two workers can never give one agent two calls. Wrap-up is owed after every bridged
call: the agent becomes available again only by recording it (an outcome on the case,
whose notes are the briefing the next collector sees). When the campaign's wrap-up limit
passes first, the worker moves the agent `away` (`dispatch.agents.send_away_overdue`)
and the wrap-up stays owed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Principal
from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import AgentRow, AttemptRow, OutcomeRow
from dialer.db.repositories import agents as agent_repo
from dialer.dispatch.agents import end_call, free_held_agent
from dialer.domain.agents import (
    DIALER,
    SELF_SET,
    AgentState,
    DialingMode,
    may_move,
    owes_wrap_up,
)
from dialer.schemas.outcomes import OutcomeIn
from dialer.services import outcomes, paging


async def me(session: AsyncSession, who: Principal, now: datetime) -> AgentRow:
    """The agent row of this `agent` key, created `offline` on first use."""
    return await agent_repo.ensure(session, who.name, AgentState.OFFLINE, now)


async def list_agents(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[AgentRow], str | None]:
    """A page of agents by name and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[AgentRow]:
        return await agent_repo.page(session, after=after, limit=n)

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=(str,), key=lambda r: (r.name,)
    )


async def set_state(
    session: AsyncSession, who: Principal, target: AgentState, now: datetime
) -> AgentRow:
    """The agent's own move: available, away or offline (the dialer sets the others)."""
    if target not in SELF_SET:
        raise ValidationFailedError(
            f"an agent sets only {', '.join(sorted(SELF_SET))}",
            [FieldError("state", f"{target} is set by the dialer, not by the agent")],
        )
    row = await me(session, who, now)
    if row.state == target:
        return row
    current = AgentState(row.state)
    if target is AgentState.AVAILABLE:
        _no_wrap_up_owed(row)
    if target is AgentState.AVAILABLE and row.endpoint is None:
        raise ConflictError("set an endpoint first (PUT /v1/agents/me/endpoint)")
    if target is AgentState.OFFLINE:
        row = await _let_go_of_held_call(session, row, who.actor, now)
        current = AgentState(row.state)
    if not may_move(current, target):
        raise ConflictError(f"an agent {current} cannot become {target}")
    await _move(session, row, target, who.actor, now)
    await session.commit()
    return row


async def _let_go_of_held_call(
    session: AsyncSession, row: AgentRow, actor: str, now: datetime
) -> AgentRow:
    """Going offline (or the desk gone) while a call is held for the agent and not yet
    bridged: the agent is freed as for any held call that will not be bridged
    (`dispatch.agents.free_held_agent`, audited by `actor`), so no attempt stays bound
    to an offline agent; a preview call is then offered again, never dialled for nobody."""
    if row.state == AgentState.RESERVED and row.attempt_id is not None:
        await free_held_agent(session, row.attempt_id, now, actor=actor)
        await session.refresh(row)
    return row


def _no_wrap_up_owed(row: AgentRow) -> None:
    """Wrap-up is required before the next call: a 409 naming it while it is owed."""
    if owes_wrap_up(row.wrap_up_due_at):
        raise ConflictError(
            f"wrap-up of attempt {row.attempt_id} is owed (due {row.wrap_up_due_at:%H:%M:%S}"
            " UTC): POST /v1/agents/me/wrap-up first"
        )


async def hold_for(
    session: AsyncSession, campaign_id: uuid.UUID, attempt_id: uuid.UUID, now: datetime
) -> AgentRow | None:
    """Reserve the longest-waiting available agent for this call, or None if none is free.

    A compare-and-set per candidate: only the worker whose UPDATE still finds the agent
    `available` gets them, so no agent is offered two calls at once, across workers."""
    return await agent_repo.take_available(
        session, campaign_id=campaign_id, attempt_id=attempt_id, actor=DIALER, now=now
    )


async def start_call(
    session: AsyncSession,
    who: Principal,
    campaign_id: uuid.UUID,
    attempt_id: uuid.UUID,
    now: datetime,
) -> AgentRow:
    """The agent starts a call at the desk (preview): available -> reserved for it, by
    compare-and-set on their own row (a double click holds them once)."""
    row = await me(session, who, now)
    _no_wrap_up_owed(row)
    if row.state != AgentState.AVAILABLE:
        raise ConflictError(f"an agent {row.state} cannot start a call: be available first")
    if row.endpoint is None:
        raise ConflictError("set an endpoint first (PUT /v1/agents/me/endpoint)")
    held = await agent_repo.hold_agent(
        session, row.id, campaign_id=campaign_id, attempt_id=attempt_id, actor=who.actor,
        now=now,
    )  # fmt: skip
    if not held:
        raise ConflictError("the agent's state changed meanwhile: reload the desk")
    await session.refresh(row)
    return row


async def take_for_answer(
    session: AsyncSession, attempt: AttemptRow, mode: DialingMode, now: datetime
) -> AgentRow | None:
    """The collector a verified person is put through to, now `on_call`: the agent held
    for this call (progressive), else the longest-waiting available one (predictive holds
    none while calls ring). None: nobody is free, the call is abandoned."""
    row = await session.scalar(
        select(AgentRow).where(
            AgentRow.attempt_id == attempt.id, AgentRow.state == AgentState.RESERVED
        )
    )
    if row is None and mode is DialingMode.PREDICTIVE and attempt.campaign_id is not None:
        row = await hold_for(session, attempt.campaign_id, attempt.id, now)
    if row is None:
        return None
    await _move(session, row, AgentState.ON_CALL, DIALER, now)
    return row


async def bridged_to(session: AsyncSession, attempt_id: uuid.UUID) -> AgentRow | None:
    """The collector this call is already put through to (`on_call` with it), if any."""
    return await session.scalar(
        select(AgentRow).where(
            AgentRow.attempt_id == attempt_id, AgentRow.state == AgentState.ON_CALL
        )
    )


async def call_answered(session: AsyncSession, attempt_id: uuid.UUID, now: datetime) -> AgentRow:
    """The verified person is bridged to the agent held for this call."""
    row = await _holding(session, attempt_id)
    await _move(session, row, AgentState.ON_CALL, DIALER, now)
    return row


async def call_ended(
    session: AsyncSession, attempt_id: uuid.UUID, now: datetime, *, wrap_up_limit: timedelta
) -> AgentRow:
    """The call is over: wrap-up is owed (a held call never answered frees the agent)."""
    row = await _holding(session, attempt_id)
    await end_call(session, attempt_id, now, wrap_up_limit=wrap_up_limit)
    await session.refresh(row)
    return row


async def call_over(session: AsyncSession, attempt_id: uuid.UUID, now: datetime) -> None:
    """A call's final status arrived: the agent holding it, if any, is freed (never
    answered) or owes wrap-up within the campaign's limit (`dispatch.agents.end_call`,
    as when the reconciler learns the end). Committed."""
    await end_call(session, attempt_id, now)
    await session.commit()


async def disconnected(session: AsyncSession, who: Principal, now: datetime) -> AgentRow:
    """The desk went away: the agent is offline; the call's attempt keeps its own record
    (its state comes from the provider's callbacks, as for any call)."""
    row = await _let_go_of_held_call(session, await me(session, who, now), who.actor, now)
    await _move(session, row, AgentState.OFFLINE, who.actor, now)
    await session.commit()
    return row


async def wrap_up(
    session: AsyncSession, who: Principal, body: OutcomeIn, now: datetime
) -> OutcomeRow:
    """Record the call's outcome (and the summary for the next collector, in its notes),
    then the agent is available for the next call. Owed since the call ended, whether
    the agent is in `wrap_up` or was moved away when its limit passed (or went offline)."""
    row = await me(session, who, now)
    if not owes_wrap_up(row.wrap_up_due_at) or row.attempt_id is None:
        raise ConflictError(f"no wrap-up is owed: the agent is {row.state}")
    if body.attempt_id not in (None, row.attempt_id):
        raise ValidationFailedError(
            "wrap-up is for the call just ended",
            [FieldError("attempt_id", f"the call just ended is {row.attempt_id}")],
        )
    attempt = await session.get(AttemptRow, row.attempt_id)
    if attempt is None:
        raise NotFoundError(f"no attempt {row.attempt_id}")
    outcome = await outcomes.record_outcome(
        session,
        attempt.case_id,
        body.model_copy(update={"attempt_id": row.attempt_id}),
        actor=who.actor,
        now=now,
    )
    row = await me(session, who, now)
    await _move(
        session, row, AgentState.AVAILABLE, who.actor, now, attempt_id=None, wrap_up_due_at=None
    )
    await session.commit()
    return outcome


async def _holding(session: AsyncSession, attempt_id: uuid.UUID) -> AgentRow:
    row = await session.scalar(select(AgentRow).where(AgentRow.attempt_id == attempt_id))
    if row is None:
        raise NotFoundError(f"no agent holds attempt {attempt_id}")
    return row


async def _move(
    session: AsyncSession,
    row: AgentRow,
    target: AgentState,
    actor: str,
    now: datetime,
    **values: object,
) -> None:
    """`agent_repo.move` from the state `row` was read in; the row is refreshed. A move
    lost to a concurrent one (the dialer's, another request's) is a 409, never a
    silent no-op."""
    current = AgentState(row.state)
    if current is target:
        return
    if not await agent_repo.move(
        session, row.id, target, actor=actor, now=now, expect=current, values=values
    ):
        raise ConflictError(f"agent {row.name} changed state meanwhile ({current}); try again")
    await session.refresh(row)
