"""Dead letters as the API and the CLI list them: pages by message id (the attempt id),
with the list's one cursor convention.

The queue is browsed, not queried: RabbitMQ's dead letters can only be read from the
head, so a page reads up to `BROWSE_LIMIT` letters and keeps those after the cursor. A
dead-letter queue longer than that is an incident to replay or purge, not to page."""

from __future__ import annotations

from adapters.ports import DeadLetter, JobQueue
from dialer.services import paging

BROWSE_LIMIT = 10_000


async def page(
    queue: JobQueue, *, cursor: str | None, limit: int
) -> tuple[list[DeadLetter], str | None]:
    """A page of dead letters by message id, and the next page's cursor. Raises the
    queue's `QueueError` when it is unreachable."""
    letters = sorted(await queue.dead_letters(BROWSE_LIMIT), key=lambda d: d.message_id)

    async def fetch(after: paging.Key | None, n: int) -> list[DeadLetter]:
        return [d for d in letters if after is None or d.message_id > after[0]][:n]

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=(str,), key=lambda d: (d.message_id,)
    )
