"""The dispatch worker: one queued attempt -> at most one provider call.

For each delivery:
1. a cheap look (no lock): an attempt no longer planned/queued was handled already
   (a redelivery, a duplicate publish): ack and do nothing. A paused campaign retries the
   job later; a cancelled one cancels the attempt.
2. a pacing slot (the campaign's rate, shared by all workers); none soon -> retry later.
3. one transaction under the case's lock: re-read the attempt, decide again on fresh
   facts (an opt-out, a payment or a twin worker's call may have landed since planning;
   this attempt itself is left out of the history), refuse with every reason, or check the
   campaign's in-progress limit under the campaign's lock, render the words at the granted
   disclosure (a template that would say more fails the attempt closed), reserve, commit.
4. wait for the slot, call the provider, record its id (sent) or what its error means:
   ambiguous -> unknown (the reconciler looks it up; nothing dials it again), permanent ->
   failed and the contact point updated, transient (certainly not acted on) -> not_sent
   and a fresh attempt planned for later through the outbox, in the same transaction.
The job is acknowledged only after that record is committed. Every state change goes
through `dialer.attempt_state.advance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.errors import (
    AmbiguousError,
    DisclosureError,
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
from dialer.attempt_state import AttemptState, advance, can_advance
from dialer.db.errors import database_unavailable
from dialer.db.models import AttemptRow, CampaignRow, ContactPointRow
from dialer.dispatch import outbox, pacing
from dialer.dispatch.facts import load_facts, lock_cases
from dialer.dispatch.messages import MessageFacts, Rendered, Sender, language_for, render_for
from dialer.dispatch.planner import StrategyCache
from dialer.dispatch.windows import LocalWindow
from dialer.observability.metrics import Metrics
from strategy.decision import Decision, Refusal
from strategy.engine import decide
from strategy.model import Channel, Validity

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


@dataclass(frozen=True, slots=True)
class Reserved:
    attempt_id: uuid.UUID
    channel: Channel
    to: str
    rendered: Rendered
    slot: pacing.Slot | None


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
        self._lead = timedelta(0)  # how long from asking for a slot to being ready to dial
        # SQLite is the one-process default: this lock stands in for row locks there.
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _serial(self) -> AsyncIterator[None]:
        if self.postgres:
            yield
        else:
            async with self._local:
                yield

    async def __call__(self, delivery: Delivery) -> None:
        try:
            with contextlib.suppress(_Done):
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

    async def _look(self, attempt_id: uuid.UUID) -> tuple[Any, bool]:
        """The attempt's state and its campaign, read without a transaction (one statement
        on PostgreSQL), and whether the campaign's in-progress limit is reached now."""
        if self._autocommit is not None:
            async with self._autocommit.connect() as conn:
                row = (await conn.execute(_LOOK, {"id": attempt_id})).first()
                busy = row is not None and row.max_in_progress is not None
                if busy:
                    assert row is not None
                    busy = await pacing.in_progress(conn, row.campaign) >= row.max_in_progress
                return row, busy
        async with self.maker() as session:
            row = (await session.execute(_LOOK, {"id": attempt_id})).first()
            busy = row is not None and row.max_in_progress is not None
            if busy:
                assert row is not None
                busy = await pacing.in_progress(session, row.campaign) >= row.max_in_progress
            return row, busy

    async def _handle(self, delivery: Delivery) -> None:
        job = delivery.job
        try:
            attempt_id = uuid.UUID(job.attempt_id)
            case_id = uuid.UUID(job.case_id)
        except ValueError as exc:
            raise PermanentJobError(f"malformed ids in job {job.attempt_id!r}") from exc
        row, busy = await self._look(attempt_id)
        if row is None:
            log.warning("job %s names no attempt: nothing to do", attempt_id)
            return
        if AttemptState(row.state) not in DISPATCHABLE:
            return  # handled already: a duplicate or a redelivery never dials again
        if self.metrics is not None:
            lag = (self.clock() - job.not_before).total_seconds()
            self.metrics.set_queue_lag(max(lag, 0.0))
        slot: pacing.Slot | None = None
        asked = self.clock()
        if row.campaign is not None:
            await self._campaign_gate(row.status, attempt_id)
            if busy:  # checked again under the campaign's lock before reserving
                raise RetryLater(self.config.busy_retry, "in-progress limit reached")
            slot = await self._take_slot(row.campaign, row.pacing_cps)
        async with self._serial():
            reserved = await self._reserve(
                attempt_id, case_id, slot, may_defer=delivery.retries < self.config.max_deferrals
            )
        if reserved is None:
            return
        if reserved.slot is not None:
            assert row.campaign is not None
            reserved = await self._wait_for_slot(reserved, row.campaign, row.pacing_cps, asked)
        await self._send(reserved, job)

    async def _take_slot(self, campaign_id: uuid.UUID, cps: float) -> pacing.Slot:
        async with self._serial():
            taken = await pacing.take_slot(
                self.maker,
                campaign_id,
                cps,
                self.clock,
                self.config.max_slot_wait,
                lead=self._lead,
            )
        if taken.at is None:
            wait = taken.next_free - taken.now - self.config.max_slot_wait
            raise RetryLater(max(wait, timedelta(seconds=0.5)), "paced")
        return taken

    async def _wait_for_slot(
        self, r: Reserved, campaign_id: uuid.UUID, cps: float, asked: datetime
    ) -> Reserved:
        """Sleep until the slot. A dial that would start more than `pacing.LATE_LIMIT`
        after its slot (a busy event loop, a slow commit) gives the slot up and takes a
        fresh one, so late dials never crowd a one-second window past the rate. The
        attempt is reserved already: it keeps waiting for a slot rather than retrying.
        Slots are asked for `lead` ahead: how long reserving took lately, so the slot
        usually comes after the reservation, not before it."""
        slot = r.slot
        assert slot is not None and slot.at is not None
        ready = self.clock() - asked
        self._lead = min((self._lead * 4 + ready) / 5, _MAX_LEAD)
        lead = max(self._lead, _TICK)
        at = slot.at
        while True:
            pause = (at - self.clock()).total_seconds()
            if pause > 0:
                await self.sleep(pause)
            if not slot.pushed or self.clock() - at <= pacing.LATE_LIMIT:
                return r
            while True:
                async with self._serial():
                    slot = await pacing.take_slot(
                        self.maker, campaign_id, cps, self.clock, self.config.max_slot_wait, lead
                    )
                if slot.at is not None:
                    break
                wait = slot.next_free - slot.now - self.config.max_slot_wait
                await self.sleep(max(wait, _TICK).total_seconds())
            at = slot.at
            lead = min(lead * 2, _MAX_LEAD)  # late again: ask further ahead

    async def _campaign_gate(self, status: str, attempt_id: uuid.UUID) -> None:
        if status == "cancelled":
            async with self._serial(), self.maker() as session:
                found = (await session.execute(_STATE, {"id": attempt_id})).first()
                if found is not None:
                    await self._move(session, attempt_id, found[0], AttemptState.CANCELLED, {})
                    await session.commit()
            raise _Done
        if status in ("paused", "draft"):
            raise RetryLater(self.config.paused_retry, f"campaign {status}")

    async def _move(
        self,
        session: AsyncSession,
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
        result = await session.execute(
            update(AttemptRow)
            .where(AttemptRow.id == attempt_id, AttemptRow.state.in_(_SOURCES[target]))
            .values(state=target.value, updated_at=self.clock(), **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- the reservation -----------------------------------------------------------------
    async def _reserve(
        self,
        attempt_id: uuid.UUID,
        case_id: uuid.UUID,
        slot: pacing.Slot | None,
        *,
        may_defer: bool = False,
    ) -> Reserved | None:
        """One transaction: lock the case (with its portfolio's active strategy), read the
        attempt and its campaign, the case's fresh facts, decide, and reserve, defer or
        refuse. Deferred: the engine refuses only for now (its next-allowed instant comes
        soon and inside the campaign's window today, e.g. a text planned two hours after a
        call that went out late): the attempt's send time moves there and the job waits."""
        async with self.maker() as session:
            locked = await lock_cases(session, [case_id])
            now = self.clock()
            attempt = (await session.execute(_ATTEMPT, {"id": attempt_id})).first()
            if attempt is None or AttemptState(attempt.state) not in DISPATCHABLE:
                return None
            if attempt.status == "cancelled":
                await self._move(session, attempt_id, attempt.state, AttemptState.CANCELLED, {})
                await session.commit()
                return None
            if attempt.status in ("paused", "draft"):
                await session.rollback()
                raise RetryLater(self.config.paused_retry, f"campaign {attempt.status}")
            facts = (
                await load_facts(
                    session, [case_id], now, exclude_attempt=attempt_id, case_rows=locked
                )
            ).get(case_id)
            strategy_id, profile, country = locked[0][12:15] if locked else (None, None, None)
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
                await self._refuse(session, attempt, [{"rule": rule, "message": why}], {})
                await session.commit()
                self._count_refusal([rule])
                return None
            strategy_row, cs = found
            decision = decide(facts.case, facts.history, now, cs)
            action = decision.allowed_for(cp_id, channel)
            if action is None:
                refusal = decision.refusal_for(cp_id, channel)
                until = (
                    self._deferral(decision, refusal, attempt, cp_id, now) if may_defer else None
                )
                if until is not None and refusal is not None:
                    moved = await session.execute(
                        update(AttemptRow)
                        .where(
                            AttemptRow.id == attempt_id,
                            AttemptRow.state.in_([s.value for s in DISPATCHABLE]),
                        )
                        .values(at=until, not_before=until, updated_at=now)
                    )
                    await session.commit()
                    if not moved.rowcount:  # type: ignore[attr-defined]
                        return None
                    why = ", ".join(refusal.rules)
                    log.info("attempt %s deferred to %s (%s)", attempt_id, until.isoformat(), why)
                    raise RetryLater(until - now, f"deferred by {why}")
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
                extra = {"profile": decision.profile, "strategy_version_id": strategy_row.id}
                await self._refuse(session, attempt, docs, extra)
                await session.commit()
                self._count_refusal([str(d["rule"]) for d in docs])
                log.info("attempt %s refused at dispatch: %s", attempt_id, docs[0]["rule"])
                return None
            if attempt.campaign is not None and attempt.max_in_progress is not None:
                await pacing.lock_campaign(session, attempt.campaign)
                if await pacing.in_progress(session, attempt.campaign) >= attempt.max_in_progress:
                    await session.rollback()
                    raise RetryLater(self.config.busy_retry, "in-progress limit reached")
            party = next(p for p in facts.case.parties if p.id == action.party_id)
            point = next(c for c in party.contact_points if c.id == cp_id)
            values = {
                "at": now,
                "reserved_at": now,
                "strategy_version_id": strategy_row.id,
                "profile": decision.profile,
                "allowed_by": action.allowed_by,
                "disclosure": action.disclosure.value,
                "voicemail_disclosure": action.voicemail_disclosure.value,
                "template_key": action.template_key,
                "append_opt_out": action.append_opt_out,
            }
            if not await self._move(
                session, attempt_id, attempt.state, AttemptState.RESERVED, values
            ):
                await session.rollback()
                return None
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
                await self._move(
                    session,
                    attempt_id,
                    AttemptState.RESERVED.value,
                    AttemptState.FAILED,
                    {"error_code": code, "error_message": str(exc)[:2000]},
                )
                await session.commit()
                log.warning("attempt %s failed closed: %s", attempt_id, code)
                return None
            await session.commit()
            return Reserved(attempt_id, channel, point.value, rendered, slot)

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

    async def _refuse(
        self,
        session: AsyncSession,
        attempt: Any,
        reasons: list[dict[str, Any]],
        extra: dict[str, Any],
    ) -> None:
        await self._move(
            session,
            attempt.id,
            attempt.state,
            AttemptState.REFUSED,
            {"refusal": {"reasons": reasons}, **extra},
        )

    def _count_refusal(self, rules: list[str]) -> None:
        if self.metrics is not None:
            self.metrics.record_refusals(rules)

    def _count_provider_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_provider_error(kind)

    # --- the provider call ---------------------------------------------------------------
    async def _send(self, r: Reserved, job: Job) -> None:
        try:
            ref = await self._call_provider(r)
        except AmbiguousError as exc:
            self._count_provider_error("ambiguous")
            await self._record(r, AttemptState.UNKNOWN, error=("ambiguous", str(exc)))
        except PermanentError as exc:
            self._count_provider_error(exc.kind)
            await self._record(
                r, AttemptState.FAILED, error=(f"{exc.kind}:{exc.code or ''}", str(exc)), perm=exc
            )
        except TransientError as exc:
            self._count_provider_error("transient")
            await self._record(r, AttemptState.NOT_SENT, error=("transient", str(exc)), job=job)
        except Exception as exc:  # anything else: the provider may have acted
            log.exception("attempt %s: unexpected provider failure", r.attempt_id)
            await self._record(r, AttemptState.UNKNOWN, error=("unexpected", repr(exc)))
        else:
            await self._record_sent(r, ref)

    async def _call_provider(self, r: Reserved) -> ProviderRef:
        aid = str(r.attempt_id)
        if r.channel is Channel.VOICE:
            return await self.telephony.place_call(CallRequest(aid, r.to, self.config.from_number))
        if r.channel is Channel.SMS:
            return await self.telephony.send_sms(SmsRequest(aid, r.to, r.rendered.body))
        if self.mailer is None:
            raise PermanentError("no mailer configured", kind=PermanentErrorKind.OTHER)
        return await self.mailer.send(
            EmailMessage(aid, r.to, r.rendered.subject or "", r.rendered.body)
        )

    async def _record_sent(self, r: Reserved, ref: ProviderRef) -> None:
        """The common case in one autocommitted UPDATE: still reserved -> sent with the
        provider's id. If a callback moved it first, the general path below applies."""
        now = self.clock()
        stmt = (
            update(AttemptRow)
            .where(AttemptRow.id == r.attempt_id, AttemptRow.state == AttemptState.RESERVED.value)
            .values(state=AttemptState.SENT.value, provider_sid=ref.id, sent_at=now, updated_at=now)
        )
        if self._autocommit is not None:
            async with self._autocommit.connect() as conn:
                done = (await conn.execute(stmt)).rowcount
        else:
            async with self._serial(), self.maker() as session:
                done = (await session.execute(stmt)).rowcount  # type: ignore[attr-defined]
                await session.commit()
        if not done:
            await self._record(r, AttemptState.SENT, ref=ref)

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
            if ref is not None:
                attempt.provider_sid = attempt.provider_sid or ref.id
                attempt.sent_at = attempt.sent_at or now
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
        fresh = AttemptRow(
            id=uuid.uuid4(),
            case_id=attempt.case_id,
            party_id=attempt.party_id,
            contact_point_id=attempt.contact_point_id,
            channel=attempt.channel,
            state=AttemptState.PLANNED.value,
            result="pending",
            planned_at=now,
            at=when,
            not_before=when,
            campaign_id=attempt.campaign_id,
            updated_at=now,
            notes=f"retry of {attempt.id} after a transient provider error",
        )
        session.add(fresh)
        await session.flush()
        payload = {**job.payload, "transient_retries": tries + 1}
        await outbox.add_jobs(
            session,
            [Job(str(fresh.id), str(attempt.case_id), job.campaign_id, when, payload)],
            now,
        )


_TICK = timedelta(milliseconds=20)
_MAX_LEAD = timedelta(seconds=1)
_LOOK = (
    select(
        AttemptRow.state,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.pacing_cps,
        CampaignRow.max_in_progress,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .where(AttemptRow.id == bindparam("id"))
)
_ATTEMPT = (
    select(
        AttemptRow.id,
        AttemptRow.state,
        AttemptRow.channel,
        AttemptRow.contact_point_id,
        CampaignRow.id.label("campaign"),
        CampaignRow.status,
        CampaignRow.max_in_progress,
        CampaignRow.window,
    )
    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
    .where(AttemptRow.id == bindparam("id"))
)
# for each state, the states that may move to it
_SOURCES = {t: [s.value for s in AttemptState if can_advance(s, t)] for t in AttemptState}
_STATE = select(AttemptRow.state).where(AttemptRow.id == bindparam("id"))


class _Done(Exception):
    """Internal: the job needs nothing more (its attempt was cancelled)."""
