"""The embedded default's dead letters, kept in the database.

The in-process queue lives inside the process that runs the worker, so its dead letters
would be visible only there: the API (`GET /v1/dead-letters`) and `dialer dead-letters`
run in other processes. `EmbeddedJobQueue` keeps each dead letter in the `dead_letters`
table instead; listing reads the table from any process, and a replay deletes the rows and
stages their jobs in the outbox in one transaction, so the worker's relay (in whichever
process runs it) publishes them again. A worker acts at most once per attempt, so a replay
of a job whose attempt was handled meanwhile does nothing. RabbitMQ keeps its own dead
letters; this is only for the in-process queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.inprocess import InProcessJobQueue, utc_now
from adapters.ports import DeadLetter, Job
from dialer.db.models import DeadLetterRow
from dialer.dispatch.outbox import add_jobs

log = logging.getLogger(__name__)


class EmbeddedJobQueue(InProcessJobQueue):
    """The in-process queue, with its dead letters in the database once `bind` has given
    it a sessionmaker (until then, and if the database refuses, they stay in memory)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        delivery_limit: int = 5,
        maker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__(clock=clock, delivery_limit=delivery_limit)
        self._maker = maker

    def bind(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker

    async def keep_dead_letter(self, dead: DeadLetter, error: str) -> None:
        if self._maker is None:
            await super().keep_dead_letter(dead, error)
            return
        async with self._maker() as session:
            row = await session.get(DeadLetterRow, dead.message_id)
            if row is None:
                row = DeadLetterRow(message_id=dead.message_id)
                session.add(row)
            row.job = dead.job.to_document() if dead.job is not None else None
            row.reason = dead.reason
            row.error = error[:2000]
            row.died_at = dead.died_at or self._clock()
            await session.commit()

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        held = await super().dead_letters(limit)
        if self._maker is None:
            return held
        async with self._maker() as session:
            rows = (
                await session.scalars(
                    select(DeadLetterRow)
                    .order_by(DeadLetterRow.died_at, DeadLetterRow.message_id)
                    .limit(max(limit - len(held), 0))
                )
            ).all()
        return [*held, *(_letter(r) for r in rows)]

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        moved = await super().replay_dead_letters(message_ids)
        if self._maker is None:
            return moved
        async with self._maker() as session:
            stmt = select(DeadLetterRow).with_for_update()
            if message_ids is not None:
                stmt = stmt.where(DeadLetterRow.message_id.in_(list(message_ids)))
            rows = (await session.scalars(stmt)).all()
            replayable = [r for r in rows if r.job is not None]
            now = self._clock()
            jobs = [Job.from_document(r.job) for r in replayable if r.job is not None]
            await add_jobs(session, jobs, now)
            if replayable:
                await session.execute(
                    delete(DeadLetterRow).where(
                        DeadLetterRow.message_id.in_([r.message_id for r in replayable])
                    )
                )
            await session.commit()
        if replayable:
            log.info("replayed %d dead letters through the outbox", len(replayable))
        return moved + len(replayable)


def _letter(row: DeadLetterRow) -> DeadLetter:
    job = Job.from_document(row.job) if row.job is not None else None
    died = row.died_at if row.died_at.tzinfo else row.died_at.replace(tzinfo=UTC)
    return DeadLetter(
        message_id=row.message_id,
        job=job,
        reason=row.reason,
        died_at=died,
        raw=job.to_json() if job is not None else b"",
    )
