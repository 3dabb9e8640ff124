"""Reserving a batch of jobs: each job's attempt becomes reserved (with a lease and a
pacing slot), or is refused, deferred, cancelled, failed closed, or retried later.

1. A cheap look (no lock, one statement): an attempt no longer planned/queued was handled
   already (a redelivery): ack. A paused campaign's jobs retry later; a campaign at its
   in-progress limit, or with no pacing slot free soon, sends its jobs back to wait.
2. One transaction under the cases' locks (id order: batches never deadlock; one job per
   case a batch): decide each again (`redecide.Gate`), lock the attempts' rows (SKIP
   LOCKED: one another writer holds is tried again shortly), per campaign under its
   pacing row's lock keep within the in-progress limit and take the slots; write every
   outcome, the reservations in one statement; commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from adapters.errors import RetryLater
from adapters.ports import Delivery
from dialer.db.errors import database_unavailable
from dialer.db.models import AttemptRow
from dialer.dispatch import pacing, sql
from dialer.dispatch.agents import Seats, free_held_agent
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.redecide import WRITES_NOTHING, Gate, Redecision, Reservation, Verdict
from dialer.domain.agents import DialingMode
from dialer.domain.attempts import AttemptState
from dialer.facts.batch import load_facts, lock_cases

log = logging.getLogger(__name__)

HELD_PAUSE = 0.02  # seconds: a job whose attempt row another writer holds tries again


@dataclass(frozen=True, slots=True)
class JobItem:
    """A delivery with its ids parsed."""

    delivery: Delivery
    attempt_id: uuid.UUID
    case_id: uuid.UUID
    may_defer: bool


@dataclass(frozen=True, slots=True)
class Again:
    """Submit the job again (another job of its case was in the batch, or its row was
    held by another writer: wait `pause` seconds first)."""

    pause: float = 0.0


# A job's outcome: reserved; try again; nothing to send (acked); or an exception
# (RetryLater included) that the queue acts on.
Outcome = Reservation | Again | None


@dataclass(frozen=True, slots=True)
class _Looked:
    rows: dict[uuid.UUID, Any]
    busy: set[uuid.UUID]  # campaigns at their in-progress limit


class Reserver:
    """The batcher's function (`reserve_batch`): one batch of jobs -> their outcomes."""

    def __init__(self, ctx: WorkerContext, gate: Gate) -> None:
        self.ctx = ctx
        self.gate = gate
        self.seats = Seats(ctx)

    async def reserve_batch(self, items: Sequence[JobItem]) -> list[Outcome | BaseException]:
        """A batch's reservation; if it fails for any reason but the database being down,
        each job is tried alone, so one bad job does not sink the others."""
        try:
            return await self._try_batch(items)
        except Exception as exc:
            if len(items) == 1 or database_unavailable(exc):
                raise
            log.warning("a batch of %d jobs failed (%r): each is tried alone", len(items), exc)
        out: list[Outcome | BaseException] = []
        for item in items:
            try:
                out += await self._try_batch([item])
            except Exception as exc:
                out.append(exc)
        return out

    async def _try_batch(self, items: Sequence[JobItem]) -> list[Outcome | BaseException]:
        """Step 1, the look; then step 2 (`_decide_and_write`) for the jobs left."""
        results: list[Outcome | BaseException] = [None] * len(items)
        async with self.ctx.serial():
            looked = await self._look(items)
        now = self.ctx.clock()
        todo: list[int] = []
        cases: set[uuid.UUID] = set()
        horizon: dict[uuid.UUID, tuple[datetime, int]] = {}  # campaign -> (next free, taken)
        for i, item in enumerate(items):
            row = looked.rows.get(item.attempt_id)
            if row is None:
                log.warning("job %s names no attempt: nothing to do", item.attempt_id)
                continue
            if AttemptState(row.state) not in sql.DISPATCHABLE:
                continue  # handled already: a duplicate or a redelivery never dials again
            if self.ctx.metrics is not None:
                lag = (now - item.delivery.job.not_before).total_seconds()
                self.ctx.metrics.set_queue_lag(max(lag, 0.0))
            early = self._screen(row, looked.busy, now, horizon)
            if early is not None:
                results[i] = early
                continue
            if item.case_id in cases:
                results[i] = Again()  # one job per case in a batch: the next one decides
                continue
            cases.add(item.case_id)
            todo.append(i)
        if todo:
            async with self.ctx.serial():
                await self._decide_and_write(items, todo, results)
        return results

    def _screen(
        self,
        row: Any,
        busy: set[uuid.UUID],
        now: datetime,
        horizon: dict[uuid.UUID, tuple[datetime, int]],
    ) -> RetryLater | None:
        """A campaign job that must wait before any lock is taken: its campaign paused,
        at its in-progress limit (checked again under the campaign's lock), or without a
        slot free within `max_slot_wait` (counting the jobs of this batch ahead of it:
        it comes back about when one will be, spread out)."""
        config = self.ctx.config
        if row.campaign is None or row.status == "cancelled":
            return None
        if row.status in ("paused", "draft"):
            return RetryLater(config.paused_retry, f"campaign {row.status}")
        if row.campaign in busy:
            return RetryLater(config.busy_retry, "in-progress limit reached")
        interval = pacing.slot_interval(row.pacing_cps)
        start, taken = horizon.get(row.campaign, (max(row.next_slot_at or now, now), 0))
        horizon[row.campaign] = (start, taken + 1)
        at = start + interval * taken
        latest = now + config.max_slot_wait
        if at <= latest:
            return None
        return RetryLater(max(at - latest, timedelta(seconds=0.5)), "paced")

    async def _look(self, items: Sequence[JobItem]) -> _Looked:
        """The attempts' states, campaigns and next free slots, read without a transaction
        (one statement on PostgreSQL), and which campaigns are at their in-progress limit."""
        ids = sql.padded([item.attempt_id for item in items])
        if self.ctx.autocommit is not None:
            async with self.ctx.autocommit.connect() as conn:
                rows = (await conn.execute(sql.LOOK, {"ids": ids})).all()
                return _Looked({r.id: r for r in rows}, await _busy(conn, rows))
        async with self.ctx.maker() as session:
            rows = (await session.execute(sql.LOOK, {"ids": ids})).all()
            return _Looked({r.id: r for r in rows}, await _busy(session, rows))

    async def _decide_and_write(
        self, items: Sequence[JobItem], todo: list[int], results: list[Outcome | BaseException]
    ) -> None:
        """Step 2, one transaction: lock the cases, read their attempts and fresh facts,
        decide each again, write every outcome (`_write`), commit. Each job's outcome
        lands in `results`."""
        ctx = self.ctx
        case_ids = sorted({items[i].case_id for i in todo})
        async with ctx.maker() as session:
            conn = await session.connection()  # Core statements in the session's transaction
            locked = {r[0]: r for r in await lock_cases(session, sql.padded(case_ids))}
            now = ctx.clock()
            wanted = sql.padded([items[i].attempt_id for i in todo])
            attempts = {r.id: r for r in await conn.execute(sql.ATTEMPTS, {"ids": wanted})}
            live = [
                items[i].case_id
                for i in todo
                if items[i].attempt_id in attempts and items[i].case_id in locked
            ]
            facts = (
                await load_facts(
                    session, sql.padded(live), now, case_rows=[locked[c] for c in live]
                )
                if live
                else {}
            )
            decided: list[tuple[int, Redecision]] = []
            for n, i in enumerate(todo):
                if n and n % 16 == 0:
                    await asyncio.sleep(0)  # let this process's dials keep their slots
                item = items[i]
                attempt = attempts.get(item.attempt_id)
                if attempt is None:
                    continue  # gone since the look
                try:
                    redecision = await self.gate.redecide(
                        session, attempt, facts.get(item.case_id), locked.get(item.case_id),
                        now, may_defer=item.may_defer,
                    )  # fmt: skip
                except Exception as exc:  # this job's own failure; the others go on
                    log.exception("job %s: could not decide", item.attempt_id)
                    results[i] = exc
                    continue
                redecision.state = attempt.state
                redecision.preview = attempt.mode == DialingMode.PREVIEW.value
                decided.append((i, redecision))
            claimed = await self._write(conn, items, decided, results, now)
            await session.commit()
        if claimed is not None:
            ctx.took_slots(claimed)
        for i, redecision in decided:
            self._report(items[i], redecision, results[i])

    async def _write(
        self,
        conn: AsyncConnection,
        items: Sequence[JobItem],
        decided: list[tuple[int, Redecision]],
        results: list[Outcome | BaseException],
        now: datetime,
    ) -> datetime | None:
        """Write the batch's outcomes in the open transaction (the caller commits); when
        pacing slots were claimed, if any were.

        First the attempts' rows are locked, SKIP LOCKED: one that another multi-row
        writer holds (the relay marking a batch queued, a cancellation) is tried again
        shortly, never waited for, so batches cannot deadlock with such writers."""
        if self.ctx.postgres:
            decided = await self._skip_held(conn, items, decided, results)
        granted: list[tuple[int, Redecision]] = []
        for i, redecision in decided:
            if redecision.verdict is Verdict.RESERVE:
                granted.append((i, redecision))
            else:
                await self._write_other(conn, items[i].attempt_id, redecision, i, results, now)
                if redecision.preview and redecision.verdict not in WRITES_NOTHING:
                    # refused, deferred, cancelled or failed at the gate: no call for the
                    # agent who started it at the desk
                    await free_held_agent(conn, items[i].attempt_id, now)
        go, claimed = await self._take_slots(conn, granted, results)
        go = await self.seats.admit(conn, items, go, results, now)  # agent-mode campaigns
        if go:
            taken = await _write_reservations(
                self.ctx, conn, [(items[i].attempt_id, r) for i, r in go], now
            )
            for i, redecision in go:
                if items[i].attempt_id in taken:
                    results[i] = redecision.reservation
                else:  # moved meanwhile: an agent held for it is free again
                    await free_held_agent(conn, items[i].attempt_id, now)
        return claimed

    async def _skip_held(
        self,
        conn: AsyncConnection,
        items: Sequence[JobItem],
        decided: list[tuple[int, Redecision]],
        results: list[Outcome | BaseException],
    ) -> list[tuple[int, Redecision]]:
        """The decisions whose rows this transaction could lock; the others are decided
        again in a later batch."""
        writes = [items[i].attempt_id for i, r in decided if r.verdict not in WRITES_NOTHING]
        held: set[uuid.UUID] = set()
        if writes:
            held = {
                r[0] for r in await conn.execute(sql.LOCK_ATTEMPTS, {"ids": sql.padded(writes)})
            }
        kept: list[tuple[int, Redecision]] = []
        for i, r in decided:
            if r.verdict in WRITES_NOTHING or items[i].attempt_id in held:
                kept.append((i, r))
            else:
                results[i] = Again(pause=HELD_PAUSE)
        return kept

    async def _write_other(
        self,
        conn: AsyncConnection,
        aid: uuid.UUID,
        r: Redecision,
        i: int,
        results: list[Outcome | BaseException],
        now: datetime,
    ) -> None:
        """Every verdict but a reservation: cancel, wait, refuse, defer, fail closed."""
        state = r.state
        if r.verdict is Verdict.CANCEL:
            await sql.move(conn, aid, state, AttemptState.CANCELLED, {}, self.ctx.clock())
        elif r.verdict is Verdict.WAIT:
            results[i] = r.retry
        elif r.verdict is Verdict.REFUSE:
            await sql.move(conn, aid, state, AttemptState.REFUSED, r.values, self.ctx.clock())
        elif r.verdict is Verdict.DEFER:
            assert r.until is not None
            moved = await conn.execute(
                update(AttemptRow)
                .where(AttemptRow.id == aid, AttemptRow.state.in_(sql.DISPATCHABLE_VALUES))
                .values(at=r.until, not_before=r.until, updated_at=now)
            )
            if moved.rowcount:
                results[i] = RetryLater(r.until - now, f"deferred by {r.why}")
        elif r.verdict is Verdict.FAIL:
            values = {**r.values, "at": now, "reserved_at": now}
            if await sql.move(conn, aid, state, AttemptState.RESERVED, values, self.ctx.clock()):
                failed = {"error_code": r.why, "error_message": r.error}
                reserved = AttemptState.RESERVED.value
                await sql.move(conn, aid, reserved, AttemptState.FAILED, failed, self.ctx.clock())

    async def _take_slots(
        self,
        conn: AsyncConnection,
        granted: list[tuple[int, Redecision]],
        results: list[Outcome | BaseException],
    ) -> tuple[list[tuple[int, Redecision]], datetime | None]:
        """Per campaign (pacing rows locked in id order), the granted jobs take the places
        left under its in-progress limit and their pacing slots (`pacing.claim`); the rest
        retry later. Slots start no sooner than this batch can dial: the context's `lead`
        is how long the rest of the transaction took lately, measured from here."""
        config = self.ctx.config
        go: list[tuple[int, Redecision]] = []
        by_campaign: dict[uuid.UUID, list[tuple[int, Redecision]]] = {}
        for i, r in granted:
            if r.campaign is None:
                go.append((i, r))
            else:
                by_campaign.setdefault(r.campaign, []).append((i, r))
        claimed: datetime | None = None
        for campaign in sorted(by_campaign):
            group = by_campaign[campaign]
            claimed = claimed or self.ctx.clock()
            first = group[0][1]
            assert first.reservation is not None
            claim = await pacing.claim(
                conn, campaign, first.reservation.cps or 0.0, len(group), first.max_in_progress,
                claimed, config.max_slot_wait, self.ctx.leads.total,
            )  # fmt: skip
            for n, (i, r) in enumerate(group):
                assert r.reservation is not None
                if n < len(claim.slots):
                    r.reservation = replace(r.reservation, slot=claim.slots[n])
                    go.append((i, r))
                elif n < len(claim.slots) + claim.paced:
                    wait = claim.next_free - claimed - config.max_slot_wait
                    results[i] = RetryLater(max(wait, timedelta(seconds=0.5)), "paced")
                else:
                    results[i] = RetryLater(config.busy_retry, "in-progress limit reached")
        return go, claimed

    def _report(self, item: JobItem, r: Redecision, result: Outcome | BaseException) -> None:
        """Logs and metrics, once the batch is committed."""
        if isinstance(result, Again):
            return  # not written: decided again in a later batch
        if r.verdict is Verdict.REFUSE:
            self.ctx.count_refusal(r.rules)
            log.info("attempt %s refused at dispatch: %s", item.attempt_id, r.rules[0])
        elif r.verdict is Verdict.DEFER and isinstance(result, RetryLater):
            assert r.until is not None
            log.info("attempt %s deferred to %s (%s)", item.attempt_id, r.until.isoformat(), r.why)
        elif r.verdict is Verdict.FAIL:
            log.warning("attempt %s failed closed: %s", item.attempt_id, r.why)


