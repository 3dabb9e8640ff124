"""Recording what the provider said about a sent attempt: `sent` with its id (batched:
one autocommitted statement for the jobs that finish together), or unknown, failed,
not_sent. A job is acknowledged only after its record is committed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.errors import PermanentError, PermanentErrorKind
from adapters.ports import Job, ProviderRef
from dialer.db.errors import database_unavailable
from dialer.db.models import AttemptRow, ContactPointRow
from dialer.dispatch import outbox, sql
from dialer.dispatch.agents import free_held_agent
from dialer.dispatch.batcher import Batcher
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.redecide import Reservation
from dialer.domain.attempts import FINAL_STATES, AttemptState, advance
from strategy.model import Validity

log = logging.getLogger(__name__)


def advance_row(row: AttemptRow, target: AttemptState) -> bool:
    """Advance the row's state through the state machine; False when it must not move."""
    new = advance(AttemptState(row.state), target)
    if new is None:
        return False
    row.state = new.value
    return True


class Recorder:
    """Records a sent attempt's outcome; `record_sent_batch` is its batcher's function."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        c = ctx.config
        self.batcher: Batcher[tuple[Reservation, ProviderRef], bool] = Batcher(
            self.record_sent_batch, c.batch_size, c.batch_linger, c.record_batches
        )

    async def record_sent(self, r: Reservation, ref: ProviderRef) -> None:
        """The common case goes with the batch's others; if a callback moved the attempt
        first, or the batch failed, the general path (`record`) applies."""
        try:
            done = await self.batcher.submit((r, ref))
        except Exception as exc:
            if database_unavailable(exc):
                raise
            log.warning("attempt %s: the batch's sent record failed (%r)", r.attempt_id, exc)
            done = False  # say, a deadlock with a callback's transaction: record it alone
        if not done:
            await self.record(r, AttemptState.SENT, ref=ref)

    async def record_sent_batch(
        self, sent: Sequence[tuple[Reservation, ProviderRef]]
    ) -> list[bool | BaseException]:
        """Still dialing -> sent with the provider's id: one autocommitted UPDATE for the
        batch on PostgreSQL. True for each attempt that moved."""
        ctx = self.ctx
        now = ctx.clock()
        if ctx.autocommit is not None:
            params = {
                "ids": [r.attempt_id for r, _ in sent],
                "sids": [ref.id for _, ref in sent],
                "now": now,
            }
            async with ctx.autocommit.connect() as conn:
                moved = {row[0] for row in await conn.execute(sql.SENT, params)}
            return [r.attempt_id in moved for r, _ in sent]
        out: list[bool | BaseException] = []
        async with ctx.serial(), ctx.maker() as session:
            for r, ref in sent:
                stmt = (
                    update(AttemptRow)
                    .where(
                        AttemptRow.id == r.attempt_id,
                        AttemptRow.state == AttemptState.DIALING.value,
                    )
                    .values(
                        state=AttemptState.SENT.value,
                        provider_sid=ref.id,
                        sent_at=func.coalesce(AttemptRow.dialing_at, now),
                        updated_at=now,
                    )
                )
                out.append(bool((await session.execute(stmt)).rowcount))  # type: ignore[attr-defined]
            await session.commit()
        return out

    async def record(
        self,
        r: Reservation,
        target: AttemptState,
        *,
        ref: ProviderRef | None = None,
        error: tuple[str, str] | None = None,
        perm: PermanentError | None = None,
        job: Job | None = None,
    ) -> None:
        """The attempt -> `target` under its row lock, with the provider's id or error; a
        permanent error updates the contact point, a transient one (`job`) plans again."""
        ctx = self.ctx
        async with ctx.serial(), ctx.maker() as session:
            stmt = select(AttemptRow).where(AttemptRow.id == r.attempt_id)
            if ctx.postgres:
                stmt = stmt.with_for_update()
            attempt = await session.scalar(stmt.execution_options(populate_existing=True))
            if attempt is None:
                return
            now = ctx.clock()
            if target is AttemptState.NOT_SENT:
                # certainly not acted on: reserved -> unknown -> not_sent
                advance_row(attempt, AttemptState.UNKNOWN)
            moved = advance_row(attempt, target)
            if ref is not None and attempt.state == AttemptState.NOT_SENT.value:
                # Reclaimed while this worker was stalled inside the request (past the
                # HTTP timeout and the margin): an attempt with a provider id is never
                # not_sent, so the id cannot go on it; say so loudly.
                log.error(
                    "attempt %s was reclaimed, yet the provider created %s for it",
                    r.attempt_id,
                    ref.id,
                )
            elif ref is not None:
                attempt.provider_sid = attempt.provider_sid or ref.id
                attempt.sent_at = attempt.sent_at or attempt.dialing_at or now
            if error is not None:
                attempt.error_code, attempt.error_message = error[0][:40], error[1][:2000]
            attempt.updated_at = now
            if perm is not None:
                await _update_contact_point(session, attempt, perm)
            if job is not None and moved:
                await self._retry_later(session, attempt, job, now)
            if AttemptState(attempt.state) in FINAL_STATES:  # no call: its agent is free
                await free_held_agent(session, r.attempt_id, now)
            await session.commit()
        if error is not None:
            log.warning("attempt %s -> %s (%s)", r.attempt_id, target, error[0])

    async def _retry_later(
        self, session: AsyncSession, attempt: AttemptRow, job: Job, now: datetime
    ) -> None:
        """A transient failure: plan a fresh attempt (the engine decides again when it
        runs), at most `transient_retries` times per original job."""
        config = self.ctx.config
        tries = int(job.payload.get("transient_retries", 0))
        if tries >= config.transient_retries:
            return
        when = now + config.transient_delay
        await outbox.plan_again(
            session,
            attempt,
            when,
            now,
            notes=f"retry of {attempt.id} after a transient provider error",
            payload={**job.payload, "transient_retries": tries + 1},
        )


async def _update_contact_point(
    session: AsyncSession, attempt: AttemptRow, exc: PermanentError
) -> None:
    point = await session.get(ContactPointRow, attempt.contact_point_id)
    if point is None:
        return
    if exc.kind is PermanentErrorKind.INVALID_NUMBER:
        point.validity = Validity.INVALID.value
    elif exc.kind is PermanentErrorKind.OPTED_OUT:
        point.opted_out = sorted({*point.opted_out, attempt.channel})
