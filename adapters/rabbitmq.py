"""The RabbitMQ job queue (aio-pika): durable quorum queues, confirms, bundles, delays, dead
letters.

Topology, all names under a namespace prefix `ns` and declared idempotently at start:

    {ns}.work  (direct) --job-->  {ns}.jobs   quorum, x-delivery-limit, dead-letters to
                                              {ns}.dead at-least-once
    {ns}.delay (direct) --<n>s--> {ns}.delay.<n>s  quorum, x-message-ttl = n s, dead-letters
                                              back to {ns}.work with routing key `job`
    {ns}.dead  (direct) --dead--> {ns}.dead-letters  quorum, browsed and replayed by operators

Jobs travel in bundles: `publish` groups them by destination (the work exchange for a job
due now, else the delay bucket its own wait picks) and packs each group into messages of
up to `bundle_size` jobs (content type `application/vnd.dialer.job-bundle+json`, body
`{"v": 1, "jobs": [job document, ...], "retries": [...]}`); a group of one, or
`bundle_size=1`, is a single-job message in the original format (`application/json`, a
`Job.to_json` body, the retry count in a header), which is always consumed too.

What a job costs, one a message -> bundles of 100 (persistent, quorum queues, confirms;
2 shared cores): publishing 0.195 -> 0.007 ms of client CPU, consuming 0.153 -> 0.014 ms
(a handler doing nothing), the broker's CPU to take it 0.14 -> 0.006 ms (beam.smp over
`bench/plan.py --cases 100000`). Past that, the client's time goes to the job documents
(`to_document`, the JSON), no longer to the AMQP frames.

A job whose `not_before` is in the future goes to the longest delay queue not longer than
its wait (queue-level TTL: per-message TTLs only expire at the head of a queue) and hops
until due, so it is never handed over early and is late by at most the shortest bucket.
A bundle arriving from a delay queue hands over its due jobs and sends the others to wait
again, grouped anew.

Handler verdicts, one job a message: return -> ack; `RetryLater` -> publish to a delay
queue, then ack; `PermanentJobError` -> reject without requeue (dead-lettered); anything
else -> nack with requeue, counted by the quorum queue's delivery limit, past which the
broker dead-letters the message. A message is acked only after its handler returned: a
connection lost in between makes the broker redeliver it with the `redelivered` flag set.

A bundle hands each job to the handler as its own `Delivery` (at most `concurrency`
handler calls at a time over all messages) and is settled once every job is: the jobs to
retry are published (confirmed) to the delay queues, bundled again; a `PermanentJobError`
job goes alone to the dead letters (reason "rejected"); a job that failed otherwise is
published alone to the work queue, where the single-job path redelivers it, counting the
bundle's delivery against the delivery limit (past it, dead-lettered as
"delivery_limit"); then the bundle is acked. If any of that is not confirmed the bundle is
nacked with requeue. A bundle delivered again (a worker died holding it, or could not
settle it) is split: each job republished alone, flagged as redelivered, then the bundle
acked, so that a poison job that kills its process cannot take the others to the dead
letters with it. Handlers act at most once per attempt id, so a job handled before its
bundle came back is harmless. `close()` lets the bundles a worker holds finish, every
job of them (the prefetch's worth: two bundles at the defaults), within `shutdown_grace`;
past it their messages go back to the queue unsettled and come back split.

The prefetch (see `RabbitJobQueue.prefetch`) counts messages: `concurrency` for one job a
message, enough bundles to fill `concurrency` plus one otherwise (2 for 64 and bundles of
100). It is fixed for the consumer's life: single-job messages (a split bundle, a job that
failed alone, an old-format backlog during a rolling upgrade) then run that many at a time
per worker. A prefetch that followed the jobs per message was tried and dropped: a
consumer raised to `concurrency` for singles takes that many bundles in one burst before
it can lower it again (6,400 jobs for one worker at the defaults), and swapping consumers
races `close()` and reconnects. `RabbitSettings.prefetch` (`DIALER_QUEUE_PREFETCH`) sets it
for such a backlog.

Rolling out bundles: consumers of this version read both formats, older ones dead-letter
a bundle as malformed (`replay_dead_letters` brings it back). Upgrade every worker before
the publishers use a `bundle_size` above 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika import DeliveryMode, Message
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
    HeadersType,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from adapters.errors import PermanentJobError, QueueError, RetryLater
from adapters.ports import DeadLetter, Delivery, Job, JobHandler, JobQueue

log = logging.getLogger(__name__)

JOB_ROUTING_KEY = "job"
DEAD_ROUTING_KEY = "dead"
RETRIES_HEADER = "x-dialer-retries"
REPLAYS_HEADER = "x-dialer-replays"
# Deliveries of a job in earlier messages (a bundle) before this single-job message; the
# handler then sees the job as redelivered, and the delivery limit counts them.
DELIVERIES_HEADER = "x-dialer-deliveries"
# Why a worker sent a message straight to the dead letters ("rejected", "delivery_limit").
REASON_HEADER = "x-dialer-dead-reason"
BUNDLE_HEADER = "x-dialer-bundle"  # jobs in a bundle (informative)
JOB_CONTENT_TYPE = "application/json"  # one job: `Job.to_json`
BUNDLE_CONTENT_TYPE = "application/vnd.dialer.job-bundle+json"
BUNDLE_FORMAT_VERSION = 1  # {"v": 1, "jobs": [job document, ...], "retries": [n, ...]?}
REJECTED, DELIVERY_LIMIT = "rejected", "delivery_limit"
_ZERO = timedelta(0)
# Browsing the dead letters returns each one to its queue, which a quorum queue counts as a
# delivery; RabbitMQ 4 defaults the limit to 20 and would then drop them (no DLX there).
DEAD_LETTER_BROWSE_LIMIT = 1_000_000
DEFAULT_DELAY_BUCKETS = (1, 5, 30, 120, 600, 3600)
_SETTLE_ERRORS = (*CONNECTION_EXCEPTIONS, asyncio.InvalidStateError)


@dataclass(frozen=True, slots=True)
class RabbitSettings:
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = "dialer"
    delivery_limit: int = 5
    delay_buckets: tuple[int, ...] = DEFAULT_DELAY_BUCKETS  # seconds
    heartbeat: int = 30
    reconnect_interval: float = 2.0
    connect_attempts: int = 8  # first connection only; afterwards the robust connection
    connect_max_wait: float = 15.0  # retries for ever
    connect_backoff: float = 0.5  # first wait; doubles up to connect_max_wait
    publish_timeout: float = 15.0  # per batch; a robust publish can hang while reconnecting
    publish_batch: int = 200  # messages whose confirms are awaited together
    bundle_size: int = 100  # jobs a message at most; 1: one job a message (the old format)
    prefetch: int | None = None  # messages a consumer holds; None: see `prefetch()`
    shutdown_grace: float = 30.0


def pick_delay_bucket(wait: timedelta, buckets: Sequence[int]) -> int:
    """The longest bucket not longer than `wait`, else the shortest: never early."""
    seconds = wait.total_seconds()
    fitting = [b for b in sorted(buckets) if b <= seconds]
    return fitting[-1] if fitting else min(buckets)


class RabbitJobQueue(JobQueue):
    def __init__(
        self, settings: RabbitSettings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        if not settings.delay_buckets or min(settings.delay_buckets) < 1:
            raise ValueError("delay buckets must be whole seconds >= 1")
        if settings.bundle_size < 1:
            raise ValueError("bundle_size must be at least 1")
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        ns = settings.namespace
        self.work_exchange_name = f"{ns}.work"
        self.delay_exchange_name = f"{ns}.delay"
        self.dead_exchange_name = f"{ns}.dead"
        self.work_queue_name = f"{ns}.jobs"
        self.dead_queue_name = f"{ns}.dead-letters"
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._work_exchange: AbstractRobustExchange | None = None
        self._delay_exchange: AbstractRobustExchange | None = None
        self._dead_exchange: AbstractRobustExchange | None = None
        # Strong references: a robust connection restores only the consumers it can reach.
        self._consume_channel: AbstractRobustChannel | None = None
        self._consume_queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None
        self._handler: JobHandler | None = None
        self._slots: asyncio.Semaphore | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self.reconnections = 0  # times the robust connection came back after a loss

    def delay_queue_name(self, seconds: int) -> str:
        return f"{self.settings.namespace}.delay.{seconds}s"

    # --- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect (retrying the first connection with a bounded backoff) and declare the
        topology. Raises `QueueError` if the broker stays unreachable."""
        if self._connection is not None:
            return
        s = self.settings
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(s.connect_attempts),
                wait=wait_exponential(multiplier=s.connect_backoff, max=s.connect_max_wait),
                retry=retry_if_exception_type(CONNECTION_EXCEPTIONS),
                reraise=False,
            ):
                with attempt:
                    self._connection = await aio_pika.connect_robust(
                        s.url,
                        heartbeat=s.heartbeat,
                        reconnect_interval=s.reconnect_interval,
                        client_properties={"connection_name": f"{s.namespace}-{os.getpid()}"},
                    )
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise QueueError(f"RabbitMQ unreachable at {_redact(s.url)}: {cause!r}") from cause
        assert self._connection is not None
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        try:
            channel = self._connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.initialize()
            self._publish_channel = channel
            await self._declare_topology()
        except CONNECTION_EXCEPTIONS as exc:
            await self.close()
            raise QueueError(f"could not declare the queue topology: {exc!r}") from exc

    async def close(self) -> None:
        if self._consume_queue is not None and self._consumer_tag is not None:
            try:
                async with asyncio.timeout(5):
                    await self._consume_queue.cancel(self._consumer_tag)
            except (*_SETTLE_ERRORS, TimeoutError) as exc:
                log.warning("could not cancel the consumer cleanly: %r", exc)
            self._consumer_tag = None
        if self._inflight:
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self.settings.shutdown_grace
            )
            for task in pending:  # their messages are redelivered, flagged
                task.cancel()
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._publish_channel = self._consume_channel = None
        self._work_exchange = self._delay_exchange = self._dead_exchange = None
        self._consume_queue = None

    def _on_reconnect(self, _connection: Any) -> None:
        self.reconnections += 1
        log.warning("RabbitMQ connection restored (%d reconnections)", self.reconnections)

    def is_connected(self) -> bool:
        """Liveness: the robust connection is up (False while it reconnects)."""
        c = self._connection
        return c is not None and not c.is_closed and c.connected.is_set()

    async def delete_topology(self) -> None:
        """Delete every queue and exchange of this namespace (tests, decommissioning).
        Call it after `close()`: it uses a plain connection of its own, because a robust
        channel whose consumer the broker cancels would declare the queue again."""
        names = [self.work_queue_name, self.dead_queue_name]
        names += [self.delay_queue_name(b) for b in self.settings.delay_buckets]
        connection = await aio_pika.connect(self.settings.url)
        try:
            channel = await connection.channel()
            for name in names:
                await channel.queue_delete(name)
            for name in (
                self.work_exchange_name,
                self.delay_exchange_name,
                self.dead_exchange_name,
            ):
                await channel.exchange_delete(name)
        finally:
            await connection.close()

    async def _declare_topology(self) -> None:
        channel = await self._require_channel()
        s = self.settings
        direct = aio_pika.ExchangeType.DIRECT
        work = await channel.declare_exchange(self.work_exchange_name, direct, durable=True)
        delay = await channel.declare_exchange(self.delay_exchange_name, direct, durable=True)
        dead = await channel.declare_exchange(self.dead_exchange_name, direct, durable=True)
        self._work_exchange = work
        self._delay_exchange = delay
        self._dead_exchange = dead

        work_queue = await channel.declare_queue(
            self.work_queue_name, durable=True, arguments=self._work_queue_arguments()
        )
        await work_queue.bind(work, JOB_ROUTING_KEY)
        dead_queue = await channel.declare_queue(
            self.dead_queue_name,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_BROWSE_LIMIT},
        )
        await dead_queue.bind(dead, DEAD_ROUTING_KEY)
        for seconds in s.delay_buckets:
            queue = await channel.declare_queue(
                self.delay_queue_name(seconds),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": seconds * 1000,
                    "x-dead-letter-exchange": self.work_exchange_name,
                    "x-dead-letter-routing-key": JOB_ROUTING_KEY,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            await queue.bind(delay, f"{seconds}s")

    def _work_queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.settings.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange_name,
            "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
            # at-least-once dead-lettering needs reject-publish overflow (RabbitMQ 3.10+)
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }

    async def _require_channel(self) -> AbstractRobustChannel:
        if self._publish_channel is None:
            await self.connect()
        assert self._publish_channel is not None
        return self._publish_channel

    # --- publishing --------------------------------------------------------------------
    async def publish(self, jobs: Sequence[Job]) -> None:
        await self._require_channel()
        await self._publish_messages(self._routed([_Item(job) for job in jobs]))

    def _routed(
        self,
        items: Sequence[_Item],
        *,
        size: int | None = None,
        extra_headers: HeadersType | None = None,
    ) -> list[_Outgoing]:
        """Messages for these jobs: grouped by destination (the work exchange for a job due
        now, else the delay bucket its own wait picks, so no job of a bundle is early),
        then packed `size` jobs a message (default `bundle_size`)."""
        assert self._work_exchange is not None and self._delay_exchange is not None
        size = size or self.settings.bundle_size
        now = self._clock()
        buckets = self.settings.delay_buckets
        groups: dict[int, list[_Item]] = {}  # 0: the work exchange; n: the n-second bucket
        for item in items:
            wait = item.job.not_before - now
            key = pick_delay_bucket(wait, buckets) if wait > _ZERO else 0
            groups.setdefault(key, []).append(item)
        out: list[_Outgoing] = []
        for key, group in groups.items():
            exchange, routing_key = (
                (self._work_exchange, JOB_ROUTING_KEY)
                if key == 0
                else (self._delay_exchange, f"{key}s")
            )
            count = -(-len(group) // size)  # messages; as even as can be (101: 51 + 50)
            share = -(-len(group) // count)
            for start in range(0, len(group), share):
                message = self._message(group[start : start + share], extra_headers)
                out.append((exchange, routing_key, message))
        return out

    def _message(
        self,
        items: Sequence[_Item],
        extra_headers: HeadersType | None = None,
        timestamp: datetime | None = None,
    ) -> Message:
        """One job in today's single-job format (its retries and earlier deliveries in
        headers), or a bundle of several (their retries in the body)."""
        if len(items) == 1:
            item = items[0]
            headers: HeadersType = {RETRIES_HEADER: item.retries}
            if item.prior:
                headers[DELIVERIES_HEADER] = item.prior
            if extra_headers:
                headers.update(extra_headers)
            return Message(
                item.job.to_json(),
                delivery_mode=DeliveryMode.PERSISTENT,
                message_id=item.job.attempt_id,
                content_type=JOB_CONTENT_TYPE,
                headers=headers,
                timestamp=timestamp or self._clock(),
            )
        document: dict[str, Any] = {
            "v": BUNDLE_FORMAT_VERSION,
            "jobs": [item.job.to_document() for item in items],
        }
        if any(item.retries for item in items):
            document["retries"] = [item.retries for item in items]
        return Message(
            json.dumps(document, separators=(",", ":"), sort_keys=True).encode(),
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=f"bundle-{uuid.uuid4().hex}",
            content_type=BUNDLE_CONTENT_TYPE,
            headers={BUNDLE_HEADER: len(items), **(extra_headers or {})},
            timestamp=timestamp or self._clock(),
        )

    def _buried(self, items: Sequence[_Item], reason: str, died_at: datetime | None) -> _Outgoing:
        """A message straight to the dead letters (one job, or a bundle kept dead by a
        partial replay), with the reason `dead_letters()` reports."""
        assert self._dead_exchange is not None
        message = self._message(items, {REASON_HEADER: reason}, died_at)
        return (self._dead_exchange, DEAD_ROUTING_KEY, message)

    async def _publish_messages(self, messages: Sequence[_Outgoing]) -> None:
        """Publish with confirms, `publish_batch` awaited together; `QueueError` unless the
        broker confirmed every one."""
        size = self.settings.publish_batch
        for start in range(0, len(messages), size):
            chunk = messages[start : start + size]
            try:
                async with asyncio.timeout(self.settings.publish_timeout):
                    results = await asyncio.gather(
                        *(ex.publish(m, key, mandatory=True) for ex, key, m in chunk),
                        return_exceptions=True,
                    )
            except TimeoutError as exc:
                raise QueueError(
                    f"broker did not confirm {len(chunk)} messages in time (reconnecting?)"
                ) from exc
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise QueueError(
                    f"{len(failures)} of {len(chunk)} messages not confirmed: {failures[0]!r}"
                ) from failures[0]

    # --- consuming ---------------------------------------------------------------------
    def prefetch(self, concurrency: int) -> int:
        """Messages a consumer may hold unacked. One job a message: `concurrency`, so the
        broker never hands this worker more than it can run. Bundles: enough of them to
        fill `concurrency` plus one ahead (so the handlers do not idle while the next one
        travels), not more, so one worker does not hoard the queue nor take a pile of
        bundles down with it when it dies. `RabbitSettings.prefetch` overrides it."""
        if self.settings.prefetch:
            return self.settings.prefetch
        size = self.settings.bundle_size
        return concurrency if size <= 1 else min(concurrency, math.ceil(concurrency / size) + 1)

    async def consume(self, handler: JobHandler, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        await self._require_channel()
        assert self._connection is not None
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)  # handler calls, all messages together
        channel = self._connection.channel()
        await channel.initialize()
        await channel.set_qos(prefetch_count=self.prefetch(concurrency))
        queue = await channel.declare_queue(
            self.work_queue_name, durable=True, arguments=self._work_queue_arguments()
        )
        self._consume_channel = channel
        self._consume_queue = queue
        self._consumer_tag = await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq cancels its consumer tasks when the channel closes; a handler stopped
        # halfway (say, between reserving an attempt and dialing) is worse than one that
        # finishes and fails to ack, which the broker answers with a flagged redelivery.
        # So the handler runs in a task of ours, shielded, and close() waits for it.
        task = asyncio.create_task(self._guarded(message))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _guarded(self, message: AbstractIncomingMessage) -> None:
        """`_process`, and a message it could not settle for an unexpected error goes back
        to the queue (a bundle then comes back split; the delivery limit ends a loop)
        instead of staying unacked, which would hold a prefetch slot for good."""
        try:
            await self._process(message)
        except Exception:
            log.exception("message %s could not be handled", message.message_id)
            if not message.processed:
                await _settle(message.nack(requeue=True), message)

    async def _run(self, delivery: Delivery) -> _Verdict:
        """Hand one job to the handler (within the concurrency limit); its verdict."""
        assert self._handler is not None and self._slots is not None
        job = delivery.job
        async with self._slots:
            try:
                await self._handler(delivery)
            except RetryLater as verdict:
                later = replace(job, not_before=max(job.not_before, self._clock() + verdict.delay))
                return _Verdict(RETRY, later)
            except PermanentJobError as exc:
                log.error("job %s dead-lettered: %s", job.attempt_id, exc)
                return _Verdict(DEAD, job)
            except Exception:
                log.exception("job %s failed; it will be redelivered", job.attempt_id)
                return _Verdict(FAILED, job)
        return _Verdict(DONE, job)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        if message.content_type == BUNDLE_CONTENT_TYPE:
            await self._process_bundle(message)
            return
        try:
            job = Job.from_json(message.body)
        except ValueError as exc:
            log.error("malformed job %s dead-lettered: %s", message.message_id, exc)
            await _settle(message.reject(requeue=False), message)
            return
        headers = message.headers or {}
        retries = _int_header(headers, RETRIES_HEADER)
        if job.not_before > self._clock():
            # A long wait hops through several delay queues before it is due.
            await self._republish_then_ack(message, self._routed([_Item(job, retries)]))
            return
        prior = _int_header(headers, DELIVERIES_HEADER)  # in bundles, before this message
        count = prior + _int_header(headers, "x-delivery-count") + 1
        delivery = Delivery(
            job=job,
            redelivered=bool(message.redelivered) or prior > 0,
            delivery_count=count,
            retries=retries,
        )
        verdict = await self._run(delivery)
        if verdict.kind == DONE:
            await _settle(message.ack(), message)
        elif verdict.kind == RETRY:
            later = [_Item(verdict.job, retries + 1)]
            await self._republish_then_ack(message, self._routed(later))
        elif verdict.kind == DEAD:
            await _settle(message.reject(requeue=False), message)
        elif prior and count > self.settings.delivery_limit:
            # The broker counts this message's deliveries only: the earlier ones (in a
            # bundle) are ours to count, and past the limit ours to dead-letter.
            buried = self._buried([_Item(job, retries)], DELIVERY_LIMIT, None)
            await self._republish_then_ack(message, [buried])
        else:
            await _settle(message.nack(requeue=True), message)

    async def _process_bundle(self, message: AbstractIncomingMessage) -> None:
        try:
            items = _parse_bundle(message.body)
        except ValueError as exc:
            log.error("malformed bundle %s dead-lettered: %s", message.message_id, exc)
            await _settle(message.reject(requeue=False), message)
            return
        delivered = _int_header(message.headers or {}, "x-delivery-count")
        if message.redelivered or delivered:
            # A worker died holding it (or could not settle it): every job goes on alone,
            # flagged, so that one poison job cannot take the others down with it.
            prior = max(delivered, 1)
            split = [_Item(item.job, item.retries, prior) for item in items]
            await self._republish_then_ack(message, self._routed(split, size=1))
            return
        now = self._clock()
        due = [item for item in items if item.job.not_before <= now]
        outgoing = [item for item in items if item.job.not_before > now]  # hop again
        verdicts = await asyncio.gather(
            *(self._run(Delivery(job=item.job, retries=item.retries)) for item in due)
        )
        buried: list[_Outgoing] = []
        failed: list[_Outgoing] = []
        assert self._work_exchange is not None
        for item, verdict in zip(due, verdicts, strict=True):
            if verdict.kind == RETRY:
                outgoing.append(_Item(verdict.job, item.retries + 1))
            elif verdict.kind == DEAD:
                buried.append(self._buried([item], REJECTED, None))
            elif verdict.kind == FAILED:  # alone, counted on: the single-job path
                message_for = self._message([_Item(item.job, item.retries, 1)])
                failed.append((self._work_exchange, JOB_ROUTING_KEY, message_for))
        await self._republish_then_ack(message, [*self._routed(outgoing), *buried, *failed])

    async def _republish_then_ack(
        self, message: AbstractIncomingMessage, messages: Sequence[_Outgoing]
    ) -> None:
        """Ack once these are confirmed; if they are not, nack with requeue (the jobs come
        back flagged as redelivered: handlers act at most once per attempt)."""
        if messages:
            try:
                await self._publish_messages(messages)
            except (QueueError, *_SETTLE_ERRORS) as exc:
                log.warning(
                    "could not republish from %s (%r); requeueing it", message.message_id, exc
                )
                await _settle(message.nack(requeue=True), message)
                return
        await _settle(message.ack(), message)

    # --- dead letters ------------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Browse: take dead letters unacked on a private channel until `limit` jobs (a
        bundle lists each of its jobs), then return them all to the queue, unchanged."""
        await self._require_channel()
        assert self._connection is not None
        channel = self._connection.channel(publisher_confirms=False)
        await channel.initialize()
        try:
            queue = await channel.get_queue(self.dead_queue_name)
            held: list[AbstractIncomingMessage] = []
            letters: list[DeadLetter] = []
            while len(letters) < limit:
                message = await queue.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                held.append(message)
                letters += _dead_letters(message)
            for message in held:
                await message.nack(requeue=True)
            return letters[:limit]
        finally:
            await channel.close()

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those with these message ids: a bundle's are its
        jobs' attempt ids) back to the work queue: each is republished with its retry
        count reset and confirmed before it is acked off the dead-letter queue; the jobs
        of a bundle not asked for go back to the dead letters first, as a smaller bundle.
        Unparseable ones stay where they are."""
        await self._require_channel()
        assert self._connection is not None
        wanted = None if message_ids is None else set(message_ids)
        channel = self._connection.channel(publisher_confirms=False)
        await channel.initialize()
        moved = 0
        held: list[AbstractIncomingMessage] = []
        try:
            queue = await channel.get_queue(self.dead_queue_name)
            while True:
                message = await queue.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                letters = _dead_letters(message)
                chosen: list[_Item] = []
                kept: list[_Item] = []
                for dl in letters:
                    if dl.job is not None:
                        asked = wanted is None or dl.message_id in wanted
                        (chosen if asked else kept).append(_Item(dl.job))
                if not chosen:
                    held.append(message)
                    continue
                replays = _int_header(message.headers or {}, REPLAYS_HEADER) + 1
                outgoing = self._routed(chosen, extra_headers={REPLAYS_HEADER: replays})
                if kept:
                    first = letters[0]
                    for start in range(0, len(kept), self.settings.bundle_size):
                        part = kept[start : start + self.settings.bundle_size]
                        outgoing.append(self._buried(part, first.reason, first.died_at))
                try:
                    await self._publish_messages(outgoing)
                except BaseException:
                    held.append(message)
                    raise
                await message.ack()
                moved += len(chosen)
            for message in held:
                await message.nack(requeue=True)
            return moved
        finally:
            await channel.close()


@dataclass(frozen=True, slots=True)
class _Item:
    """A job on its way to a queue: its `RetryLater` count, and deliveries of it in earlier
    messages (a bundle) that the broker's delivery count of its next message will miss."""

    job: Job
    retries: int = 0
    prior: int = 0


@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: str  # DONE, RETRY, DEAD, FAILED
    job: Job  # for RETRY, with its new not_before


DONE, RETRY, DEAD, FAILED = "done", "retry", "dead", "failed"
_Outgoing = tuple[AbstractRobustExchange, str, Message]


def _parse_bundle(body: bytes) -> list[_Item]:
    try:
        data = json.loads(body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed bundle: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != BUNDLE_FORMAT_VERSION:
        raise ValueError(f"unsupported bundle format: {data!r:.200}")
    documents = data.get("jobs")
    if not isinstance(documents, list) or not documents:
        raise ValueError("a bundle holds a non-empty list of jobs")
    retries = data.get("retries") or [0] * len(documents)
    if not isinstance(retries, list) or len(retries) != len(documents):
        raise ValueError("a bundle's retries must match its jobs")
    try:
        return [
            _Item(Job.from_document(doc), r if isinstance(r, int) else 0)
            for doc, r in zip(documents, retries, strict=True)
        ]
    except ValueError:
        raise
    except Exception as exc:  # a job document of the wrong shape, whatever it trips on
        raise ValueError(f"malformed job in a bundle: {exc!r}") from exc


async def _settle(action: Any, message: AbstractIncomingMessage) -> None:
    """Ack/nack/reject; if the channel is gone the broker redelivers, flagged."""
    try:
        await action
    except _SETTLE_ERRORS as exc:
        log.warning(
            "could not settle message %s (%r): the broker will redeliver it",
            message.message_id,
            exc,
        )


def _int_header(headers: HeadersType, name: str) -> int:
    value = headers.get(name)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str | bytes) and value.strip().isdigit():
        return int(value)
    return 0


def _dead_letters(message: AbstractIncomingMessage) -> list[DeadLetter]:
    """A dead letter per job: one for a single-job message, one per job of a bundle."""
    headers = message.headers or {}
    reason, died_at = "unknown", None
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        latest = deaths[0]  # RabbitMQ puts the most recent death first
        reason = str(latest.get("reason", reason))
        when = latest.get("time")
        if isinstance(when, datetime):
            died_at = when
    own = headers.get(REASON_HEADER)  # buried by a worker, not by the broker
    if isinstance(own, bytes | str):
        reason = own.decode() if isinstance(own, bytes) else own
        died_at = message.timestamp
    if died_at is not None and died_at.tzinfo is None:
        died_at = died_at.replace(tzinfo=UTC)
    if message.content_type == BUNDLE_CONTENT_TYPE:
        try:
            items = _parse_bundle(message.body)
        except ValueError:
            items = []
        if items:
            return [
                DeadLetter(
                    message_id=item.job.attempt_id,
                    job=item.job,
                    reason=reason,
                    died_at=died_at,
                    raw=item.job.to_json(),
                )
                for item in items
            ]
    try:
        job: Job | None = Job.from_json(message.body)
    except ValueError:
        job = None
    if job is None and reason == "unknown":
        reason = "malformed"
    return [
        DeadLetter(
            message_id=message.message_id or (job.attempt_id if job else ""),
            job=job,
            reason=reason,
            died_at=died_at,
            raw=message.body,
        )
    ]


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