async def _busy(conn: AsyncSession | AsyncConnection, rows: Sequence[Any]) -> set[uuid.UUID]:
    limits = {
        r.campaign: r.max_in_progress
        for r in rows
        if r.max_in_progress is not None and AttemptState(r.state) in sql.DISPATCHABLE
    }
    if not limits:
        return set()
    live = await pacing.live_counts(conn, list(limits))
    return {c for c, limit in limits.items() if live.get(c, 0) >= limit}


async def _write_reservations(
    ctx: WorkerContext,
    conn: AsyncConnection,
    rows: list[tuple[uuid.UUID, Redecision]],
    now: datetime,
) -> set[uuid.UUID]:
    """Move the attempts to reserved with what the engine granted and this worker's
    lease: one statement on PostgreSQL; the ids that moved."""
    until = now + ctx.config.lease
    if not ctx.postgres:
        moved = set()
        for aid, r in rows:
            lease = {"lease_owner": ctx.owner, "lease_until": until}
            values = {**r.values, "at": now, "reserved_at": now, **lease}
            if await sql.move(conn, aid, r.state, AttemptState.RESERVED, values, ctx.clock()):
                moved.add(aid)
        return moved
    cols: dict[str, list[Any]] = {k: [] for k in sql.RESERVE_COLUMNS}
    for aid, r in rows:
        cols["ids"].append(aid)
        for key, column in sql.RESERVE_COLUMNS.items():
            if key != "ids":
                cols[key].append(r.values[column])
    params = {
        **cols,
        "now": now,
        "sources": sql.TO_RESERVED,
        "owner": ctx.owner,
        "until": until,
    }
    result = await conn.execute(sql.RESERVE, params)
    return {row[0] for row in result}
