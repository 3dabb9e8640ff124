"""The ceiling of `bench.dispatch`: raw aio-pika moving the same jobs, bundled the same way.

Publishing: job documents packed `bundle` a message (one job a message: `Job.to_json`'s
body), persistent, to a fresh durable quorum queue, `publish_batch` confirms awaited
together, as the relay's queue does. Consuming: one consumer with the prefetch the
workers use (`RabbitJobQueue.prefetch`), each message parsed into its jobs and acked.
Nothing else: no database, no decision, no dial. Rounds of `ROUND_MESSAGES` messages
(published, then consumed) repeat until each side has been timed for `seconds`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import aio_pika

from adapters.ports import Job
from adapters.rabbitmq import RabbitSettings

ROUND_MESSAGES = 500
MAX_ROUNDS = 400


@dataclass
class Ceiling:
    """Jobs moved and seconds spent, publishing and consuming (summed over rounds)."""

    published: int = 0
    publish_seconds: float = 0.0
    consumed: int = 0
    consume_seconds: float = 0.0

    @property
    def publish_rate(self) -> float:
        return self.published / self.publish_seconds if self.publish_seconds else 0.0

    @property
    def consume_rate(self) -> float:
        return self.consumed / self.consume_seconds if self.consume_seconds else 0.0

    def add(self, other: Ceiling) -> Ceiling:
        return Ceiling(
            self.published + other.published,
            self.publish_seconds + other.publish_seconds,
            self.consumed + other.consumed,
            self.consume_seconds + other.consume_seconds,
        )


def _documents(count: int, at: datetime) -> list[dict[str, object]]:
    """Job documents of the size the relay publishes (uuids, an instant, no payload)."""
    return [
        Job(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), at).to_document()
        for _ in range(count)
    ]


def _body(documents: Sequence[dict[str, object]]) -> bytes:
    if len(documents) == 1:
        return json.dumps(documents[0], separators=(",", ":"), sort_keys=True).encode()
    bundle = {"v": 1, "jobs": list(documents)}
    return json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()


def _jobs_in(body: bytes) -> int:
    data = json.loads(body)
    return len(data["jobs"]) if "jobs" in data else 1


async def _publish_round(
    channel: aio_pika.abc.AbstractChannel, name: str, bundle: int, batch: int, at: datetime
) -> tuple[int, float]:
    documents = _documents(ROUND_MESSAGES * bundle, at)
    started = time.perf_counter()
    for first in range(0, ROUND_MESSAGES, batch):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        _body(documents[m * bundle : (m + 1) * bundle]),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=name,
                )
                for m in range(first, min(first + batch, ROUND_MESSAGES))
            )
        )
    return len(documents), time.perf_counter() - started


async def _consume_round(queue: aio_pika.abc.AbstractQueue, expected: int) -> float:
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        seen += _jobs_in(message.body)
        await message.ack()
        if seen >= expected:
            done.set()

    started = time.perf_counter()
    tag = await queue.consume(on_message)
    await done.wait()
    seconds = time.perf_counter() - started
    await queue.cancel(tag)
    return seconds


async def raw_ceiling(
    amqp: str, settings: RabbitSettings, prefetch: int, seconds: float, at: datetime
) -> Ceiling:
    """Rounds until both publishing and consuming were timed for `seconds` each."""
    connection = await aio_pika.connect_robust(amqp)
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"
    result = Ceiling()
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=prefetch)
        queue = await consumer.get_queue(name)
        for _ in range(MAX_ROUNDS):
            if min(result.publish_seconds, result.consume_seconds) >= seconds:
                break
            count, published = await _publish_round(
                channel, name, settings.bundle_size, settings.publish_batch, at
            )
            consumed = await _consume_round(queue, count)
            result = result.add(Ceiling(count, published, count, consumed))
        await channel.queue_delete(name)
        return result
    finally:
        await connection.close()
