"""Consuming: each job handed to the handler, each message settled after its jobs.

One job a message: return -> ack; `RetryLater` -> republish to a delay queue, then ack;
`PermanentJobError` -> reject (dead-lettered); anything else -> nack with requeue,
counted by the quorum queue's delivery limit. A message is acked only after its handler
returned, so a connection lost in between brings it back flagged as redelivered.

A bundle hands each job over as its own `Delivery` (at most `concurrency` handler calls
over all messages) and is settled once every job is: retries go to the delay queues,
bundled again; a rejected job alone to the dead letters; a job that failed otherwise alone
to the work queue, where the single-job path counts its deliveries; then the bundle is
acked (nacked with requeue if any of that is not confirmed). A bundle delivered again (a
worker died holding it) is split, each job republished alone and flagged, so that one
poison job cannot take the others to the dead letters. Handlers act at most once per
attempt id, so a job handled before its bundle came back is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from adapters.errors import PermanentJobError, QueueError, RetryLater
from adapters.ports import Delivery, Job, JobHandler
from adapters.rabbitmq.messages import (
    BUNDLE_CONTENT_TYPE,
    DELIVERIES_HEADER,
    DELIVERY_LIMIT,
    REJECTED,
    RETRIES_HEADER,
    Item,
    int_header,
    parse_bundle,
)

if TYPE_CHECKING:
    from adapters.rabbitmq.queue import Outgoing, RabbitJobQueue

log = logging.getLogger(__name__)

SETTLE_ERRORS = (*CONNECTION_EXCEPTIONS, asyncio.InvalidStateError)
DONE, RETRY, DEAD, FAILED = "done", "retry", "dead", "failed"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str  # DONE, RETRY, DEAD, FAILED
    job: Job  # for RETRY, with its new not_before


async def settle(action: Any, message: AbstractIncomingMessage) -> None:
    """Ack/nack/reject; if the channel is gone the broker redelivers, flagged."""
    try:
        await action
    except SETTLE_ERRORS as exc:
        log.warning(
            "could not settle message %s (%r): the broker will redeliver it",
            message.message_id,
            exc,
        )


class Consumer:
    """The message callback of one `RabbitJobQueue.consume`; republishes through it."""

    def __init__(
        self,
        queue: RabbitJobQueue,
        handler: JobHandler,
        concurrency: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.clock = clock
        self.slots = asyncio.Semaphore(concurrency)  # handler calls, all messages together
        self.inflight: set[asyncio.Task[Any]] = set()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq cancels its consumer tasks when the channel closes; a handler stopped
        # halfway (say, between reserving an attempt and dialing) is worse than one that
        # finishes and fails to ack, which the broker answers with a flagged redelivery.
        # So the handler runs in a task of ours, shielded, and `drain` waits for it.
        task = asyncio.create_task(self._guarded(message))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        await asyncio.shield(task)

    async def drain(self, grace: float) -> None:
        """Let the messages held finish within `grace` seconds; past it they are cancelled
        (unsettled: the broker redelivers them, flagged)."""
        if self.inflight:
            _, pending = await asyncio.wait(set(self.inflight), timeout=grace)
            for task in pending:
                task.cancel()

    async def _guarded(self, message: AbstractIncomingMessage) -> None:
        """`_process`, and a message it could not settle for an unexpected error goes back
        to the queue (a bundle then comes back split; the delivery limit ends a loop)
        instead of staying unacked, which would hold a prefetch slot for good."""
        try:
            await self._process(message)
        except Exception:
            log.exception("message %s could not be handled", message.message_id)
            if not message.processed:
                await settle(message.nack(requeue=True), message)

    async def _run(self, delivery: Delivery) -> Verdict:
        """Hand one job to the handler (within the concurrency limit); its verdict."""
        job = delivery.job
        async with self.slots:
            try:
                await self.handler(delivery)
            except RetryLater as verdict:
                later = replace(job, not_before=max(job.not_before, self.clock() + verdict.delay))
                return Verdict(RETRY, later)
            except PermanentJobError as exc:
                log.error("job %s dead-lettered: %s", job.attempt_id, exc)
                return Verdict(DEAD, job)
            except Exception:
                log.exception("job %s failed; it will be redelivered", job.attempt_id)
                return Verdict(FAILED, job)
        return Verdict(DONE, job)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        if message.content_type == BUNDLE_CONTENT_TYPE:
            await self._process_bundle(message)
            return
        try:
            job = Job.from_json(message.body)
        except ValueError as exc:
            log.error("malformed job %s dead-lettered: %s", message.message_id, exc)
            await settle(message.reject(requeue=False), message)
            return
        headers = message.headers or {}
        retries = int_header(headers, RETRIES_HEADER)
        if job.not_before > self.clock():
            # A long wait hops through several delay queues before it is due.
            await self._republish_then_ack(message, self.queue.routed([Item(job, retries)]))
            return
        prior = int_header(headers, DELIVERIES_HEADER)  # in bundles, before this message
        count = prior + int_header(headers, "x-delivery-count") + 1
        delivery = Delivery(
            job=job,
            redelivered=bool(message.redelivered) or prior > 0,
            delivery_count=count,
            retries=retries,
        )
        verdict = await self._run(delivery)
        if verdict.kind == DONE:
            await settle(message.ack(), message)
        elif verdict.kind == RETRY:
            later = [Item(verdict.job, retries + 1)]
            await self._republish_then_ack(message, self.queue.routed(later))
        elif verdict.kind == DEAD:
            await settle(message.reject(requeue=False), message)
        elif prior and count > self.queue.settings.delivery_limit:
            # The broker counts this message's deliveries only: the earlier ones (in a
            # bundle) are ours to count, and past the limit ours to dead-letter.
            buried = self.queue.buried([Item(job, retries)], DELIVERY_LIMIT, None)
            await self._republish_then_ack(message, [buried])
        else:
            await settle(message.nack(requeue=True), message)

    async def _process_bundle(self, message: AbstractIncomingMessage) -> None:
        try:
            items = parse_bundle(message.body)
        except ValueError as exc:
            log.error("malformed bundle %s dead-lettered: %s", message.message_id, exc)
            await settle(message.reject(requeue=False), message)
            return
        delivered = int_header(message.headers or {}, "x-delivery-count")
        if message.redelivered or delivered:
            # A worker died holding it (or could not settle it): every job goes on alone,
            # flagged, so that one poison job cannot take the others down with it.
            prior = max(delivered, 1)
            split = [Item(item.job, item.retries, prior) for item in items]
            await self._republish_then_ack(message, self.queue.routed(split, size=1))
            return
        now = self.clock()
        due = [item for item in items if item.job.not_before <= now]
        outgoing = [item for item in items if item.job.not_before > now]  # hop again
        verdicts = await asyncio.gather(
            *(self._run(Delivery(job=item.job, retries=item.retries)) for item in due)
        )
        buried: list[Outgoing] = []
        failed: list[Outgoing] = []
        for item, verdict in zip(due, verdicts, strict=True):
            if verdict.kind == RETRY:
                outgoing.append(Item(verdict.job, item.retries + 1))
            elif verdict.kind == DEAD:
                buried.append(self.queue.buried([item], REJECTED, None))
            elif verdict.kind == FAILED:  # alone, counted on: the single-job path
                failed.append(self.queue.to_work(Item(item.job, item.retries, 1)))
        await self._republish_then_ack(message, [*self.queue.routed(outgoing), *buried, *failed])

    async def _republish_then_ack(
        self, message: AbstractIncomingMessage, messages: Sequence[Outgoing]
    ) -> None:
        """Ack once these are confirmed; if they are not, nack with requeue (the jobs come
        back flagged as redelivered: handlers act at most once per attempt)."""
        if messages:
            try:
                await self.queue.publish_messages(messages)
            except (QueueError, *SETTLE_ERRORS) as exc:
                log.warning(
                    "could not republish from %s (%r); requeueing it", message.message_id, exc
                )
                await settle(message.nack(requeue=True), message)
                return
        await settle(message.ack(), message)
