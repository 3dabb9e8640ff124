"""The dispatch worker: one queued attempt -> at most one provider call.

Deliveries are handled one by one through the queue's handler interface, but the
database work is group-committed: the deliveries that arrive together (up to
`batch_size`, see `dialer.dispatch.batcher`) are reserved in one batch, and their `sent`
records written in one statement. Each job keeps its own outcome (a refusal, a deferral,
a retry, an error): one failing job does not sink the others.

For each batch:
1. a cheap look (no lock, one statement): an attempt no longer planned/queued was handled
   already (a redelivery, a duplicate publish): ack and do nothing. A paused campaign
   retries the job later; a campaign at its in-progress limit, or with no pacing slot
   free soon, sends the job back to wait (a cancelled one cancels the attempt, below).
2. one transaction under the cases' locks (taken in id order: batches never deadlock;
   one job per case in a batch, a second one waits for the next): re-read the attempts,
   decide each again on fresh facts (an opt-out, a payment or a twin worker's call may
   have landed since planning), refuse with every reason, or render the words at the
   granted disclosure (a template that would say more fails the attempt closed); then
   lock the attempts' rows (`FOR UPDATE SKIP LOCKED`: one that another multi-row writer,
   say the relay marking attempts queued, holds right now is tried again shortly, never
   waited for); per campaign under its pacing row's lock, keep within the in-progress
   limit and take the pacing slots (the rate, shared by all workers) of those allowed;
   write the refusals, deferrals and cancellations, and the reservations in one
   statement; commit.
   Each reservation carries a lease: this worker, until `lease` from now.
Then for each job:
3. wait for its slot; then the fence (issue 19): one short autocommitted statement (for
   the jobs that reach it together) moves the attempt reserved -> dialing only if this
   worker still holds its lease and no opt-out, cease or consent revocation has been
   committed for that contact point and channel since the decision. A fence that fails on
   the lease dials nothing (the reconciler has it, or will); one that fails on a
   protective fact refuses the attempt. The request starts within `fence.SEND_WINDOW` of
   the fence, else the worker fences again.
4. call the provider, record its id (sent) or what its error means: ambiguous -> unknown
   (the reconciler looks it up; nothing dials it again), permanent -> failed and the
   contact point updated, transient (certainly not acted on) -> retried here after the
   wait it asks for, on a fresh pacing slot and a fresh fence like any call, at most
   `create_attempts` times in all; then not_sent and a fresh attempt planned for later
   through the outbox, in the same transaction.
The job is acknowledged only after that record is committed. Every state change goes
through `dialer.domain.attempts.advance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from adapters.errors import (
    AmbiguousError,
    DisclosureError,
    NotConfiguredError,
    PermanentError,
    PermanentErrorKind,
    PermanentJobError,
    RetryLater,
    TemplateError,
    TransientError,
)
from adapters.ports import (
    CallRequest,
    Delivery,
    EmailMessage,
    Job,
    Mailer,
    ProviderRef,
    SmsRequest,
    Telephony,
)
from adapters.templates import TemplateRegistry, default_registry
from dialer.db.errors import database_unavailable
from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow, PacingRow
from dialer.db.types import UTCDateTime
from dialer.dispatch import outbox, pacing
from dialer.dispatch.batcher import Batcher
from dialer.dispatch.fence import SEND_WINDOW
from dialer.dispatch.messages import MessageFacts, Rendered, Sender, language_for, render_for
from dialer.dispatch.planner import StrategyCache
from dialer.dispatch.windows import LocalWindow
from dialer.domain.attempts import NO_TELEPHONY, AttemptState, advance, can_advance
from dialer.facts.batch import PORTFOLIO_COLUMNS, CaseFacts, load_facts, lock_cases
from dialer.observability.metrics import Metrics
from strategy.decision import Decision, Refusal
from strategy.engine import decide
from strategy.model import CaseFlag, Channel, Validity

log = logging.getLogger(__name__)

DISPATCHABLE = frozenset({AttemptState.PLANNED, AttemptState.QUEUED})
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    from_number: str = "+15005550006"
    sender: Sender = field(default_factory=Sender)
    max_slot_wait: timedelta = timedelta(seconds=2)
    paused_retry: timedelta = timedelta(seconds=30)
    busy_retry: timedelta = timedelta(seconds=2)  # the in-progress limit is reached
    outage_retry: timedelta = timedelta(seconds=1)  # first wait when the database is down
    outage_retry_max: timedelta = timedelta(seconds=30)
    transient_retries: int = 3
    # A refusal that passes soon is waited out (at most this long, this many times) when
    # it stays inside the campaign's window: see `Dispatcher._deferral`.
    max_deferral: timedelta = timedelta(hours=1)
    max_deferrals: int = 3
    transient_delay: timedelta = timedelta(minutes=1)
    # group commit: at most this many jobs in one batch, this many batches at a time; a
    # batch waits at most `batch_linger` seconds for more jobs while another is running
    batch_size: int = 64
    batches: int = 2
    batch_linger: float = 0.010
    record_batches: int = 1  # `sent` records: one batch at a time, the next one gathers
    # The fence: a reservation's lease (the reconciler reclaims it once this has passed);
    # a create the provider certainly did not act on (429, not reached) is tried at most
    # this many times in all, each try on a fresh pacing slot, waiting what it asks for
    # (at most `create_retry_wait`) first.
    lease: timedelta = timedelta(minutes=5)
    create_attempts: int = 4
    create_retry_wait: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Reserved:
    attempt_id: uuid.UUID
    channel: Channel
    to: str
    rendered: Rendered
    slot: pacing.Slot | None
    campaign: uuid.UUID | None = None
    cps: float = 0.0
    # the channel's consent was on the contact point at the decision: its revocation since
    # then stops the fence
    consented: bool = False


def move(row: AttemptRow, target: AttemptState) -> bool:
    """Advance the row's state through the state machine; False when it must not move."""
    new = advance(AttemptState(row.state), target)
    if new is None:
        return False
    row.state = new.value
    return True


