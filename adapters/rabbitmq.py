"""The RabbitMQ job queue (aio-pika): durable quorum queues, confirms, delays, dead letters.

Topology, all names under a namespace prefix `ns` and declared idempotently at start:

    {ns}.work  (direct) --job-->  {ns}.jobs   quorum, x-delivery-limit, dead-letters to
                                              {ns}.dead at-least-once
    {ns}.delay (direct) --<n>s--> {ns}.delay.<n>s  quorum, x-message-ttl = n s, dead-letters
                                              back to {ns}.work with routing key `job`
    {ns}.dead  (direct) --dead--> {ns}.dead-letters  quorum, browsed and replayed by operators

A job whose `not_before` is in the future goes to the longest delay queue not longer than
its wait (queue-level TTL: per-message TTLs only expire at the head of a queue) and hops
until due, so it is never handed over early and is late by at most the shortest bucket.

Handler verdicts: return -> ack; `RetryLater` -> publish to a delay queue, then ack;
`PermanentJobError` -> reject without requeue (dead-lettered); anything else -> nack with
requeue, counted by the quorum queue's delivery limit, past which the broker dead-letters
the message. A message is acked only after its handler returned: a connection lost in
between makes the broker redeliver it with the `redelivered` flag set.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
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
    publish_batch: int = 200  # confirms awaited together
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
        # Strong references: a robust connection restores only the consumers it can reach.
        self._consume_channel: AbstractRobustChannel | None = None
        self._consume_queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None
        self._handler: JobHandler | None = None
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
        self._work_exchange = self._delay_exchange = None
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
        size = self.settings.publish_batch
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            try:
                async with asyncio.timeout(self.settings.publish_timeout):
                    results = await asyncio.gather(
                        *(self._publish_job(job) for job in chunk), return_exceptions=True
                    )
            except TimeoutError as exc:
                raise QueueError(
                    f"broker did not confirm {len(chunk)} jobs in time (reconnecting?)"
                ) from exc
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise QueueError(
                    f"{len(failures)} of {len(chunk)} jobs not confirmed: {failures[0]!r}"
                ) from failures[0]

    async def _publish_job(
        self, job: Job, *, retries: int = 0, extra_headers: HeadersType | None = None
    ) -> None:
        assert self._work_exchange is not None and self._delay_exchange is not None
        headers: HeadersType = {RETRIES_HEADER: retries, **(extra_headers or {})}
        message = aio_pika.Message(
            job.to_json(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=job.attempt_id,
            content_type="application/json",
            headers=headers,
            timestamp=self._clock(),
        )
        wait = job.not_before - self._clock()
        if wait > timedelta(0):
            bucket = pick_delay_bucket(wait, self.settings.delay_buckets)
            await self._delay_exchange.publish(message, f"{bucket}s", mandatory=True)
        else:
            await self._work_exchange.publish(message, JOB_ROUTING_KEY, mandatory=True)

    # --- consuming ---------------------------------------------------------------------
    async def consume(self, handler: JobHandler, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        await self._require_channel()
        assert self._connection is not None
        self._handler = handler
        channel = self._connection.channel()
        await channel.initialize()
        # prefetch = concurrency: the broker never hands this worker more than it can run
        await channel.set_qos(prefetch_count=concurrency)
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
        task = asyncio.create_task(self._process(message))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        assert self._handler is not None
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
            await self._delay_then_ack(message, job, retries)
            return
        delivery = Delivery(
            job=job,
            redelivered=bool(message.redelivered),
            delivery_count=_int_header(headers, "x-delivery-count") + 1,
            retries=retries,
        )
        try:
            await self._handler(delivery)
        except RetryLater as verdict:
            later = replace(job, not_before=max(job.not_before, self._clock() + verdict.delay))
            await self._delay_then_ack(message, later, retries + 1)
        except PermanentJobError as exc:
            log.error("job %s dead-lettered: %s", job.attempt_id, exc)
            await _settle(message.reject(requeue=False), message)
        except Exception:
            log.exception("job %s failed; the broker will redeliver it", job.attempt_id)
            await _settle(message.nack(requeue=True), message)
        else:
            await _settle(message.ack(), message)

    async def _delay_then_ack(
        self, message: AbstractIncomingMessage, job: Job, retries: int
    ) -> None:
        try:
            async with asyncio.timeout(self.settings.publish_timeout):
                await self._publish_job(job, retries=retries)
        except (*_SETTLE_ERRORS, TimeoutError) as exc:
            log.warning("could not delay job %s (%r); requeueing it", job.attempt_id, exc)
            await _settle(message.nack(requeue=True), message)
            return
        await _settle(message.ack(), message)

    # --- dead letters ------------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Browse: take up to `limit` dead letters unacked on a private channel, then return
        them all to the queue, unchanged."""
        await self._require_channel()
        assert self._connection is not None
        channel = self._connection.channel(publisher_confirms=False)
        await channel.initialize()
        try:
            queue = await channel.get_queue(self.dead_queue_name)
            held: list[AbstractIncomingMessage] = []
            while len(held) < limit:
                message = await queue.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                held.append(message)
            letters = [_dead_letter(m) for m in held]
            for message in held:
                await message.nack(requeue=True)
            return letters
        finally:
            await channel.close()

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those with these message ids) back to the work queue:
        each is republished with its retry count reset and confirmed before it is acked
        off the dead-letter queue. Unparseable ones stay where they are."""
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
                letter = _dead_letter(message)
                if letter.job is None or (wanted is not None and letter.message_id not in wanted):
                    held.append(message)
                    continue
                replays = _int_header(message.headers or {}, REPLAYS_HEADER) + 1
                try:
                    async with asyncio.timeout(self.settings.publish_timeout):
                        await self._publish_job(letter.job, extra_headers={REPLAYS_HEADER: replays})
                except BaseException:
                    held.append(message)
                    raise
                await message.ack()
                moved += 1
            for message in held:
                await message.nack(requeue=True)
            return moved
        finally:
            await channel.close()


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


def _dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    try:
        job: Job | None = Job.from_json(message.body)
    except ValueError:
        job = None
    reason, died_at = "malformed" if job is None else "unknown", None
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        latest = deaths[0]  # RabbitMQ puts the most recent death first
        reason = str(latest.get("reason", reason))
        when = latest.get("time")
        if isinstance(when, datetime):
            died_at = when if when.tzinfo else when.replace(tzinfo=UTC)
    return DeadLetter(
        message_id=message.message_id or (job.attempt_id if job else ""),
        job=job,
        reason=reason,
        died_at=died_at,
        raw=message.body,
    )


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
