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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from dialer.attempt_state import AttemptState, advance
from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow, Portfolio
from dialer.dispatch import outbox, pacing
from dialer.dispatch.facts import load_facts
from dialer.dispatch.messages import MessageFacts, Rendered, Sender, language_for, render_for
from dialer.dispatch.planner import StrategyCache
from dialer.observability.metrics import Metrics
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
    transient_retries: int = 3
    transient_delay: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Reserved:
    attempt_id: uuid.UUID
    channel: Channel
    to: str
    rendered: Rendered
    slot: datetime | None


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
        with contextlib.suppress(_Done):
            await self._handle(delivery)

    async def _handle(self, delivery: Delivery) -> None:
        job = delivery.job
        try:
            attempt_id = uuid.UUID(job.attempt_id)
            case_id = uuid.UUID(job.case_id)
        except ValueError as exc:
            raise PermanentJobError(f"malformed ids in job {job.attempt_id!r}") from exc
        async with self.maker() as session:
            row = (
                await session.execute(
                    select(AttemptRow.state, CampaignRow)
                    .outerjoin(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
                    .where(AttemptRow.id == attempt_id)
                )
            ).first()
            busy = (
                row is not None
                and row[1] is not None
                and row[1].max_in_progress is not None
                and await pacing.in_progress(session, row[1].id) >= row[1].max_in_progress
            )
        if row is None:
            log.warning("job %s names no attempt: nothing to do", attempt_id)
            return
        state, campaign = AttemptState(row[0]), row[1]
        if state not in DISPATCHABLE:
            return  # handled already: a duplicate or a redelivery never dials again
        if self.metrics is not None:
            lag = (self.clock() - job.not_before).total_seconds()
            self.metrics.set_queue_lag(max(lag, 0.0))
        slot: datetime | None = None
        if campaign is not None:
            await self._campaign_gate(campaign, attempt_id)
            if busy:  # checked again under the campaign's lock before reserving
                raise RetryLater(self.config.busy_retry, "in-progress limit reached")
            async with self._serial():
                taken = await pacing.take_slot(
                    self.maker,
                    campaign.id,
                    campaign.pacing_cps,
                    self.clock,
                    self.config.max_slot_wait,
                )
            if taken.at is None:
                wait = taken.next_free - taken.now - self.config.max_slot_wait
                raise RetryLater(max(wait, timedelta(seconds=0.5)), "paced")
            slot = taken.at
        async with self._serial():
            reserved = await self._reserve(attempt_id, case_id, job, slot)
        if reserved is None:
            return
        if reserved.slot is not None:
            pause = (reserved.slot - self.clock()).total_seconds()
            if pause > 0:
                await self.sleep(pause)
        await self._send(reserved, job)

    async def _campaign_gate(self, campaign: CampaignRow, attempt_id: uuid.UUID) -> None:
        if campaign.status == "cancelled":
            async with self._serial(), self.maker() as session:
                attempt = await session.get(AttemptRow, attempt_id, populate_existing=True)
                if attempt is not None and move(attempt, AttemptState.CANCELLED):
                    attempt.updated_at = self.clock()
                    await session.commit()
            raise _Done
        if campaign.status in ("paused", "draft"):
            raise RetryLater(self.config.paused_retry, f"campaign {campaign.status}")

    # --- the reservation -----------------------------------------------------------------
    async def _reserve(
        self, attempt_id: uuid.UUID, case_id: uuid.UUID, job: Job, slot: datetime | None
    ) -> Reserved | None:
        async with self.maker() as session:
            if self.postgres:
                await session.execute(
                    select(CaseRow.id).where(CaseRow.id == case_id).with_for_update()
                )
            attempt = await session.get(AttemptRow, attempt_id, populate_existing=True)
            if attempt is None or AttemptState(attempt.state) not in DISPATCHABLE:
                return None
            now = self.clock()
            campaign = (
                await session.get(CampaignRow, attempt.campaign_id, populate_existing=True)
                if attempt.campaign_id
                else None
            )
            if campaign is not None and campaign.status == "cancelled":
                move(attempt, AttemptState.CANCELLED)
                attempt.updated_at = now
                await session.commit()
                return None
            if campaign is not None and campaign.status in ("paused", "draft"):
                await session.rollback()
                raise RetryLater(self.config.paused_retry, f"campaign {campaign.status}")
            facts = (await load_facts(session, [case_id], now, exclude_attempt=attempt_id)).get(
                case_id
            )
            portfolio = await session.get(Portfolio, facts.case.portfolio) if facts else None
            version_id = (
                (facts.strategy_version_id or portfolio.active_strategy_id)
                if facts and portfolio
                else None
            )
            found = (
                await self.strategies.get(session, version_id, portfolio.profile)
                if version_id and portfolio
                else None
            )
            channel = Channel(attempt.channel)
            cp_id = str(attempt.contact_point_id)
            if facts is None or found is None or portfolio is None:
                gone = facts is None or portfolio is None
                rule = "case.gone" if gone else "strategy.none_active"
                why = "the case is gone" if gone else "the portfolio has no active strategy"
                self._refuse(attempt, [{"rule": rule, "message": why}])
                attempt.updated_at = now
                await session.commit()
                self._count_refusal([rule])
                return None
            strategy_row, cs = found
            decision = decide(facts.case, facts.history, now, cs)
            action = decision.allowed_for(cp_id, channel)
            if action is None:
                refusal = decision.refusal_for(cp_id, channel)
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
                self._refuse(attempt, docs)
                attempt.profile = decision.profile
                attempt.strategy_version_id = strategy_row.id
                attempt.updated_at = now
                await session.commit()
                self._count_refusal([str(d["rule"]) for d in docs])
                log.info("attempt %s refused at dispatch: %s", attempt_id, docs[0]["rule"])
                return None
            if campaign is not None and campaign.max_in_progress is not None:
                await pacing.lock_campaign(session, campaign.id)
                if await pacing.in_progress(session, campaign.id) >= campaign.max_in_progress:
                    await session.rollback()
                    raise RetryLater(self.config.busy_retry, "in-progress limit reached")
            party = next(p for p in facts.case.parties if p.id == action.party_id)
            point = next(c for c in party.contact_points if c.id == cp_id)
            move(attempt, AttemptState.RESERVED)
            attempt.at = now
            attempt.reserved_at = now
            attempt.updated_at = now
            attempt.strategy_version_id = strategy_row.id
            attempt.profile = decision.profile
            attempt.allowed_by = action.allowed_by
            attempt.disclosure = action.disclosure.value
            attempt.voicemail_disclosure = action.voicemail_disclosure.value
            attempt.template_key = action.template_key
            attempt.append_opt_out = action.append_opt_out
            try:
                rendered = render_for(
                    self.templates,
                    MessageFacts(
                        channel=channel,
                        role=party.role,
                        name=party.name,
                        title=party.title,
                        language=language_for(portfolio.country),
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
                move(attempt, AttemptState.FAILED)
                disclosure = isinstance(exc, DisclosureError)
                attempt.error_code = "disclosure" if disclosure else "template"
                attempt.error_message = str(exc)[:2000]
                await session.commit()
                log.warning("attempt %s failed closed: %s", attempt_id, attempt.error_code)
                return None
            await session.commit()
            return Reserved(attempt_id, channel, point.value, rendered, slot)

    @staticmethod
    def _refuse(attempt: AttemptRow, reasons: list[dict[str, Any]]) -> None:
        move(attempt, AttemptState.REFUSED)
        attempt.refusal = {"reasons": reasons}

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
            await self._record(r, AttemptState.SENT, ref=ref)

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


class _Done(Exception):
    """Internal: the job needs nothing more (its attempt was cancelled)."""
