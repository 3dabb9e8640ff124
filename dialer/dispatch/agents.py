"""Calls for collectors: before a granted attempt of an agent-mode campaign is reserved,
the desk must have room for it (`Seats.admit`, in the reservation's transaction).

- progressive: an available agent is held (`reserved`) for this very call, by the
  compare-and-set of `db.repositories.agents.hold`; none free -> the job retries later
  and nothing is written (the attempt stays queued).
- predictive: the campaign's calls ringing without a person are limited to what its
  `Pacer.calls_to_start` allows from the floor read now (available agents, busy agents'
  time in their state, ringing calls' time since reserved). Each worker process keeps one
  Pacer per campaign; with nothing learned it starts one call per free agent, and grows
  the ratio only from outcomes fed to it (`pacer`).
- preview: never dialled by the worker (the agent starts the call at the desk): the job
  waits like a paused campaign's.
- ivr: untouched here.

It runs after the pacing claim, which locks the campaign's pacing row: on PostgreSQL two
workers' admissions for one campaign are serialised, so their counts do not race.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.errors import RetryLater
from dialer.db.models import AttemptRow, CampaignRow
from dialer.db.repositories import agents as agent_rows
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.predictive import MACHINE_DETECTION, Desk, Pacer
from dialer.domain.agents import BUSY, AgentState, DialingMode
from dialer.domain.attempts import AttemptState

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


class Seats:
    """One worker's admissions of agent-mode calls (one Pacer per predictive campaign)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.pacers: dict[uuid.UUID, Pacer] = {}

    def pacer(self, campaign: uuid.UUID) -> Pacer:
        """This process's pacer of a predictive campaign (outcomes are fed to it)."""
        return self.pacers.setdefault(campaign, Pacer())

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
        for i, r in go:
            mode = modes.get(r.campaign) if r.campaign is not None else None
            if mode is None or mode is DialingMode.IVR:
                admitted.append((i, r))
                continue
            if mode is DialingMode.PREVIEW:
                why = "preview: the agent starts the call at the desk"
                results[i] = RetryLater(self.ctx.config.paused_retry, why)
                continue
            assert r.campaign is not None and r.reservation is not None
            if mode is DialingMode.PROGRESSIVE:
                ok = await agent_rows.hold(
                    conn, held=AgentState.RESERVED.value, available=AgentState.AVAILABLE.value,
                    campaign_id=r.campaign, attempt_id=items[i].attempt_id, now=now,
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
            conn, available=AgentState.AVAILABLE.value, busy=_BUSY, now=now
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
        return self.pacer(campaign).calls_to_start(DialingMode.PREDICTIVE, desk, now.timestamp())
