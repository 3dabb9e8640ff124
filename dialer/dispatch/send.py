"""Sending a reserved attempt: wait for its pacing slot, pass the fence (`fence.Fence`),
call the provider within the fence's send window, record what it said (`record`).

The provider's error decides the record: ambiguous -> unknown (the reconciler looks it
up; nothing dials it again), permanent -> failed and the contact point updated, transient
(certainly not acted on) -> tried again here after the wait it asks for, on a fresh slot
and a fresh fence, at most `create_attempts` times; then not_sent and planned again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

from adapters.errors import (
    AmbiguousError,
    NotConfiguredError,
    PermanentError,
    PermanentErrorKind,
    TransientError,
)
from adapters.ports import (
    CallRequest,
    EmailMessage,
    Job,
    Mailer,
    ProviderRef,
    SmsRequest,
    Telephony,
)
from dialer.dispatch import pacing
from dialer.dispatch.batcher import Batcher
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.fence import SEND_WINDOW, Fence
from dialer.dispatch.record import Recorder
from dialer.dispatch.redecide import Reservation
from dialer.domain.attempts import NO_TELEPHONY, AttemptState
from strategy.model import Channel

log = logging.getLogger(__name__)

TICK = timedelta(milliseconds=20)
ANY_WAIT = timedelta(days=1)
FENCE_TRIES = 3  # fences in a row too slow to dial on before the attempt is given up
LATE_TRIES = 3  # a reserved attempt takes the next free slot, however far


class Transmitter:
    """The send path of one worker, from a reservation to its record."""

    def __init__(
        self, ctx: WorkerContext, telephony: Telephony, mailer: Mailer | None, fence: Fence
    ) -> None:
        self.ctx = ctx
        self.telephony = telephony
        self.mailer = mailer
        self.fence = fence
        self.recorder = Recorder(ctx)
        c = ctx.config
        # jobs whose slots come together are fenced in one statement, at once
        self.fencer: Batcher[tuple[Reservation, bool], bool] = Batcher(
            fence.check, c.batch_size, 0.0, c.batches
        )

    async def send(self, r: Reservation, job: Job) -> None:
        """Slot, fence, provider call, record: at most `create_attempts` calls, each only
        after a fence that passed."""
        if r.slot is not None:
            r = await self.wait_for_slot(r)
        tries = late = 0
        while True:
            on_time = self._on_time(r)
            send_by = await self._fence(r, job, again=tries > 0 or late > 0)
            if send_by is None:
                return
            await self._until_slot(r)  # the fence went ahead of it (`wait_for_slot`)
            pushed = r.slot is not None and r.slot.pushed
            if on_time and pushed and not self._on_time(r) and late < LATE_TRIES:
                # The fence made a dial late for a slot of a campaign at its rate (below
                # it, a late dial crowds nothing: `pacing`): a fresh slot, a fresh fence.
                late += 1
                self.ctx.late += 1
                r = await self._next_slot(r)
                continue
            tries += 1
            try:
                ref = await self._call_provider(r, send_by)
            except TransientError as exc:
                self.ctx.count_provider_error("transient")
                if tries < self.ctx.config.create_attempts:
                    # certainly not acted on: tried again, on a fresh slot and fence
                    log.info("attempt %s: %s; tried again", r.attempt_id, exc)
                    r = await self._pace_retry(r, exc, tries)
                    continue
                error = ("transient", str(exc))
                await self.recorder.record(r, AttemptState.NOT_SENT, error=error, job=job)
            except Exception as exc:
                await self._record_failure(r, exc)
            else:
                await self.recorder.record_sent(r, ref)
            return

    async def _record_failure(self, r: Reservation, exc: Exception) -> None:
        """A create that failed other than transiently."""
        record = self.recorder.record
        if isinstance(exc, AmbiguousError):
            self.ctx.count_provider_error("ambiguous")
            await record(r, AttemptState.UNKNOWN, error=("ambiguous", str(exc)))
        elif isinstance(exc, NotConfiguredError):  # nobody to dial through: final, no contact
            self.ctx.count_provider_error("not_configured")
            await record(r, AttemptState.NOT_SENT, error=(NO_TELEPHONY, str(exc)))
        elif isinstance(exc, PermanentError):
            self.ctx.count_provider_error(exc.kind)
            error = (f"{exc.kind}:{exc.code or ''}", str(exc))
            await record(r, AttemptState.FAILED, error=error, perm=exc)
        else:  # anything else: the provider may have acted
            log.error("attempt %s: unexpected provider failure", r.attempt_id, exc_info=exc)
            await record(r, AttemptState.UNKNOWN, error=("unexpected", repr(exc)))

    # --- pacing ----------------------------------------------------------------------------
    async def wait_for_slot(self, r: Reservation) -> Reservation:
        """Sleep until the slot, less the fence's lead (`send` fences, then waits out the
        rest). A dial that would start more than `pacing.LATE_LIMIT`
        after its slot gives the slot up and takes the next free one, however far (one
        statement), so late dials never crowd a one-second window past the rate. Only
        after `LATE_TRIES` late slots in a row does it dial late on one that was free when
        taken (the campaign below its rate: it crowds nothing but the slots after it)."""
        ctx = self.ctx
        slot = r.slot
        assert slot is not None and slot.at is not None and r.campaign is not None
        at = slot.at
        tries = 0
        while True:
            pause = (at - ctx.leads.fence_ahead - ctx.clock()).total_seconds()
            if pause > 0:
                await ctx.sleep(pause)
            if ctx.clock() - at <= pacing.LATE_LIMIT:
                return replace(r, slot=slot)  # the slot it holds now, not the stale one
            if tries >= LATE_TRIES and not slot.pushed:
                return replace(r, slot=slot)
            tries += 1
            ctx.late += 1
            lead = max(ctx.leads.total, TICK)
            async with ctx.serial():
                slot = await pacing.take_slot(
                    ctx.maker, r.campaign, r.cps, ctx.clock, ANY_WAIT, lead
                )
            assert slot.at is not None
            at = slot.at

    def _on_time(self, r: Reservation) -> bool:
        """Within `pacing.LATE_LIMIT` of its slot (or no slot): `wait_for_slot`'s rule,
        checked again after the fence, whose time counts too."""
        slot = r.slot
        return slot is None or slot.at is None or self.ctx.clock() - slot.at <= pacing.LATE_LIMIT

    async def _until_slot(self, r: Reservation) -> None:
        if r.slot is not None and r.slot.at is not None:
            pause = (r.slot.at - self.ctx.clock()).total_seconds()
            if pause > 0:
                await self.ctx.sleep(pause)

    async def _next_slot(self, r: Reservation) -> Reservation:
        ctx = self.ctx
        assert r.campaign is not None
        async with ctx.serial():
            slot = await pacing.take_slot(
                ctx.maker, r.campaign, r.cps, ctx.clock, ANY_WAIT, max(ctx.leads.total, TICK)
            )
        return await self.wait_for_slot(replace(r, slot=slot))

    async def _pace_retry(self, r: Reservation, exc: TransientError, tries: int) -> Reservation:
        """Before a create is tried again: the wait it asked for (`Retry-After`, capped),
        or an exponential one; then a fresh pacing slot, like any call."""
        cap = self.ctx.config.create_retry_wait.total_seconds()
        wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (tries - 1)
        await self.ctx.sleep(min(max(wait, 0.0), cap))
        if r.campaign is None or not r.cps or r.slot is None or r.slot.at is None:
            return r
        return await self._next_slot(r)

    # --- the fence -------------------------------------------------------------------------
    async def _fence(self, r: Reservation, job: Job, *, again: bool) -> float | None:
        """The `time.monotonic()` instant until which this worker may start the provider
        request: the attempt moved to `dialing` under its lease (or, `again`, stayed there)
        with no protective fact committed since the decision, and `SEND_WINDOW` from the
        instant the fence was asked for. None: dial nothing (a lost lease is the
        reconciler's; a protective fact is recorded here)."""
        for _ in range(FENCE_TRIES):
            fenced_at, start = self.ctx.clock(), time.monotonic()
            if not await self.fencer.submit((r, again)):
                await self._fence_failed(r)
                return None
            self.ctx.leads.fenced(self.ctx.clock() - fenced_at)
            if self.ctx.clock() - fenced_at <= SEND_WINDOW:
                return start + SEND_WINDOW.total_seconds()
            again = True  # too slow to dial on that fence: fence once more
        log.warning("attempt %s: no fence within %s; not dialled", r.attempt_id, SEND_WINDOW)
        # certainly not sent: not_sent, and planned again like a transient failure
        error = ("fence", "no timely fence")
        await self.recorder.record(r, AttemptState.NOT_SENT, error=error, job=job)
        return None

    async def _fence_failed(self, r: Reservation) -> None:
        """A protective fact stopped the fence: a reserved attempt is refused (by the
        fence); one dialing after a retry becomes not_sent (certainly not acted on)."""
        stopped = await self.fence.refuse_if_blocked(r)
        if stopped is None:
            return  # the lease was taken: the reconciler's
        state, rules = stopped
        if state == AttemptState.DIALING.value:
            error = ("fence", ", ".join(rules))
            await self.recorder.record(r, AttemptState.NOT_SENT, error=error)
        self.ctx.count_refusal(rules)
        log.info("attempt %s refused at the fence: %s", r.attempt_id, rules[0])

    # --- the provider call -----------------------------------------------------------------
    async def _call_provider(self, r: Reservation, send_by: float) -> ProviderRef:
        """The request, which must leave by `send_by` (the fence's send window): the
        adapter checks that last of all, just before it sends."""
        aid = str(r.attempt_id)
        if r.channel is Channel.VOICE:
            request = CallRequest(
                aid,
                r.to,
                self.ctx.config.from_number,
                send_by=send_by,
                machine_detection=r.machine_detection,
            )
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
