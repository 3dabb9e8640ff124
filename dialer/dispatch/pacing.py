"""A campaign's rate and in-progress limit, shared by every worker process.

Rate: the `pacing` row holds the campaign's next free slot. Taking a slot is one atomic,
autocommitted `UPDATE ... SET next_slot_at = greatest(next_slot_at, now + lead) +
interval ... RETURNING` (the row is locked for that statement only, not for a worker's
whole reservation; `lead` is how long the worker expects to need before it can dial). A
slot further away than `max_wait` is not taken: the job is retried later instead, so no
worker holds a message for long. Slots are `1 / cps` apart, widened by `SLOT_MARGIN`;
the worker dials only within `LATE_LIMIT` of its slot (else it takes a fresh one), so
late dials never let a one-second window exceed the configured rate. The fence (a database
round trip) runs ahead of the slot by about twice its recent time (`Leads`), so that it does
not make the dial late. One exception is left: after three late slots in a row, a slot
that was free when taken (`pushed` false: the campaign below its rate) is dialled however
late.

The worker reserves in batches (`claim`): inside the reserving transaction, after the
engine has allowed them, it locks the pacing row (`FOR UPDATE`), counts the campaign's
live attempts against its in-progress limit, and takes as many consecutive slots as the
batch may reserve in one `UPDATE`; the lock is held until that transaction commits. Only
attempts that will be reserved take slots (a refusal wastes none). `take_slot` (one
autocommitted statement) is for a dial that came too late for its slot.

In progress: the campaign's attempts in a live state, counted under the pacing row's lock
(`FOR UPDATE`) in the reserving transaction, so two workers cannot both take the last
place. SQLite is the single-process default: an asyncio lock stands in for row locks.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialer.db.models import AttemptRow, PacingRow
from dialer.domain.attempts import AttemptState

SLOT_MARGIN = 0.03  # slots 3% wider than 1/cps
# A dial may start at most this long after its slot, else it takes a fresh slot. With
# slots (1 + m)/cps apart, the dials of any one-second window [t, t + 1) come from slots
# in [t - LATE_LIMIT, t + 1), i.e. at most ceil((1 + LATE_LIMIT) * cps / (1 + m)) of
# them: never more than cps while LATE_LIMIT <= m seconds. 5 ms of it are kept for the
# time between the check and the request leaving, and clock jitter. (A dial later than
# this wastes its slot: on a loaded machine the event loop often lags 15 ms, rarely 25.)
JITTER = timedelta(milliseconds=5)
LATE_LIMIT = timedelta(seconds=SLOT_MARGIN) - JITTER
LIVE = frozenset(
    {
        AttemptState.RESERVED,
        AttemptState.DIALING,
        AttemptState.SENT,
        AttemptState.RINGING,
        AttemptState.IN_PROGRESS,
        AttemptState.UNKNOWN,
    }
)
_LIVE = [s.value for s in LIVE]


# The fence (a database round trip) goes ahead of the slot by about twice its recent
# time, so that the dial itself starts on its slot; at most this far ahead (well inside
# the fence's send window).
FENCE_AHEAD_MAX = timedelta(milliseconds=250)
_MAX_LEAD = timedelta(seconds=1)


def slot_interval(cps: float) -> timedelta:
    return timedelta(seconds=(1.0 + SLOT_MARGIN) / cps)


@dataclass(slots=True)
class Leads:
    """How long one worker lately needed between taking a slot and dialing on it: the
    rest of its reservation, and the fence. Moving averages (weight 1/5), capped."""

    reserve: timedelta = timedelta(0)
    fence: timedelta = timedelta(0)

    def reserved(self, took: timedelta) -> None:
        self.reserve = min((self.reserve * 4 + took) / 5, _MAX_LEAD)

    def fenced(self, took: timedelta) -> None:
        self.fence = min((self.fence * 4 + took) / 5, _MAX_LEAD)

    @property
    def fence_ahead(self) -> timedelta:
        """How long before its slot a dial's fence starts."""
        return min(self.fence * 2 + JITTER, FENCE_AHEAD_MAX) if self.fence else timedelta(0)

    @property
    def total(self) -> timedelta:
        """How far ahead of now a slot is asked for: no sooner than it can be dialled."""
        return self.reserve + self.fence_ahead


@dataclass(frozen=True, slots=True)
class Slot:
    at: datetime | None  # the instant this dispatch may dial; None: none free soon enough
    next_free: datetime  # when the next slot would start
    now: datetime  # the instant the slot was asked for
    # The slot starts later than asked (by more than LATE_LIMIT): the campaign is at its
    # rate, so a late dial on this slot could crowd a one-second window (see LATE_LIMIT).
    # A slot that starts (about) when asked was free: the campaign was below its rate.
    pushed: bool = False


async def ensure_row(session: AsyncSession, campaign_id: uuid.UUID, now: datetime) -> None:
    if await session.get(PacingRow, campaign_id) is None:
        session.add(PacingRow(campaign_id=campaign_id, next_slot_at=now))
        await session.flush()


