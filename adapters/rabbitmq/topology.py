"""The queues and exchanges of one namespace `ns`, declared idempotently at start:

    {ns}.work  (direct) --job-->  {ns}.jobs   quorum, x-delivery-limit, dead-letters to
                                              {ns}.dead at-least-once
    {ns}.delay (direct) --<n>s--> {ns}.delay.<n>s  quorum, x-message-ttl = n s, dead-letters
                                              back to {ns}.work with routing key `job`
    {ns}.dead  (direct) --dead--> {ns}.dead-letters  quorum, browsed and replayed by operators

Delays use queue-level TTLs: a per-message TTL expires only at the head of a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

JOB_ROUTING_KEY = "job"
DEAD_ROUTING_KEY = "dead"
# Browsing the dead letters returns each one to its queue, which a quorum queue counts as a
# delivery; RabbitMQ 4 defaults the limit to 20 and would then drop them (no DLX there).
DEAD_LETTER_BROWSE_LIMIT = 1_000_000
# at-least-once dead-lettering needs reject-publish overflow (RabbitMQ 3.10+)
_AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


@dataclass(frozen=True, slots=True)
class Names:
    namespace: str

    @property
    def work_exchange(self) -> str:
        return f"{self.namespace}.work"

    @property
    def delay_exchange(self) -> str:
        return f"{self.namespace}.delay"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def work_queue(self) -> str:
        return f"{self.namespace}.jobs"

    @property
    def dead_queue(self) -> str:
        return f"{self.namespace}.dead-letters"

    def delay_queue(self, seconds: int) -> str:
        return f"{self.namespace}.delay.{seconds}s"


@dataclass(frozen=True, slots=True)
class Exchanges:
    work: AbstractExchange
    delay: AbstractExchange
    dead: AbstractExchange


def work_queue_arguments(names: Names, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": names.dead_exchange,
        "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
        **_AT_LEAST_ONCE,
    }


async def declare(
    channel: AbstractChannel, names: Names, delivery_limit: int, buckets: tuple[int, ...]
) -> Exchanges:
    """Declare (idempotently) and bind every exchange and queue of the namespace."""
    direct = aio_pika.ExchangeType.DIRECT
    work = await channel.declare_exchange(names.work_exchange, direct, durable=True)
    delay = await channel.declare_exchange(names.delay_exchange, direct, durable=True)
    dead = await channel.declare_exchange(names.dead_exchange, direct, durable=True)
    arguments = work_queue_arguments(names, delivery_limit)
    work_queue = await channel.declare_queue(names.work_queue, durable=True, arguments=arguments)
    await work_queue.bind(work, JOB_ROUTING_KEY)
    dead_queue = await channel.declare_queue(
        names.dead_queue,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": DEAD_LETTER_BROWSE_LIMIT},
    )
    await dead_queue.bind(dead, DEAD_ROUTING_KEY)
    for seconds in buckets:
        queue = await channel.declare_queue(
            names.delay_queue(seconds),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": seconds * 1000,
                "x-dead-letter-exchange": names.work_exchange,
                "x-dead-letter-routing-key": JOB_ROUTING_KEY,
                **_AT_LEAST_ONCE,
            },
        )
        await queue.bind(delay, f"{seconds}s")
    return Exchanges(work, delay, dead)


async def delete(url: str, names: Names, buckets: tuple[int, ...]) -> None:
    """Delete every queue and exchange of the namespace, on a plain connection of its own
    (a robust channel whose consumer the broker cancels would declare the queue again)."""
    queues = [names.work_queue, names.dead_queue, *(names.delay_queue(b) for b in buckets)]
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in (names.work_exchange, names.delay_exchange, names.dead_exchange):
            await channel.exchange_delete(name)
    finally:
        await connection.close()
