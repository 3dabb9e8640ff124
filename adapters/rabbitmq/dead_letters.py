"""The dead-letter queue, for operators: browse it, and replay what it holds.

Both take messages unacked on a private channel; what they leave returns to the queue
unchanged (a quorum queue counts that as a delivery: see `DEAD_LETTER_BROWSE_LIMIT`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from adapters.ports import DeadLetter
from adapters.rabbitmq.messages import REPLAYS_HEADER, Item, dead_letters_of, int_header

if TYPE_CHECKING:
    from adapters.rabbitmq.queue import Outgoing, RabbitJobQueue


async def browse(
    connection: AbstractRobustConnection, queue_name: str, limit: int
) -> list[DeadLetter]:
    """Dead letters until `limit` jobs (a bundle lists each of its jobs), left in place."""
    channel = connection.channel(publisher_confirms=False)
    await channel.initialize()
    try:
        queue = await channel.get_queue(queue_name)
        held: list[AbstractIncomingMessage] = []
        letters: list[DeadLetter] = []
        while len(letters) < limit:
            message = await queue.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            held.append(message)
            letters += dead_letters_of(message)
        for message in held:
            await message.nack(requeue=True)
        return letters[:limit]
    finally:
        await channel.close()


async def replay(
    connection: AbstractRobustConnection,
    jobs: RabbitJobQueue,
    message_ids: Sequence[str] | None,
) -> int:
    """Move dead letters (all, or those with these message ids: a bundle's are its jobs'
    attempt ids) back to the work queue, each republished with its retry count reset and
    confirmed before it is acked off the dead letters; a bundle's jobs not asked for go
    back to the dead letters first, as a smaller bundle. Unparseable ones stay."""
    wanted = None if message_ids is None else set(message_ids)
    channel = connection.channel(publisher_confirms=False)
    await channel.initialize()
    moved = 0
    held: list[AbstractIncomingMessage] = []
    try:
        queue = await channel.get_queue(jobs.dead_queue_name)
        while True:
            message = await queue.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            outgoing, chosen = _replayed(jobs, message, wanted)
            if not chosen:
                held.append(message)
                continue
            try:
                await jobs.publish_messages(outgoing)
            except BaseException:
                held.append(message)
                raise
            await message.ack()
            moved += chosen
        for message in held:
            await message.nack(requeue=True)
        return moved
    finally:
        await channel.close()


def _replayed(
    jobs: RabbitJobQueue, message: AbstractIncomingMessage, wanted: set[str] | None
) -> tuple[list[Outgoing], int]:
    """What replaying this dead letter publishes, and how many of its jobs go back."""
    letters = dead_letters_of(message)
    chosen: list[Item] = []
    kept: list[Item] = []
    for letter in letters:
        if letter.job is not None:
            asked = wanted is None or letter.message_id in wanted
            (chosen if asked else kept).append(Item(letter.job))
    if not chosen:
        return [], 0
    replays = int_header(message.headers or {}, REPLAYS_HEADER) + 1
    outgoing = jobs.routed(chosen, extra_headers={REPLAYS_HEADER: replays})
    size = jobs.settings.bundle_size
    first = letters[0]
    for start in range(0, len(kept), size):
        outgoing.append(jobs.buried(kept[start : start + size], first.reason, first.died_at))
    return outgoing, len(chosen)