async def take_slot(
    maker: async_sessionmaker[AsyncSession],
    campaign_id: uuid.UUID,
    cps: float,
    clock: Callable[[], datetime],
    max_wait: timedelta,
    lead: timedelta = timedelta(0),
) -> Slot:
    """The next free slot not before `now + lead`, if it starts within `max_wait`. `now`
    is read once the connection is ours: a worker that waited for a pooled connection
    must not compare a stale instant against slots other workers took meanwhile. `lead`
    is the time the caller expects to need before it can dial."""
    interval = slot_interval(cps)
    bind = maker.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql":
        # One autocommitted statement: the row is locked for that statement only.
        async with _autocommit(bind).connect() as conn:
            now = clock()
            latest = now + max_wait
            params = {"now": now + lead, "iv": interval, "c": campaign_id, "latest": latest}
            row = (await conn.execute(_TAKE, params)).one()
        if row[0] is not None:
            end: datetime = row[0]
            return Slot(end - interval, end, now, end - interval > now + lead + LATE_LIMIT)
        return Slot(None, row[1] or now, now)
    async with maker() as session:
        await session.connection()
        now = clock()
        latest = now + max_wait
        # SQLite: one process, serialised by the caller's lock; read, then write.
        current = await session.scalar(
            select(PacingRow.next_slot_at).where(PacingRow.campaign_id == campaign_id)
        )
        start = max(current or now, now + lead)
        if start > latest:
            return Slot(None, start, now)
        if current is None:
            session.add(PacingRow(campaign_id=campaign_id, next_slot_at=start + interval))
        else:
            await session.execute(
                update(PacingRow)
                .where(PacingRow.campaign_id == campaign_id)
                .values(next_slot_at=start + interval)
            )
        await session.commit()
        return Slot(start, start + interval, now, start > now + lead + LATE_LIMIT)


_TAKE = text(
    "WITH taken AS (UPDATE pacing SET next_slot_at = greatest(next_slot_at, :now) + :iv"
    " WHERE campaign_id = :c AND greatest(next_slot_at, :now) <= :latest"
    " RETURNING next_slot_at)"
    " SELECT (SELECT next_slot_at FROM taken),"
    " (SELECT next_slot_at FROM pacing WHERE campaign_id = :c)"
)


_NEXT_FOR_UPDATE = (
    select(PacingRow.next_slot_at).where(PacingRow.campaign_id == bindparam("c")).with_for_update()
)
_SET_NEXT = (
    update(PacingRow)
    .where(PacingRow.campaign_id == bindparam("c"))
    .values(next_slot_at=bindparam("n"))
)


@functools.cache
def _autocommit(bind: AsyncEngine) -> AsyncEngine:
    return bind.execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True, slots=True)
class Claim:
    """What one batch of a campaign may reserve: `slots` (one per attempt that may go,
    in order; empty entries when the campaign has no rate to keep), `busy` attempts over
    the in-progress limit, `paced` attempts with no slot within `max_wait`."""

    slots: list[Slot]
    busy: int
    paced: int
    next_free: datetime


async def claim(
    session: AsyncSession | AsyncConnection,
    campaign_id: uuid.UUID,
    cps: float,
    wanted: int,
    max_in_progress: int | None,
    now: datetime,
    max_wait: timedelta,
    lead: timedelta = timedelta(0),
) -> Claim:
    """In the caller's transaction: lock the campaign's pacing row, keep `wanted` within
    the in-progress limit, and take that many consecutive slots not before `now + lead`
    that start within `max_wait` (one UPDATE). The lock holds until the caller commits."""
    interval = slot_interval(cps)
    current = await session.scalar(_NEXT_FOR_UPDATE, {"c": campaign_id})
    busy = 0
    if max_in_progress is not None:
        free = max(max_in_progress - await in_progress(session, campaign_id), 0)
        busy = max(wanted - free, 0)
        wanted -= busy
    start = max(current or now, now + lead)
    latest = now + max_wait
    fit = int((latest - start) / interval) + 1 if start <= latest else 0
    n = min(wanted, fit)
    if n:
        end = start + interval * n
        if current is None:
            await session.execute(
                insert(PacingRow).values(campaign_id=campaign_id, next_slot_at=end)
            )
        else:
            await session.execute(_SET_NEXT, {"c": campaign_id, "n": end})
    pushed_after = now + lead + LATE_LIMIT
    slots = [
        Slot(at, at + interval, now, at > pushed_after)
        for at in (start + interval * i for i in range(n))
    ]
    return Claim(slots, busy, wanted - n, start + interval * n)


async def live_counts(
    conn: AsyncSession | AsyncConnection, campaign_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Live attempts of each campaign (one statement; campaigns with none are left out)."""
    rows = await conn.execute(_LIVE_COUNTS, {"cids": campaign_ids})
    return {r[0]: int(r[1]) for r in rows if r[0] is not None}


async def in_progress(session: AsyncSession | AsyncConnection, campaign_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(AttemptRow)
            .where(AttemptRow.campaign_id == campaign_id, AttemptRow.state.in_(_LIVE))
        )
        or 0
    )


_LIVE_COUNTS = (
    select(AttemptRow.campaign_id, func.count())
    .where(
        AttemptRow.campaign_id.in_(bindparam("cids", expanding=True)),
        AttemptRow.state.in_(_LIVE),
    )
    .group_by(AttemptRow.campaign_id)
)
