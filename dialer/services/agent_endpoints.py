"""Where an agent's bridged calls ring: the agent sets only its own browser identity
(`client:<name>`); a supervisor or admin sets a phone number or SIP URI for an agent.
One check for both (`domain.agents.endpoint_for`); every change is audited (entity
`agent`, action `agent.endpoint`, by whom and what it was before)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Principal, Role
from dialer.core.errors import FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import AgentRow
from dialer.db.repositories import agents as agent_repo
from dialer.db.repositories import keys as key_repo
from dialer.domain.agents import AgentState, EndpointError, endpoint_for
from dialer.services.changes import record_change


async def set_own(session: AsyncSession, who: Principal, endpoint: str, now: datetime) -> AgentRow:
    """The agent's own endpoint: only `client:<its name>` (422 naming `endpoint` else)."""
    return await _set(session, who.name, endpoint, who.actor, now, by_supervisor=False)


async def set_for(
    session: AsyncSession, name: str, endpoint: str, who: Principal, now: datetime
) -> AgentRow:
    """A supervisor's or admin's setting of agent `name`'s endpoint (any valid form; the
    agent must be an active agent key, 404 else)."""
    if name not in await key_repo.active_names(session, [name], Role.AGENT.value):
        raise NotFoundError(f"no active agent key named {name!r}")
    return await _set(session, name, endpoint, who.actor, now, by_supervisor=True)


async def _set(
    session: AsyncSession,
    name: str,
    endpoint: str,
    actor: str,
    now: datetime,
    *,
    by_supervisor: bool,
) -> AgentRow:
    try:
        parsed = endpoint_for(endpoint, name, by_supervisor=by_supervisor)
    except EndpointError as exc:
        raise ValidationFailedError("bad endpoint", [FieldError("endpoint", str(exc))]) from exc
    row = await agent_repo.ensure(session, name, AgentState.OFFLINE, now)
    before = row.endpoint
    row.endpoint = str(parsed)
    await record_change(
        session,
        actor=actor,
        now=now,
        action="agent.endpoint",
        entity="agent",
        entity_id=row.id,
        before={"endpoint": before},
        after={"state": row.state, "endpoint": row.endpoint, "attempt_id": row.attempt_id},
    )
    await session.commit()
    return row
