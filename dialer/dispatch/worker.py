"""The dispatch worker: one queued attempt -> at most one provider call.

Deliveries are handled one by one through the queue's handler interface; the database
work is group-committed (`dialer.dispatch.batcher`): the jobs that arrive together are
reserved in one batch (`reserve`), fenced in one statement (`fence`) and their `sent`
records written in one statement (`record`). Each job keeps its own outcome (a refusal,
a deferral, a retry, an error): one failing job does not sink the others.

1. reserve: decide again on fresh facts under the case's lock (`redecide`), keep within
   the campaign's in-progress limit and take a pacing slot; the reservation carries a
   lease (this worker, until `lease` from now).
2. send: wait for the slot, pass the fence (reserved -> dialing only under the lease and
   with no protective fact committed since the decision), call the provider, record.
The job is acknowledged only after its record is committed. Every state change goes
through `dialer.domain.attempts.advance`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.errors import PermanentJobError, RetryLater
from adapters.ports import Delivery, Mailer, Telephony
from adapters.templates import TemplateRegistry, default_registry
from dialer.db.errors import database_unavailable
from dialer.dispatch.batcher import Batcher
from dialer.dispatch.context import Sleep, WorkerConfig, WorkerContext
from dialer.dispatch.fence import Fence
from dialer.dispatch.redecide import Gate
from dialer.dispatch.reserve import Again, JobItem, Outcome, Reserver
from dialer.dispatch.send import Transmitter
from dialer.observability.metrics import Metrics

log = logging.getLogger(__name__)


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
        config = config or WorkerConfig()
        self.maker = maker
        self.ctx = WorkerContext(maker, clock, config, sleep, metrics)
        self.reserver = Reserver(self.ctx, Gate(self.ctx, templates or default_registry()))
        self.fence = Fence(self.ctx)
        self.transmitter = Transmitter(self.ctx, telephony, mailer, self.fence)
        self._reserving: Batcher[JobItem, Outcome] = Batcher(
            self.reserver.reserve_batch, config.batch_size, config.batch_linger, config.batches
        )

    @property
    def metrics(self) -> Metrics | None:
        """Where the worker counts refusals, provider errors and queue lag."""
        return self.ctx.metrics

    @metrics.setter
    def metrics(self, metrics: Metrics | None) -> None:
        self.ctx.metrics = metrics

    @property
    def late(self) -> int:
        """Dials that came too late for their slot and took another."""
        return self.ctx.late

    def batch_counts(self) -> tuple[int, int, int, int, int]:
        """Reservation batches and the jobs they held; `sent` record batches and theirs;
        dials that came too late for their slot."""
        r, s = self._reserving, self.transmitter.recorder.batcher
        return r.batches, r.items, s.batches, s.items, self.ctx.late

    async def __call__(self, delivery: Delivery) -> None:
        try:
            await self._handle(delivery)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # Wait and come back rather than be redelivered at once: every redelivery
            # would fail alike and spend the delivery limit. What was committed stays
            # (a reserved attempt is never dialled again; the reconciler settles it).
            config = self.ctx.config
            delay = min(
                config.outage_retry * 2 ** min(delivery.retries, 6), config.outage_retry_max
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
            item = JobItem(
                delivery,
                uuid.UUID(job.attempt_id),
                uuid.UUID(job.case_id),
                may_defer=delivery.retries < self.ctx.config.max_deferrals,
            )
        except ValueError as exc:
            raise PermanentJobError(f"malformed ids in job {job.attempt_id!r}") from exc
        while True:
            outcome = await self._reserving.submit(item)
            if not isinstance(outcome, Again):
                break
            if outcome.pause:  # the attempt's row was busy (the relay marks it queued)
                await asyncio.sleep(outcome.pause)
        if outcome is not None:
            await self.transmitter.send(outcome, job)