class Dispatcher:
    """The job handler (`JobHandler`) of `dialer worker`."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        telephony: Telephony,
        mailer: Mailer | None,
        clock: Callable[[], datetime],
        *,
        config: WorkerConfig | None = None,
        templates: TemplateRegistry | None = None,
        sleep: Sleep = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.maker = maker
        self.telephony = telephony
        self.mailer = mailer
        self.clock = clock
        self.config = config or WorkerConfig()
        self.templates = templates or default_registry()
        self.sleep = sleep
        self.metrics = metrics
        self.strategies = StrategyCache()
        bind = maker.kw.get("bind")
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        # Reads and single-statement writes that need no transaction skip BEGIN/COMMIT.
        self._autocommit: AsyncEngine | None = (
            bind.execution_options(isolation_level="AUTOCOMMIT")
            if bind is not None and self.postgres
            else None
        )
        self._lead = timedelta(0)  # how long from taking a slot to being ready to dial
        self.late = 0  # dials that came too late for their slot and took another
        # SQLite is the one-process default: this lock stands in for row locks there.
        self._local = asyncio.Lock()
        c = self.config
        self._reserver: Batcher[_Item, _Reserve] = Batcher(
            self._reserve_batch, c.batch_size, c.batch_linger, c.batches
        )
        self._recorder: Batcher[tuple[Reserved, ProviderRef], bool] = Batcher(
            self._record_sent_batch, c.batch_size, c.batch_linger, c.record_batches
        )
        # the fence: jobs whose slots come together are fenced in one statement, at once
        self._fencer: Batcher[tuple[Reserved, bool], bool] = Batcher(
            self._fence_batch, c.batch_size, 0.0, c.batches
        )
        # whose lease a reservation carries: this dispatcher, unique across processes
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]

    def batch_counts(self) -> tuple[int, int, int, int, int]:
        """Reservation batches and the jobs they held; `sent` record batches and theirs;
        dials that came too late for their slot."""
        r, s = self._reserver, self._recorder
        return r.batches, r.items, s.batches, s.items, self.late

    @contextlib.asynccontextmanager
    async def _serial(self) -> AsyncIterator[None]:
        if self.postgres:
            yield
        else:
            async with self._local:
                yield

    async def __call__(self, delivery: Delivery) -> None:
        try:
            await self._handle(delivery)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Wait and come back rather than be redelivered at once: every redelivery
            # would fail alike and spend the delivery limit. What was committed stays
            # (a reserved attempt is never dialled again; the reconciler settles it).
            delay = min(
                self.config.outage_retry * 2 ** min(delivery.retries, 6),
                self.config.outage_retry_max,
            )
            log.warning(
                "job %s: database unavailable (%s); retry in %s",
                delivery.job.attempt_id,
                type(exc).__name__,
                delay,
            )
            raise RetryLater(delay, "database unavailable") from exc

    async def _handle(self, delivery: Delivery) -> None:
        job = delivery.job
        try:
            item = _Item(
                delivery,
                uuid.UUID(job.attempt_id),
                uuid.UUID(job.case_id),
                may_defer=delivery.retries < self.config.max_deferrals,
            )
        except ValueError as exc:
            raise PermanentJobError(f"malformed ids in job {job.attempt_id!r}") from exc
        while True:
            outcome = await self._reserver.submit(item)
            if not isinstance(outcome, _Again):
                break
            if outcome.pause:  # the attempt's row was busy (the relay marks it queued)
                await asyncio.sleep(outcome.pause)
        if outcome is None:
            return
        reserved = outcome
        if reserved.slot is not None:
            reserved = await self._wait_for_slot(reserved)
        await self._send(reserved, job)

    # --- the reservation, one batch at a time ---------------------------------------------
    async def _reserve_batch(self, items: Sequence[_Item]) -> list[_Reserve | BaseException]:
        """A batch's reservation; if it fails for any reason but the database being down,
        each job is tried alone, so one bad job does not sink the others."""
        try:
            return await self._reserve_all(items)
        except Exception as exc:
            if len(items) == 1 or database_unavailable(exc):
                raise
            log.warning("a batch of %d jobs failed (%r): each is tried alone", len(items), exc)
        out: list[_Reserve | BaseException] = []
        for item in items:
            try:
                out += await self._reserve_all([item])
            except Exception as exc:
                out.append(exc)
        return out

    async def _reserve_all(self, items: Sequence[_Item]) -> list[_Reserve | BaseException]:
        """1. a cheap look (no lock, one statement): attempts handled already (a redelivery,
        a duplicate) are acked; a paused campaign's jobs retry later; a campaign at its
        in-progress limit, or without a free slot soon, sends its jobs back to wait.
        2. one transaction for the rest (`_reserve`)."""
        results: list[_Reserve | BaseException] = [None] * len(items)
        async with self._serial():
            looked = await self._look(items)
        now = self.clock()
        todo: list[int] = []
        cases: set[uuid.UUID] = set()
        horizon: dict[uuid.UUID, tuple[datetime, int]] = {}  # campaign -> (next free, taken)
        for i, item in enumerate(items):
            row = looked.rows.get(item.attempt_id)
            if row is None:
                log.warning("job %s names no attempt: nothing to do", item.attempt_id)
                continue
            if AttemptState(row.state) not in DISPATCHABLE:
                continue  # handled already: a duplicate or a redelivery never dials again
            if self.metrics is not None:
                lag = (now - item.delivery.job.not_before).total_seconds()
                self.metrics.set_queue_lag(max(lag, 0.0))
            if row.campaign is not None and row.status != "cancelled":
                if row.status in ("paused", "draft"):
                    results[i] = RetryLater(self.config.paused_retry, f"campaign {row.status}")
                    continue
                if row.campaign in looked.busy:  # checked again under the campaign's lock
                    results[i] = RetryLater(self.config.busy_retry, "in-progress limit reached")
                    continue
                late = self._paced(row, now, horizon)
                if late is not None:
                    results[i] = late
                    continue
            if item.case_id in cases:
                results[i] = _Again()  # one job per case in a batch: the next one decides
                continue
            cases.add(item.case_id)
            todo.append(i)
        if todo:
            async with self._serial():
                await self._reserve(items, todo, results)
        return results

    def _paced(
        self, row: Any, now: datetime, horizon: dict[uuid.UUID, tuple[datetime, int]]
    ) -> RetryLater | None:
        """A job whose campaign has no slot free within `max_slot_wait` (counting the jobs
        of this batch ahead of it) waits until about when one will be, spread out so the
        jobs do not all come back at once."""
        interval = pacing.slot_interval(row.pacing_cps)
        start, taken = horizon.get(row.campaign, (max(row.next_slot_at or now, now), 0))
        horizon[row.campaign] = (start, taken + 1)
        at = start + interval * taken
        latest = now + self.config.max_slot_wait
        if at <= latest:
            return None
        return RetryLater(max(at - latest, timedelta(seconds=0.5)), "paced")

    async def _look(self, items: Sequence[_Item]) -> _Looked:
        """The attempts' states, campaigns and next free slots, read without a transaction
        (one statement on PostgreSQL), and which campaigns are at their in-progress limit."""
        ids = _padded([item.attempt_id for item in items])
        if self._autocommit is not None:
            async with self._autocommit.connect() as conn:
                rows = (await conn.execute(_LOOK, {"ids": ids})).all()
                return _Looked({r.id: r for r in rows}, await self._busy(conn, rows))
        async with self.maker() as session:
            rows = (await session.execute(_LOOK, {"ids": ids})).all()
            return _Looked({r.id: r for r in rows}, await self._busy(session, rows))

    @staticmethod
    async def _busy(conn: AsyncSession | AsyncConnection, rows: Sequence[Any]) -> set[uuid.UUID]:
        limits = {
            r.campaign: r.max_in_progress
            for r in rows
            if r.max_in_progress is not None and AttemptState(r.state) in DISPATCHABLE
        }
        if not limits:
            return set()
        live = await pacing.live_counts(conn, list(limits))
        return {c for c, limit in limits.items() if live.get(c, 0) >= limit}

    async def _reserve(
        self,
        items: Sequence[_Item],
        todo: list[int],
        results: list[_Reserve | BaseException],
    ) -> None:
        """One transaction for the batch: lock the cases (in id order: no deadlock between
        batches), read their attempts, campaigns and fresh facts, decide each again, and
        reserve, defer, refuse or cancel each (`_decide`). Then, per campaign, the jobs
        allowed take the places left under its in-progress limit and their pacing slots
        (`pacing.claim`, under the campaign's lock); the rest retry later. Reservations
        are one UPDATE; commit. Each job's outcome lands in `results`."""
        case_ids = sorted({items[i].case_id for i in todo})
        async with self.maker() as session:
            # Core statements on the session's connection (its transaction): no ORM work
            conn = await session.connection()
            locked = {r[0]: r for r in await lock_cases(session, _padded(case_ids))}
            now = self.clock()
            wanted = _padded([items[i].attempt_id for i in todo])
            attempts = {r.id: r for r in await conn.execute(_ATTEMPTS, {"ids": wanted})}
            live = [
                items[i].case_id
                for i in todo
                if items[i].attempt_id in attempts and items[i].case_id in locked
            ]
            facts = (
                await load_facts(session, _padded(live), now, case_rows=[locked[c] for c in live])
                if live
                else {}
            )
            plans: list[tuple[int, _Plan]] = []
            for n, i in enumerate(todo):
                if n and n % 16 == 0:
                    await asyncio.sleep(0)  # let this process's dials keep their slots
                item = items[i]
                attempt = attempts.get(item.attempt_id)
                if attempt is None:
                    continue  # gone since the look
                try:
                    plan = await self._decide(
                        session, item, attempt, facts.get(item.case_id), locked, now
                    )
                except Exception as exc:  # this job's own failure; the others go on
                    log.exception("job %s: could not decide", item.attempt_id)
                    results[i] = exc
                    continue
                plan.state = attempt.state
                plans.append((i, plan))
            claimed = await self._apply(conn, items, plans, results, now)
            await session.commit()
        if claimed is not None:
            self._lead = min((self._lead * 4 + (self.clock() - claimed)) / 5, _MAX_LEAD)
        for i, plan in plans:
            self._report(items[i], plan, results[i])

    async def _decide(
        self,
        session: AsyncSession,
        item: _Item,
        attempt: Any,
        facts: CaseFacts | None,
        locked: dict[uuid.UUID, Any],
        now: datetime,
    ) -> _Plan:
        """Decide one job again on fresh facts: what its attempt becomes."""
        if AttemptState(attempt.state) not in DISPATCHABLE:
            return _Plan("none")
        if attempt.status == "cancelled":
            return _Plan("cancel")
        if attempt.status in ("paused", "draft"):
            return _Plan(
                "retry", retry=RetryLater(self.config.paused_retry, f"campaign {attempt.status}")
            )
        case_row = locked.get(item.case_id)
        strategy_id, profile, country = (
            case_row[PORTFOLIO_COLUMNS] if case_row else (None, None, None)
        )
        version_id = (facts.strategy_version_id or strategy_id) if facts else None
        found = (
            await self.strategies.get(session, version_id, profile)
            if version_id and profile
            else None
        )
        channel = Channel(attempt.channel)
        cp_id = str(attempt.contact_point_id)
        if facts is None or found is None or profile is None:
            gone = facts is None or profile is None
            rule = "case.gone" if gone else "strategy.none_active"
            why = "the case is gone" if gone else "the portfolio has no active strategy"
            return _Plan(
                "refuse",
                values={"refusal": {"reasons": [{"rule": rule, "message": why}]}},
                rules=[rule],
            )
        strategy_row, cs = found
        decision = decide(facts.case, facts.history, now, cs)
        if decision.warnings and self.metrics is not None:
            self.metrics.record_decision_warnings(w.rule for w in decision.warnings)
        action = decision.allowed_for(cp_id, channel)
        if action is None:
            refusal = decision.refusal_for(cp_id, channel)
            until = (
                self._deferral(decision, refusal, attempt, cp_id, now) if item.may_defer else None
            )
            if until is not None and refusal is not None:
                return _Plan("defer", until=until, why=", ".join(refusal.rules))
            reasons = [*decision.case_reasons, *(refusal.reasons if refusal else ())]
            docs = [
                {
                    "rule": r.rule,
                    "message": r.message,
                    "next_allowed": r.next_allowed.isoformat() if r.next_allowed else None,
                    "source": r.source,
                }
                for r in reasons
            ] or [{"rule": "candidate.gone", "message": "no longer a candidate"}]
            values = {
                "refusal": {"reasons": docs},
                "profile": decision.profile,
                "strategy_version_id": strategy_row.id,
            }
            return _Plan("refuse", values=values, rules=[str(d["rule"]) for d in docs])
        party = next(p for p in facts.case.parties if p.id == action.party_id)
        point = next(c for c in party.contact_points if c.id == cp_id)
        values = {
            "strategy_version_id": strategy_row.id,
            "profile": decision.profile,
            "allowed_by": action.allowed_by,
            "disclosure": action.disclosure.value,
            "voicemail_disclosure": action.voicemail_disclosure.value,
            "template_key": action.template_key,
            "append_opt_out": action.append_opt_out,
        }
        try:
            rendered = render_for(
                self.templates,
                MessageFacts(
                    channel=channel,
                    role=party.role,
                    name=party.name,
                    title=party.title,
                    language=language_for(country),
                    amount=facts.case.outstanding,
                    currency=facts.case.currency,
                    due_date=facts.case.due_date,
                    days_past_due=decision.days_past_due,
                ),
                action.disclosure,
                action.voicemail_disclosure,
                append_opt_out=action.append_opt_out,
                sender=self.config.sender,
            )
        except (DisclosureError, TemplateError) as exc:
            # Invariant 4: words that would say more than granted are never sent.
            code = "disclosure" if isinstance(exc, DisclosureError) else "template"
            return _Plan("fail", values=values, why=code, error=str(exc)[:2000])
        return _Plan(
            "reserve",
            values=values,
            reserved=Reserved(
                item.attempt_id,
                channel,
                point.value,
                rendered,
                None,
                attempt.campaign,
                attempt.pacing_cps,
                consented=channel in point.consent,
            ),
            campaign=attempt.campaign,
            max_in_progress=attempt.max_in_progress,
        )

    async def _apply(
        self,
        conn: AsyncConnection,
        items: Sequence[_Item],
        plans: list[tuple[int, _Plan]],
        results: list[_Reserve | BaseException],
        now: datetime,
    ) -> datetime | None:
        """Write every plan of the batch in the open transaction (the caller commits).
        Returns when pacing slots were claimed, if any were.

        First the attempts' rows are locked, `FOR UPDATE SKIP LOCKED`: one that another
        multi-row writer holds right now (the relay marking a published batch queued, a
        cancellation) is tried again shortly, never waited for, so batches cannot
        deadlock with such writers; and the rows are held only from here to the commit.
        """
        if self.postgres:
            writes = [items[i].attempt_id for i, plan in plans if plan.kind not in _NO_WRITE]
            held: set[uuid.UUID] = set()
            if writes:
                held = {r[0] for r in await conn.execute(_LOCK_ATTEMPTS, {"ids": _padded(writes)})}
            kept: list[tuple[int, _Plan]] = []
            for i, p in plans:
                if p.kind in _NO_WRITE or items[i].attempt_id in held:
                    kept.append((i, p))
                else:  # held by another writer: decided again in a later batch
                    results[i] = _Again(pause=_HELD_PAUSE)
            plans = kept
        go: list[tuple[int, _Plan]] = []
        by_campaign: dict[uuid.UUID, list[tuple[int, _Plan]]] = {}
        for i, plan in plans:
            aid = items[i].attempt_id
            state = plan.state
            if plan.kind == "cancel":
                await self._move(conn, aid, state, AttemptState.CANCELLED, {})
            elif plan.kind == "retry":
                results[i] = plan.retry
            elif plan.kind == "refuse":
                await self._move(conn, aid, state, AttemptState.REFUSED, plan.values)
            elif plan.kind == "defer":
                assert plan.until is not None
                moved = await conn.execute(
                    update(AttemptRow)
                    .where(AttemptRow.id == aid, AttemptRow.state.in_(_DISPATCHABLE))
                    .values(at=plan.until, not_before=plan.until, updated_at=now)
                )
                if moved.rowcount:
                    results[i] = RetryLater(plan.until - now, f"deferred by {plan.why}")
            elif plan.kind == "fail":
                values = {**plan.values, "at": now, "reserved_at": now}
                if await self._move(conn, aid, state, AttemptState.RESERVED, values):
                    await self._move(
                        conn,
                        aid,
                        AttemptState.RESERVED.value,
                        AttemptState.FAILED,
                        {"error_code": plan.why, "error_message": plan.error},
                    )
            elif plan.kind == "reserve":
                if plan.campaign is None:
                    go.append((i, plan))
                else:
                    by_campaign.setdefault(plan.campaign, []).append((i, plan))
        # Slots start no sooner than this batch can dial: `lead` is how long the rest of
        # the transaction took lately, measured from here.
        claimed: datetime | None = None
        for campaign in sorted(by_campaign):  # pacing rows locked in id order
            group = by_campaign[campaign]
            claimed = claimed or self.clock()
            first = group[0][1]
            assert first.reserved is not None
            claim = await pacing.claim(
                conn,
                campaign,
                first.reserved.cps or 0.0,
                len(group),
                first.max_in_progress,
                claimed,
                self.config.max_slot_wait,
                self._lead,
            )
            for n, (i, plan) in enumerate(group):
                assert plan.reserved is not None
                if n < len(claim.slots):
                    plan.reserved = replace(plan.reserved, slot=claim.slots[n])
                    go.append((i, plan))
                elif n < len(claim.slots) + claim.paced:
                    wait = claim.next_free - claimed - self.config.max_slot_wait
                    results[i] = RetryLater(max(wait, timedelta(seconds=0.5)), "paced")
                else:
                    results[i] = RetryLater(self.config.busy_retry, "in-progress limit reached")
        if go:
            taken = await self._reserve_rows(conn, [(items[i].attempt_id, p) for i, p in go], now)
            for i, plan in go:
                if items[i].attempt_id in taken:
                    results[i] = plan.reserved
        return claimed

    async def _reserve_rows(
        self, conn: AsyncConnection, rows: list[tuple[uuid.UUID, _Plan]], now: datetime
    ) -> set[uuid.UUID]:
        """Move the attempts to reserved with what the engine granted: one statement on
        PostgreSQL; the ids that moved."""
        until = now + self.config.lease
        if not self.postgres:
            moved = set()
            for aid, plan in rows:
                values = {
                    **plan.values,
                    "at": now,
                    "reserved_at": now,
                    "lease_owner": self.owner,
                    "lease_until": until,
                }
                if await self._move(conn, aid, plan.state, AttemptState.RESERVED, values):
                    moved.add(aid)
            return moved
        cols: dict[str, list[Any]] = {k: [] for k in _RESERVE_COLUMNS}
        for aid, plan in rows:
            cols["ids"].append(aid)
            for key, column in _RESERVE_COLUMNS.items():
                if key != "ids":
                    cols[key].append(plan.values[column])
        params = {**cols, "now": now, "sources": _TO_RESERVED, "owner": self.owner, "until": until}
        result = await conn.execute(_RESERVE, params)
        return {r[0] for r in result}

    def _report(self, item: _Item, plan: _Plan, result: _Reserve | BaseException) -> None:
        """Logs and metrics, once the batch is committed."""
        if isinstance(result, _Again):
            return  # not written: decided again in a later batch
        if plan.kind == "refuse":
            self._count_refusal(plan.rules)
            log.info("attempt %s refused at dispatch: %s", item.attempt_id, plan.rules[0])
        elif plan.kind == "defer" and isinstance(result, RetryLater):
            assert plan.until is not None
            log.info(
                "attempt %s deferred to %s (%s)", item.attempt_id, plan.until.isoformat(), plan.why
            )
        elif plan.kind == "fail":
            log.warning("attempt %s failed closed: %s", item.attempt_id, plan.why)

    async def _move(
        self,
        conn: AsyncConnection,
        attempt_id: uuid.UUID,
        current: str,
        target: AttemptState,
        values: dict[str, Any],
    ) -> bool:
        """One UPDATE through the state machine; False when the attempt did not move.
        Guarded by every state that may move to `target`, not only the one read: the
        outbox relay may turn planned into queued meanwhile (it does not lock the case)."""
        if advance(AttemptState(current), target) is None:
            return False
        result = await conn.execute(
            update(AttemptRow)
            .where(AttemptRow.id == attempt_id, AttemptRow.state.in_(_SOURCES[target]))
            .values(state=target.value, updated_at=self.clock(), **values)
        )
        return bool(result.rowcount)

    # --- pacing ----------------------------------------------------------------------------
    async def _wait_for_slot(self, r: Reserved) -> Reserved:
        """Sleep until the slot. A dial that would start more than `pacing.LATE_LIMIT`
        after its slot (a busy event loop, a slow commit) gives the slot up and takes the
        next free one, however far (one statement), so late dials never crowd a one-second
        window past the rate. The attempt is reserved already: it waits for a slot rather
        than retrying, and never polls for one. Only after `_LATE_TRIES` late slots in a
        row does it dial late on one that was free when taken (the campaign below its
        rate then: a dial late there can crowd nothing but the slots after it)."""
        slot = r.slot
        assert slot is not None and slot.at is not None and r.campaign is not None
        at = slot.at
        tries = 0
        while True:
            pause = (at - self.clock()).total_seconds()
            if pause > 0:
                await self.sleep(pause)
            if self.clock() - at <= pacing.LATE_LIMIT:
                return r
            if tries >= _LATE_TRIES and not slot.pushed:
                return r
            tries += 1
            self.late += 1
            lead = max(self._lead, _TICK)
            async with self._serial():
                slot = await pacing.take_slot(
                    self.maker, r.campaign, r.cps, self.clock, _ANY_WAIT, lead
                )
            assert slot.at is not None
            at = slot.at

    # --- recording -------------------------------------------------------------------------
    async def _record_sent(self, r: Reserved, ref: ProviderRef) -> None:
        """The common case goes with the batch's others (`_record_sent_batch`); if a
        callback moved the attempt first, or the batch failed, the general path applies."""
        try:
            done = await self._recorder.submit((r, ref))
        except Exception as exc:
            if database_unavailable(exc):
                raise
            log.warning("attempt %s: the batch's sent record failed (%r)", r.attempt_id, exc)
            done = False  # say, a deadlock with a callback's transaction: record it alone
        if not done:
            await self._record(r, AttemptState.SENT, ref=ref)

    async def _record_sent_batch(
        self, sent: Sequence[tuple[Reserved, ProviderRef]]
    ) -> list[bool | BaseException]:
        """Still dialing -> sent with the provider's id: one autocommitted UPDATE for the
        batch on PostgreSQL. True for each attempt that moved."""
        now = self.clock()
        if self._autocommit is not None:
            params = {
                "ids": [r.attempt_id for r, _ in sent],
                "sids": [ref.id for _, ref in sent],
                "now": now,
            }
            async with self._autocommit.connect() as conn:
                moved = {row[0] for row in await conn.execute(_SENT, params)}
            return [r.attempt_id in moved for r, _ in sent]
        out: list[bool | BaseException] = []
        async with self._serial(), self.maker() as session:
            for r, ref in sent:
                stmt = (
                    update(AttemptRow)
                    .where(
                        AttemptRow.id == r.attempt_id,
                        AttemptRow.state == AttemptState.DIALING.value,
                    )
                    .values(
                        state=AttemptState.SENT.value,
                        provider_sid=ref.id,
                        sent_at=func.coalesce(AttemptRow.dialing_at, now),
                        updated_at=now,
                    )
                )
                out.append(bool((await session.execute(stmt)).rowcount))  # type: ignore[attr-defined]
            await session.commit()
        return out

    def _deferral(
        self,
        decision: Decision,
        refusal: Refusal | None,
        attempt: Any,
        cp_id: str,
        now: datetime,
    ) -> datetime | None:
        """When a refused campaign attempt may wait instead: no case-level reason, the
        engine names the instant every reason passes, it comes within `max_deferral`, and
        it is still inside the campaign's local window today in the point's zones."""
        if refusal is None or refusal.next_allowed is None or decision.case_reasons:
            return None
        if attempt.campaign is None or attempt.window is None:
            return None
        until = refusal.next_allowed
        if until <= now or until - now > self.config.max_deferral:
            return None
        zones = decision.extra.get("zones", {}).get(cp_id)
        if not zones:
            return None
        bounds = LocalWindow.parse(attempt.window).today(zones, now)
        if bounds is None or not bounds[0] <= until < bounds[1]:
            return None
        return until

    def _count_refusal(self, rules: list[str]) -> None:
        if self.metrics is not None:
            self.metrics.record_refusals(rules)

    def _count_provider_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_provider_error(kind)

    # --- the fence -------------------------------------------------------------------------
    async def _fence(self, r: Reserved, job: Job, *, again: bool) -> float | None:
        """The `time.monotonic()` instant until which this worker may start the provider
        request: the attempt moved to `dialing` under its lease (or, `again`, stayed there)
        with no protective fact committed since the decision, and `SEND_WINDOW` from the
        instant the fence was asked for. None: dial nothing (a lost lease is the
        reconciler's; a protective fact is recorded here)."""
        for _ in range(_FENCE_TRIES):
            fenced_at, start = self.clock(), time.monotonic()
            if not await self._fencer.submit((r, again)):
                await self._fence_failed(r, again)
                return None
            if self.clock() - fenced_at <= SEND_WINDOW:
                return start + SEND_WINDOW.total_seconds()
            again = True  # too slow to dial on that fence: fence once more
        log.warning("attempt %s: no fence within %s; not dialled", r.attempt_id, SEND_WINDOW)
        # certainly not sent: not_sent, and planned again like a transient failure
        await self._record(r, AttemptState.NOT_SENT, error=("fence", "no timely fence"), job=job)
        return None

    async def _fence_batch(
        self, batch: Sequence[tuple[Reserved, bool]]
    ) -> list[bool | BaseException]:
        """reserved (or, re-fencing, dialing) -> dialing, for the attempts whose lease this
        worker holds and that no opt-out, cease or consent revocation has reached since
        the decision: one autocommitted statement on PostgreSQL, which reads the contact
        point and case as committed when it runs (so it is ordered by commit)."""
        now = self.clock()
        if self._autocommit is not None:
            params = {
                "ids": [r.attempt_id for r, _ in batch],
                "consented": [r.consented for r, _ in batch],
                "again": [again for _, again in batch],
                "sources": _FENCE_FROM,
                "dialing": AttemptState.DIALING.value,
                "cease": CaseFlag.CEASE.value,
                "owner": self.owner,
                "now": now,
            }
            async with self._autocommit.connect() as conn:
                moved = {row[0] for row in await conn.execute(_FENCE, params)}
            return [r.attempt_id in moved for r, _ in batch]
        out: list[bool | BaseException] = []
        async with self._serial(), self.maker() as session:
            for r, again in batch:
                found = (await session.execute(_FENCE_FACTS, {"id": r.attempt_id})).first()
                ok = (
                    found is not None
                    and found.state in (_FENCE_FROM_AGAIN if again else _FENCE_FROM)
                    and found.lease_owner == self.owner
                    and found.lease_until is not None
                    and found.lease_until > now
                    and not _blocked(r, found)
                )
                if ok:
                    await session.execute(
                        update(AttemptRow)
                        .where(AttemptRow.id == r.attempt_id)
                        .values(state=AttemptState.DIALING.value, dialing_at=now, updated_at=now)
                    )
                out.append(ok)
            await session.commit()
        return out

    async def _fence_failed(self, r: Reserved, again: bool) -> None:
        """A fence that did not pass: if the lease is still this worker's, a protective
        fact stopped it (reserved -> refused with its rules; dialing after a retry ->
        not_sent, certainly not acted on). Otherwise the lease was taken: nothing to do."""
        now = self.clock()
        async with self._serial(), self.maker() as session:
            found = (await session.execute(_FENCE_FACTS, {"id": r.attempt_id})).first()
            if found is None:
                return
            ours = found.lease_owner == self.owner and (found.lease_until or now) > now
            reasons = _blocked(r, found) if ours else []
            if not reasons:
                log.warning("attempt %s: lease taken (%s); not dialled", r.attempt_id, found.state)
                return
            rules = [str(x["rule"]) for x in reasons]
            conn = await session.connection()
            if found.state == AttemptState.RESERVED.value:
                await self._move(
                    conn,
                    r.attempt_id,
                    found.state,
                    AttemptState.REFUSED,
                    {"refusal": {"reasons": reasons}},
                )
            await session.commit()
        if found.state == AttemptState.DIALING.value:
            await self._record(r, AttemptState.NOT_SENT, error=("fence", ", ".join(rules)))
        self._count_refusal(rules)
        log.info("attempt %s refused at the fence: %s", r.attempt_id, rules[0])

    def _on_time(self, r: Reserved) -> bool:
        """Within `pacing.LATE_LIMIT` of its slot (or no slot): `_wait_for_slot`'s rule,
        checked again after the fence, whose time counts too."""
        slot = r.slot
        return slot is None or slot.at is None or self.clock() - slot.at <= pacing.LATE_LIMIT

    async def _next_slot(self, r: Reserved) -> Reserved:
        assert r.campaign is not None
        async with self._serial():
            slot = await pacing.take_slot(
                self.maker, r.campaign, r.cps, self.clock, _ANY_WAIT, max(self._lead, _TICK)
            )
        return await self._wait_for_slot(replace(r, slot=slot))

    async def _pace_retry(self, r: Reserved, exc: TransientError, tries: int) -> Reserved:
        """Before a create is tried again: the wait it asked for (`Retry-After`, capped),
        or an exponential one; then a fresh pacing slot, like any call."""
        cap = self.config.create_retry_wait.total_seconds()
        wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (tries - 1)
        await self.sleep(min(max(wait, 0.0), cap))
        if r.campaign is None or not r.cps or r.slot is None or r.slot.at is None:
            return r
        return await self._next_slot(r)

    # --- the provider call ---------------------------------------------------------------
    async def _send(self, r: Reserved, job: Job) -> None:
        tries = late = 0
        while True:
            on_time = self._on_time(r)
            send_by = await self._fence(r, job, again=tries > 0 or late > 0)
            if send_by is None:
                return
            pushed = r.slot is not None and r.slot.pushed
            if on_time and pushed and not self._on_time(r) and late < _LATE_TRIES:
                # The fence made a dial late for a slot of a campaign at its rate (below
                # it, a late dial crowds nothing: `pacing`): a fresh slot, a fresh fence.
                late += 1
                self.late += 1
                r = await self._next_slot(r)
                continue
            tries += 1
            try:
                ref = await self._call_provider(r, send_by)
            except AmbiguousError as exc:
                self._count_provider_error("ambiguous")
                await self._record(r, AttemptState.UNKNOWN, error=("ambiguous", str(exc)))
            except NotConfiguredError as exc:  # nobody to dial through: final, no contact
                self._count_provider_error("not_configured")
                await self._record(r, AttemptState.NOT_SENT, error=(NO_TELEPHONY, str(exc)))
            except PermanentError as exc:
                self._count_provider_error(exc.kind)
                error = (f"{exc.kind}:{exc.code or ''}", str(exc))
                await self._record(r, AttemptState.FAILED, error=error, perm=exc)
            except TransientError as exc:
                self._count_provider_error("transient")
                if tries < self.config.create_attempts:
                    # certainly not acted on: tried again, on a fresh slot and fence
                    log.info("attempt %s: %s; tried again", r.attempt_id, exc)
                    r = await self._pace_retry(r, exc, tries)
                    continue
                await self._record(r, AttemptState.NOT_SENT, error=("transient", str(exc)), job=job)
            except Exception as exc:  # anything else: the provider may have acted
                log.exception("attempt %s: unexpected provider failure", r.attempt_id)
                await self._record(r, AttemptState.UNKNOWN, error=("unexpected", repr(exc)))
            else:
                await self._record_sent(r, ref)
            return

    async def _call_provider(self, r: Reserved, send_by: float) -> ProviderRef:
        """The request, which must leave by `send_by` (the fence's send window): the
        adapter checks that last of all, just before it sends."""
        aid = str(r.attempt_id)
        if r.channel is Channel.VOICE:
            request = CallRequest(aid, r.to, self.config.from_number, send_by=send_by)
            return await self.telephony.place_call(request)
        if r.channel is Channel.SMS:
            sms = SmsRequest(aid, r.to, r.rendered.body, send_by=send_by)
            return await self.telephony.send_sms(sms)
        if time.monotonic() > send_by:
            raise TransientError("send deadline passed; not sent")
        if self.mailer is None:
            raise PermanentError("no mailer configured", kind=PermanentErrorKind.OTHER)
        return await self.mailer.send(
            EmailMessage(aid, r.to, r.rendered.subject or "", r.rendered.body)
        )

    async def _record(
        self,
        r: Reserved,
        target: AttemptState,
        *,
        ref: ProviderRef | None = None,
        error: tuple[str, str] | None = None,
        perm: PermanentError | None = None,
        job: Job | None = None,
    ) -> None:
        async with self._serial(), self.maker() as session:
            stmt = select(AttemptRow).where(AttemptRow.id == r.attempt_id)
            if self.postgres:
                stmt = stmt.with_for_update()
            attempt = await session.scalar(stmt.execution_options(populate_existing=True))
            if attempt is None:
                return
            now = self.clock()
            if target is AttemptState.NOT_SENT:
                # certainly not acted on: reserved -> unknown -> not_sent
                move(attempt, AttemptState.UNKNOWN)
            moved = move(attempt, target)
            if ref is not None and attempt.state == AttemptState.NOT_SENT.value:
                # Reclaimed while this worker was stalled inside the request (past the
                # HTTP timeout and the margin): an attempt with a provider id is never
                # not_sent, so the id cannot go on it; say so loudly.
                log.error(
                    "attempt %s was reclaimed, yet the provider created %s for it",
                    r.attempt_id,
                    ref.id,
                )
            elif ref is not None:
                attempt.provider_sid = attempt.provider_sid or ref.id
                attempt.sent_at = attempt.sent_at or attempt.dialing_at or now
            if error is not None:
                attempt.error_code, attempt.error_message = error[0][:40], error[1][:2000]
            attempt.updated_at = now
            if perm is not None:
                await self._update_contact_point(session, attempt, perm)
            if job is not None and moved:
                await self._retry_later(session, attempt, job, now)
            await session.commit()
        if error is not None:
            log.warning("attempt %s -> %s (%s)", r.attempt_id, target, error[0])

    @staticmethod
    async def _update_contact_point(
        session: AsyncSession, attempt: AttemptRow, exc: PermanentError
    ) -> None:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        if point is None:
            return
        if exc.kind is PermanentErrorKind.INVALID_NUMBER:
            point.validity = Validity.INVALID.value
        elif exc.kind is PermanentErrorKind.OPTED_OUT:
            point.opted_out = sorted({*point.opted_out, attempt.channel})

    async def _retry_later(
        self, session: AsyncSession, attempt: AttemptRow, job: Job, now: datetime
    ) -> None:
        """A transient failure: plan a fresh attempt (the engine decides again when it
        runs), at most `transient_retries` times per original job."""
        tries = int(job.payload.get("transient_retries", 0))
        if tries >= self.config.transient_retries:
            return
        when = now + self.config.transient_delay
        await outbox.plan_again(
            session,
            attempt,
            when,
            now,
            notes=f"retry of {attempt.id} after a transient provider error",
            payload={**job.payload, "transient_retries": tries + 1},
        )


_TICK = timedelta(milliseconds=20)
_MAX_LEAD = timedelta(seconds=1)
_HELD_PAUSE = 0.02  # seconds: a job whose attempt row another writer holds tries again
_ANY_WAIT = timedelta(days=1)
_FENCE_TRIES = 3  # fences in a row too slow to dial on before the attempt is given up
_LATE_TRIES = 3  # a reserved attempt takes the next free slot, however far
_PAD_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _padded(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The ids, the last repeated up to a size of `_PAD_SIZES`: an `IN` list's statement
    (and the driver's prepared statement) is then one of a few, whatever the batch size."""
    size = next((s for s in _PAD_SIZES if s >= len(ids)), len(ids))
    return ids + ids[-1:] * (size - len(ids))


_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_LOOK = (
    select(
        AttemptRow.id,
        AttemptRow.state,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.pacing_cps,
        CampaignRow.max_in_progress,
        PacingRow.next_slot_at,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .outerjoin(PacingRow, PacingRow.campaign_id == AttemptRow.campaign_id)
    .where(AttemptRow.id.in_(_IDS))
)
_ATTEMPTS = (
    select(
        AttemptRow.id,
        AttemptRow.state,
        AttemptRow.channel,
        AttemptRow.contact_point_id,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.max_in_progress,
        CampaignRow.window,
        CampaignRow.pacing_cps,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .where(AttemptRow.id.in_(_IDS))
)
_LOCK_ATTEMPTS = (
    select(AttemptRow.id)
    .where(AttemptRow.id.in_(_IDS))
    .order_by(AttemptRow.id)
    .with_for_update(skip_locked=True)
)
_NO_WRITE = frozenset({"none", "retry"})  # plans that write nothing
_DISPATCHABLE = [s.value for s in DISPATCHABLE]
# The fence moves to dialing from the states the table allows; a second fence (after a
# 429, or a fence too slow to dial on) renews the worker's own `dialing`.
_FENCE_FROM = [s.value for s in AttemptState if can_advance(s, AttemptState.DIALING)]
_FENCE_FROM_AGAIN = [*_FENCE_FROM, AttemptState.DIALING.value]
# for each state, the states that may move to it
_SOURCES = {t: [s.value for s in AttemptState if can_advance(s, t)] for t in AttemptState}
_TO_RESERVED = _SOURCES[AttemptState.RESERVED]
# PostgreSQL: a batch's rows in one UPDATE, its values as arrays (one prepared statement)
_RESERVE_COLUMNS = {
    "ids": "",
    "svids": "strategy_version_id",
    "profiles": "profile",
    "allowed": "allowed_by",
    "disc": "disclosure",
    "vm": "voicemail_disclosure",
    "tkeys": "template_key",
    "aoo": "append_opt_out",
}
_RESERVE = text(
    "UPDATE attempts AS a SET state = 'reserved', at = :now, reserved_at = :now,"
    " updated_at = :now, lease_owner = :owner, lease_until = :until,"
    " strategy_version_id = v.svid, profile = v.profile,"
    " allowed_by = v.allowed, disclosure = v.disc, voicemail_disclosure = v.vm,"
    " template_key = v.tkey, append_opt_out = v.aoo"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:svids AS uuid[]), CAST(:profiles AS text[]),"
    " CAST(:allowed AS text[]), CAST(:disc AS text[]), CAST(:vm AS text[]),"
    " CAST(:tkeys AS text[]), CAST(:aoo AS boolean[]))"
    " AS v(id, svid, profile, allowed, disc, vm, tkey, aoo)"
    " WHERE a.id = v.id AND a.state = ANY(CAST(:sources AS text[])) RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
# PostgreSQL: the fence for a batch (`Dispatcher._fence_batch`); `_blocked` is the same
# rule for SQLite and for saying why a fence failed. The contact point and case are read as
# committed when the statement runs: an opt-out that committed before it is seen.
# `a.id = ANY(:ids)` lets the planner look the attempts up by key (it cannot size the
# unnest), and the state test is a CASE so that it never prefers the state index (which
# would read every reserved and dialing row); the contact points and cases come by key.
# The attempts are locked, their contact points share-locked: a fence waits for an
# opt-out's open transaction on that point (and then sees it), and an opt-out waits for a
# fence that passed (which `optouts.settle` then waits for).
_FENCE = text(
    "WITH ok AS (SELECT a.id FROM unnest(CAST(:ids AS uuid[]), CAST(:consented AS boolean[]),"
    " CAST(:again AS boolean[])) AS v(id, consented, again)"
    " JOIN attempts AS a ON a.id = v.id AND a.id = ANY(CAST(:ids AS uuid[]))"
    " JOIN contact_points AS cp ON cp.id = a.contact_point_id"
    " JOIN cases AS c ON c.id = a.case_id"
    " WHERE CASE WHEN a.state = ANY(CAST(:sources AS text[])) THEN true"
    " ELSE v.again AND a.state = :dialing END"
    " AND a.lease_owner = :owner AND a.lease_until > :now"
    " AND NOT (cp.opted_out @> jsonb_build_array(a.channel))"
    " AND NOT (c.flags @> jsonb_build_array(CAST(:cease AS text)))"
    " AND (NOT v.consented OR cp.consent @> jsonb_build_array(a.channel))"
    " ORDER BY a.id FOR NO KEY UPDATE OF a FOR SHARE OF cp)"
    " UPDATE attempts AS a SET state = :dialing, dialing_at = :now, updated_at = :now"
    " FROM ok WHERE a.id = ok.id RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()))
_FENCE_FACTS = (
    select(
        AttemptRow.state,
        AttemptRow.channel,
        AttemptRow.lease_owner,
        AttemptRow.lease_until,
        ContactPointRow.opted_out,
        ContactPointRow.consent,
        CaseRow.flags,
    )
    .join(ContactPointRow, ContactPointRow.id == AttemptRow.contact_point_id)
    .join(CaseRow, CaseRow.id == AttemptRow.case_id)
    .where(AttemptRow.id == bindparam("id"))
)


def _blocked(r: Reserved, found: Any) -> list[dict[str, Any]]:
    """The protective facts committed since the decision that forbid this attempt now:
    an opt-out of its channel on its contact point (compliance.md "always": at once), a
    cease-communication flag on the case (15 U.S.C. 1692c(c)), or the channel's consent
    revoked (47 CFR 64.1200(a)(10)) when the decision had it."""
    channel = str(found.channel)
    reasons: list[dict[str, Any]] = []
    if channel in (found.opted_out or ()):
        reasons.append(
            {"rule": "optout.channel", "message": f"opted out of {channel} since the decision"}
        )
    if CaseFlag.CEASE.value in (found.flags or ()):
        reasons.append(
            {"rule": f"flag.{CaseFlag.CEASE.value}", "message": "cease since the decision"}
        )
    if r.consented and channel not in (found.consent or ()):
        reasons.append(
            {"rule": "guardrail.consent", "message": f"consent to {channel} revoked since"}
        )
    return reasons


_SENT = text(
    "UPDATE attempts AS a SET state = 'sent', provider_sid = v.sid,"
    " sent_at = COALESCE(a.dialing_at, :now),"
    " updated_at = :now FROM unnest(CAST(:ids AS uuid[]), CAST(:sids AS text[])) AS v(id, sid)"
    " WHERE a.id = v.id AND a.state = 'dialing' RETURNING a.id"
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True, slots=True)
class _Item:
    delivery: Delivery
    attempt_id: uuid.UUID
    case_id: uuid.UUID
    may_defer: bool


@dataclass(frozen=True, slots=True)
class _Again:
    """Internal: submit the job again (another job of its case was in the batch, or its
    row was held by another writer: wait `pause` seconds first)."""

    pause: float = 0.0


@dataclass(slots=True)
class _Plan:
    """What deciding one job again came to, written with the batch's others."""

    kind: str  # none, cancel, retry, refuse, defer, fail, reserve
    state: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    retry: RetryLater | None = None
    until: datetime | None = None
    why: str = ""
    error: str = ""
    reserved: Reserved | None = None
    campaign: uuid.UUID | None = None
    max_in_progress: int | None = None


@dataclass(frozen=True, slots=True)
class _Looked:
    rows: dict[uuid.UUID, Any]
    busy: set[uuid.UUID]  # campaigns at their in-progress limit


_Reserve = Reserved | _Again | None
