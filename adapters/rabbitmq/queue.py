"""`RabbitJobQueue`: the `JobQueue` port on RabbitMQ (aio-pika): durable quorum queues,
publisher confirms, jobs in bundles, delays through TTL queues, dead letters.

A job due later goes to the longest delay queue not longer than its wait and hops until
due: never handed over early, late by at most the shortest bucket. The topology is in
`topology`, the message format in `messages`, the settling rules in `consumer`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika import Message
from aio_pika.abc import (
    AbstractExchange,
    AbstractRobustChannel,
    AbstractRobustConnection,
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

from adapters.errors import QueueError
from adapters.ports import DeadLetter, Job, JobHandler, JobQueue
from adapters.rabbitmq import dead_letters, topology
from adapters.rabbitmq.consumer import SETTLE_ERRORS, Consumer
from adapters.rabbitmq.messages import REASON_HEADER, Item, encode, group
from adapters.rabbitmq.settings import RabbitSettings
from adapters.rabbitmq.topology import DEAD_ROUTING_KEY, JOB_ROUTING_KEY

log = logging.getLogger(__name__)

Outgoing = tuple[AbstractExchange, str, Message]  # exchange, routing key, message


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
        self.names = topology.Names(settings.namespace)
        self.work_exchange_name = self.names.work_exchange
        self.delay_exchange_name = self.names.delay_exchange
        self.dead_exchange_name = self.names.dead_exchange
        self.work_queue_name = self.names.work_queue
        self.dead_queue_name = self.names.dead_queue
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._work_exchange: AbstractExchange | None = None
        self._delay_exchange: AbstractExchange | None = None
        self._dead_exchange: AbstractExchange | None = None
        # Strong references: a robust connection restores only the consumers it can reach.
        self._consume_channel: AbstractRobustChannel | None = None
        self._consume_queue: AbstractRobustQueue | None = None
        self._consumer_tag: str | None = None
        self._consumer: Consumer | None = None
        self.reconnections = 0  # times the robust connection came back after a loss

    def delay_queue_name(self, seconds: int) -> str:
        return self.names.delay_queue(seconds)

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
            exchanges = await topology.declare(
                channel, self.names, s.delivery_limit, s.delay_buckets
            )
        except CONNECTION_EXCEPTIONS as exc:
            await self.close()
            raise QueueError(f"could not declare the queue topology: {exc!r}") from exc
        self._work_exchange, self._delay_exchange = exchanges.work, exchanges.delay
        self._dead_exchange = exchanges.dead

    async def close(self) -> None:
        """Stop consuming; the messages held finish, every job of them, within
        `shutdown_grace` (past it they go back unsettled and come back split)."""
        if self._consume_queue is not None and self._consumer_tag is not None:
            try:
                async with asyncio.timeout(5):
                    await self._consume_queue.cancel(self._consumer_tag)
            except (*SETTLE_ERRORS, TimeoutError) as exc:
                log.warning("could not cancel the consumer cleanly: %r", exc)
            self._consumer_tag = None
        if self._consumer is not None:
            await self._consumer.drain(self.settings.shutdown_grace)
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
        Call it after `close()`."""
        await topology.delete(self.settings.url, self.names, self.settings.delay_buckets)

    async def _require_channel(self) -> AbstractRobustChannel:
        if self._publish_channel is None:
            await self.connect()
        assert self._publish_channel is not None
        return self._publish_channel

    # --- publishing --------------------------------------------------------------------
    async def publish(self, jobs: Sequence[Job]) -> None:
        await self._require_channel()
        await self.publish_messages(self.routed([Item(job) for job in jobs]))

    def routed(
        self,
        items: Sequence[Item],
        *,
        size: int | None = None,
        extra_headers: HeadersType | None = None,
    ) -> list[Outgoing]:
        """Messages for these jobs: the work exchange for those due now, else the delay
        bucket each one's wait picks; `size` jobs a message at most (`bundle_size`)."""
        assert self._work_exchange is not None and self._delay_exchange is not None
        now = self._clock()
        out: list[Outgoing] = []
        groups = group(items, now, self.settings.delay_buckets, size or self.settings.bundle_size)
        for key, part in groups:
            message = encode(part, now, extra_headers)
            if key == 0:
                out.append((self._work_exchange, JOB_ROUTING_KEY, message))
            else:
                out.append((self._delay_exchange, f"{key}s", message))
        return out

    def to_work(self, item: Item) -> Outgoing:
        """One job alone to the work queue, due or not."""
        assert self._work_exchange is not None
        return (self._work_exchange, JOB_ROUTING_KEY, encode([item], self._clock()))

    def buried(self, items: Sequence[Item], reason: str, died_at: datetime | None) -> Outgoing:
        """A message straight to the dead letters (one job, or a bundle kept dead by a
        partial replay), with the reason `dead_letters()` reports."""
        assert self._dead_exchange is not None
        message = encode(items, died_at or self._clock(), {REASON_HEADER: reason})
        return (self._dead_exchange, DEAD_ROUTING_KEY, message)

    async def publish_messages(self, messages: Sequence[Outgoing]) -> None:
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
        """Messages a consumer may hold unacked. One job a message: `concurrency`. Bundles:
        enough to fill `concurrency` and one more ahead, so the handlers do not idle while
        the next travels, yet one worker neither hoards the queue nor takes a pile of
        bundles down with it when it dies. Fixed for the consumer's life (single-job
        messages then run that many at a time); `RabbitSettings.prefetch` overrides it."""
        if self.settings.prefetch:
            return self.settings.prefetch
        size = self.settings.bundle_size
        return concurrency if size <= 1 else min(concurrency, math.ceil(concurrency / size) + 1)

    async def consume(self, handler: JobHandler, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        await self._require_channel()
        assert self._connection is not None
        self._consumer = Consumer(self, handler, concurrency, self._clock)
        channel = self._connection.channel()
        await channel.initialize()
        await channel.set_qos(prefetch_count=self.prefetch(concurrency))
        arguments = topology.work_queue_arguments(self.names, self.settings.delivery_limit)
        queue = await channel.declare_queue(self.work_queue_name, durable=True, arguments=arguments)
        self._consume_channel = channel
        self._consume_queue = queue
        self._consumer_tag = await queue.consume(self._consumer.on_message)

    # --- dead letters ------------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        await self._require_channel()
        assert self._connection is not None
        return await dead_letters.browse(self._connection, self.dead_queue_name, limit)

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        await self._require_channel()
        assert self._connection is not None
        return await dead_letters.replay(self._connection, self, message_ids)


def _redact(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"
