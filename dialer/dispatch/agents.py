"""Calls for collectors: before a granted attempt of an agent-mode campaign is reserved,
the desk must have room for it (`Seats.admit`, in the reservation's transaction).

- progressive: an available agent is held (`reserved`) for this very call, by the
  compare-and-set of `db.repositories.agents.hold`; none free -> the job retries later
  and nothing is written (the attempt stays queued). Only agents who may take the
  campaign's calls count, here and for predictive (`agents.may_take`: those assigned to
  it, or every agent when none is).
- predictive: the campaign's calls ringing without a person are limited to what its
  `Pacer.calls_to_start` allows from the floor read now (available agents, busy agents'
  time in their state, ringing calls' time since reserved). Each worker process keeps one
  Pacer per campaign, fed from the campaign's ended calls in the database (`_learn`, at
  most every `LEARN_EVERY`, the last hour on first use): ring time to answer or end,
  live answers and abandoned ones, talk time. With fewer than 20 of each it starts one
  call per free agent.
- preview: dialled only once an agent started it at the desk (`services.preview.start`
  holds that agent for the attempt and stages its job again): a job with no agent held
  for it waits like a paused campaign's. The decide gate ran before, as for any call;
  a verdict other than a reservation frees the agent (`Reserver._write`).
- ivr: untouched here.

It runs after the pacing claim, which locks the campaign's pacing row: on PostgreSQL two
workers' admissions for one campaign are serialised, so their counts do not race.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from adapters.errors import RetryLater
from dialer.db.models import AgentRow, AttemptRow, CampaignRow
from dialer.db.repositories import agents as agent_rows
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.predictive import MACHINE_DETECTION, Desk, Pacer
from dialer.domain.agents import (
    BUSY,
    DEFAULT_WRAP_UP_LIMIT_S,
    DIALER,
    WRAP_UP_OVERDUE,
    AgentState,
    DialingMode,
)
from dialer.domain.attempts import AttemptState
from strategy.model import CONVERSATION_RESULTS

if TYPE_CHECKING:
    from dialer.dispatch.redecide import Redecision
    from dialer.dispatch.reserve import JobItem, Outcome

# A call started and not yet answered by a person (nor ended): what the pacer counts as
# ringing. Answered calls are `in_progress` and have (or lose) their agent.
RINGING = [
    s.value
    for s in (
        AttemptState.RESERVED,
        AttemptState.DIALING,
        AttemptState.SENT,
        AttemptState.RINGING,
    )
]
_BUSY = sorted(s.value for s in BUSY)

_MODES = select(CampaignRow.id, CampaignRow.mode).where(
    CampaignRow.id.in_(bindparam("cids", expanding=True))
)


LEARN_EVERY = timedelta(seconds=5)
RECONCILER = "reconciler"  # the audit's actor for agents the reconciler lets go
_ENDED = [AttemptState.COMPLETED.value, AttemptState.FAILED.value]
_LIVE_RESULTS = [str(r) for r in CONVERSATION_RESULTS]


@dataclass(slots=True)
class _Learning:
    """A campaign's pacer and how far through the campaign's ended calls it has read."""

    pacer: Pacer
    read_to: datetime
    checked: datetime | None = None


async def free_held_agent(
    conn: AsyncSession | AsyncConnection,
    attempt_id: uuid.UUID,
    now: datetime,
    *,
    actor: str = DIALER,
) -> int:
    """The attempt will not ring (not reserved after all, refused at the fence, failed,
    not sent, reclaimed): the agent held for it, if any, is available again (audited,
    by `actor`). How many were freed (0 or 1)."""
    return await agent_rows.release(conn, attempt_id, actor=actor, now=now)


async def end_call(
    conn: AsyncSession | AsyncConnection,
    attempt_id: uuid.UUID,
    now: datetime,
    *,
    actor: str = DIALER,
    wrap_up_limit: timedelta | None = None,
) -> AgentState | None:
    """The call is over, whoever learnt it (its final callback, the reconciler, the
    silent-call look-up): the agent held for it and never bridged is available again
    (`free_held_agent`); the agent it was bridged to owes its wrap-up within
    `wrap_up_limit` (else the campaign's limit, else the default). The agent's state
    now, or None when no agent holds the call."""
    holder = (
        await conn.execute(
            select(AgentRow.id, AgentRow.state, CampaignRow.wrap_up_limit_s)
            .outerjoin(CampaignRow, CampaignRow.id == AgentRow.campaign_id)
            .where(AgentRow.attempt_id == attempt_id)
        )
    ).first()
    if holder is None:
        return None
    state = AgentState(holder.state)
    if state is AgentState.RESERVED:
        if await free_held_agent(conn, attempt_id, now, actor=actor):
            return AgentState.AVAILABLE
    elif state is AgentState.ON_CALL:
        limit = wrap_up_limit or timedelta(
            seconds=holder.wrap_up_limit_s or DEFAULT_WRAP_UP_LIMIT_S
        )
        if await agent_rows.move(
            conn, holder.id, AgentState.WRAP_UP, actor=actor, now=now,
            expect=AgentState.ON_CALL, values={"wrap_up_due_at": now + limit},
        ):  # fmt: skip
            return AgentState.WRAP_UP
    return state


async def send_away_overdue(maker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Agents whose wrap-up limit passed with the record not filed: moved `away`, with
    the reason in the audit log, the wrap-up still owed (`domain.agents.owes_wrap_up`:
    filed before any next call). Each is a compare-and-set from `wrap_up`, so of several
    workers sweeping at once one moves (and audits) each agent. How many moved."""
    moved = 0
    async with maker() as session:
        conn = await session.connection()
        for agent_id in await agent_rows.overdue_wrap_ups(conn, now):
            moved += await agent_rows.move(
                conn, agent_id, AgentState.AWAY, actor=DIALER, now=now,
                expect=AgentState.WRAP_UP, reason=WRAP_UP_OVERDUE,
            )  # fmt: skip
        await session.commit()
    return moved


class Seats:
    """One worker's admissions of agent-mode calls (one Pacer per predictive campaign)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.learning: dict[uuid.UUID, _Learning] = {}

    async def _learn(self, conn: AsyncConnection, campaign: uuid.UUID, now: datetime) -> Pacer:
        """The campaign's pacer, fed the calls that ended since it last read."""
        known = self.learning.get(campaign)
        if known is None:
            pacer = Pacer()
            known = self.learning[campaign] = _Learning(
                pacer, now - timedelta(seconds=pacer.window)
            )
        if known.checked is not None and now - known.checked < LEARN_EVERY:
            return known.pacer
        known.checked = now
        ended = await conn.execute(
            select(
                AttemptRow.sent_at,
                AttemptRow.updated_at,
                AttemptRow.duration_seconds,
                AttemptRow.answered_by,
                AttemptRow.result,
                AttemptRow.abandoned_at,
            )
            .where(
                AttemptRow.campaign_id == campaign,
                AttemptRow.state.in_(_ENDED),
                AttemptRow.updated_at > known.read_to,
                AttemptRow.sent_at.is_not(None),
            )
            .order_by(AttemptRow.updated_at)
        )
        for row in ended:
            _feed(known.pacer, row)
            known.read_to = max(known.read_to, _aware(row.updated_at, now))
        return known.pacer

    async def admit(
        self,
        conn: AsyncConnection,
        items: Sequence[JobItem],
        go: list[tuple[int, Redecision]],
        results: list[Outcome | BaseException],
        now: datetime,
    ) -> list[tuple[int, Redecision]]:
        """The granted jobs that may be dialled now; the others get `RetryLater` in
        `results`. Each admitted reservation carries its mode's machine detection."""
        campaigns = sorted({r.campaign for _, r in go if r.campaign is not None})
        if not campaigns:
            return go
        modes = {
            row.id: DialingMode(row.mode) for row in await conn.execute(_MODES, {"cids": campaigns})
        }
        room: dict[uuid.UUID, int] = {}
        admitted: list[tuple[int, Redecision]] = []
        previews = [
            items[i].attempt_id
            for i, r in go
            if r.campaign is not None and modes.get(r.campaign) is DialingMode.PREVIEW
        ]
        started = await agent_rows.held_for(conn, previews, held=AgentState.RESERVED.value)
        for i, r in go:
            mode = modes.get(r.campaign) if r.campaign is not None else None
            if mode is None or mode is DialingMode.IVR:
                admitted.append((i, r))
                continue
            assert r.campaign is not None and r.reservation is not None
            if mode is DialingMode.PREVIEW:
                seat = items[i].attempt_id in started
                if not seat:
                    why = "preview: the agent starts the call at the desk"
                    results[i] = RetryLater(self.ctx.config.paused_retry, why)
                    continue
            elif mode is DialingMode.PROGRESSIVE:
                ok = await agent_rows.hold(
                    conn, campaign_id=r.campaign, attempt_id=items[i].attempt_id,
                    actor=DIALER, now=now,
                )  # fmt: skip
                seat = ok is not None
            else:
                if r.campaign not in room:
                    room[r.campaign] = await self._room(conn, r.campaign, now)
                seat = room[r.campaign] > 0
                room[r.campaign] -= seat
            if not seat:
                results[i] = RetryLater(self.ctx.config.busy_retry, f"no agent free ({mode})")
                continue
            r.reservation = replace(r.reservation, machine_detection=MACHINE_DETECTION[mode])
            admitted.append((i, r))
        return admitted

    async def _room(self, conn: AsyncConnection, campaign: uuid.UUID, now: datetime) -> int:
        """How many more calls the campaign's predictive pacer lets start now."""
        available, busy = await agent_rows.floor(
            conn, available=AgentState.AVAILABLE.value, busy=_BUSY, now=now, campaign_id=campaign
        )
        started = (
            await conn.execute(
                select(AttemptRow.reserved_at).where(
                    AttemptRow.campaign_id == campaign, AttemptRow.state.in_(RINGING)
                )
            )
        ).scalars()
        ringing = tuple(agent_rows.seconds_between(now, at) for at in started if at is not None)
        desk = Desk(available, tuple(busy), ringing)
        pacer = await self._learn(conn, campaign, now)
        return pacer.calls_to_start(DialingMode.PREDICTIVE, desk, now.timestamp())


def _feed(pacer: Pacer, row: Any) -> None:
    """One ended call: its ring time (to the answer when a person answered: the call's
    length less its talk time), the live answer and whether it was abandoned, and the
    talk time of a bridged one (the agent's handle time, wrap-up not counted)."""
    total = agent_rows.seconds_between(row.updated_at, row.sent_at)
    person = (
        row.abandoned_at is not None or row.answered_by == "human" or row.result in _LIVE_RESULTS
    )
    talk = float(row.duration_seconds or 0) if person else 0.0
    ring = max(0.0, total - talk)
    pacer.dial_ended(person=person, after=ring)
    if person:
        sent = _aware(row.sent_at, row.updated_at)
        pacer.answered(sent.timestamp() + ring, abandoned=row.abandoned_at is not None)
        if row.abandoned_at is None and talk > 0:
            pacer.handled(talk)


def _aware(at: datetime, like: datetime) -> datetime:
    """SQLite gives naive UTC back: as aware as `like`."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None and like.tzinfo is not None else at
