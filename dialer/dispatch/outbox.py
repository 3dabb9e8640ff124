"""The outbox: jobs are written in the transaction that records their attempts and
published only after it committed (style: "publish after the commit").

`relay_once` claims unpublished rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any
number of relays share the work; SQLite is one process), publishes them as one confirmed
batch, then marks them published and moves their attempts from planned to queued, in the
claiming transaction (on PostgreSQL, skipping any attempt a worker has locked: the worker
already acts on that job, and `planned` is as dispatchable as `queued`). A crash between
the broker's confirm and that commit republishes the rows later: the worker acts at most
once per attempt id, so the duplicate is harmless. Published rows are kept for `keep` (an
audit trail of what left when), then purged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Table,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.expression import Executable

from adapters.errors import QueueError
from adapters.ports import JOB_FORMAT_VERSION, Job, JobQueue
from dialer.db.models import AttemptRow, OutboxRow
from dialer.domain.attempts import AttemptState, sources

log = logging.getLogger(__name__)

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[assignment]
# The states an attempt may leave for `queued`, read from the state machine.
_TO_QUEUED = list(sources(AttemptState.QUEUED))


def job_text(job: Job) -> str:
    """`job.to_document()` as compact JSON text, written directly (the planner writes one
    per attempt): the ids escaped as `json.dumps` escapes strings, the payload dumped only
    when there is one."""
    campaign = "null" if job.campaign_id is None else _string(job.campaign_id)
    payload = json.dumps(job.payload, separators=(",", ":")) if job.payload else "{}"
    return (
        f'{{"v":{JOB_FORMAT_VERSION},"attempt_id":{_string(job.attempt_id)},'
        f'"case_id":{_string(job.case_id)},"campaign_id":{campaign},'
        f'"not_before":"{job.not_before.isoformat()}","payload":{payload}}}'
    )


_string = json.encoder.encode_basestring_ascii  # a JSON string literal, as json.dumps writes


async def add_jobs(session: AsyncSession, jobs: Sequence[Job], now: datetime) -> None:
    """Stage jobs in the caller's transaction (one COPY, or one executemany)."""
    await add_job_texts(session, [job_text(j) for j in jobs], now)


async def add_job_texts(session: AsyncSession, texts: Sequence[str], now: datetime) -> None:
    """Stage jobs given as their documents' text (`job_text`), as `add_jobs` does."""
    if not texts:
        return
    columns = ("job", "created_at", "available_at", "publish_attempts")
    if await copy_records(session, _OUTBOX, columns, [(t, now, now, 0) for t in texts]):
        return
    await session.execute(
        insert(_OUTBOX),
        [
            {"job": json.loads(t), "created_at": now, "available_at": now, "publish_attempts": 0}
            for t in texts
        ],
    )


async def copy_records(
    session: AsyncSession, table: Table, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> bool:
    """On PostgreSQL, inside the session's open transaction, COPY the records (tuples in
    `columns`' order, as the driver's binary COPY takes them: a UUID may be its text, a
    JSON column takes the document's text) through the session's own connection and
    return True; else (another database, or no transaction begun yet) write nothing and
    return False, for the caller's executemany."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():
        return False
    if records:
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
    return True


async def plan_again(
    session: AsyncSession,
    attempt: AttemptRow,
    when: datetime,
    now: datetime,
    *,
    notes: str,
    payload: dict[str, Any] | None = None,
) -> AttemptRow:
    """A fresh planned attempt for the same party, contact point, channel and campaign as
    `attempt`, due at `when`, and its job staged in the caller's transaction (publishable
    at once, or from `when` if that has passed). The worker asks the engine again before
    it dials, so nothing here can break a rule."""
    fresh = AttemptRow(
        id=uuid.uuid4(),
        case_id=attempt.case_id,
        party_id=attempt.party_id,
        contact_point_id=attempt.contact_point_id,
        channel=attempt.channel,
        state=AttemptState.PLANNED.value,
        result="pending",
        planned_at=now,
        at=when,
        not_before=when,
        campaign_id=attempt.campaign_id,
        updated_at=now,
        notes=notes,
    )
    session.add(fresh)
    await session.flush()
    campaign = None if attempt.campaign_id is None else str(attempt.campaign_id)
    job = Job(str(fresh.id), str(attempt.case_id), campaign, when, payload or {})
    await add_jobs(session, [job], min(now, when))
    return fresh


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) in the caller's transaction: on PostgreSQL by
    COPY (binary, no statement to compile or parameters to bind per row: the planner
    writes a million attempts and outbox rows a morning), elsewhere one executemany.
    COPY goes through the session's own connection, inside its open transaction; when
    none is open yet, the executemany path opens it as usual."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0])
        get = itemgetter(*columns)
        records = [get(r) for r in rows] if len(columns) > 1 else [(get(r),) for r in rows]
        as_text = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
        if as_text:  # the driver's JSON codec takes the document's text
            records = [_json_text(record, as_text) for record in records]
        if await copy_records(session, table, columns, records):
            return
    await session.execute(insert(table), list(rows))


def _json_text(record: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    values = list(record)
    for i in positions:
        if values[i] is not None:
            values[i] = json.dumps(values[i], separators=(",", ":"))
    return tuple(values)


async def relay_once(
    maker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    now: datetime,
    *,
    limit: int = 1000,
    retry_after: timedelta = timedelta(seconds=5),
) -> int:
    """Publish up to `limit` due rows; returns how many were published. A broker failure
    leaves them unpublished, delayed by `retry_after`, and raises `QueueError`."""
    async with maker() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        q = _POSTGRES if postgres else _GENERIC
        conn = await session.connection()  # plain Core results, in the session's transaction
        rows = (await conn.execute(q.due, {"now": now, "limit": limit})).all()
        if not rows:
            return 0
        # PostgreSQL extracts the fields; elsewhere the stored text is parsed once.
        parse = _job if postgres else _job_from_text
        ids: list[int] = []
        jobs: list[Job] = []
        unreadable: list[int] = []
        for r in rows:
            try:
                jobs.append(parse(r))
            except ValueError as exc:
                log.error("outbox row %s is not a job (%s): set aside", r[0], exc)
                unreadable.append(r[0])
            else:
                ids.append(r[0])
        if unreadable:  # kept, with the reason, for an operator; never blocks the others
            await _set_aside(conn, unreadable, now)
        if not jobs:
            await session.commit()
            return len(rows)
        try:
            await queue.publish(jobs)
        except QueueError as exc:
            await session.rollback()
            await _postpone(session, ids, now + retry_after, repr(exc))
            raise
        await conn.execute(q.published, {"ids": ids, "now": now})
        # PostgreSQL casts the ids' text itself (no UUID parsed here per job).
        attempt_ids = [j.attempt_id if postgres else uuid.UUID(j.attempt_id) for j in jobs]
        await conn.execute(q.queued, {"ids": attempt_ids, "now": now})
        await session.commit()
        return len(rows)


def _job(row: Any) -> Job:
    """A job from its document's fields as PostgreSQL extracted them (`_build`), checked
    by `Job.from_document` as any job document is (a field the document lacks, or holds
    as null, is left out)."""
    _, version, attempt_id, case_id, campaign_id, not_before, payload = row
    try:
        fields = {
            "v": None if version is None else json.loads(version),
            "attempt_id": attempt_id,
            "case_id": case_id,
            "campaign_id": campaign_id,
            "not_before": not_before,
            "payload": None if payload is None else json.loads(payload),
        }
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed job: {exc}") from exc
    return Job.from_document({k: v for k, v in fields.items() if v is not None})


def _job_from_text(row: Any) -> Job:
    return Job.from_json(row[1])


# Rows whose document is not a job are moved this far out of the relay's way.
SET_ASIDE = timedelta(days=365)


async def _set_aside(conn: Any, ids: list[int], now: datetime) -> None:
    await conn.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(ids))
        .values(
            available_at=now + SET_ASIDE,
            publish_attempts=_OUTBOX.c.publish_attempts + 1,
            last_error="not a job document: set aside by the relay",
        )
    )


@dataclass(frozen=True, slots=True)
class _Statements:
    due: Executable  # claim up to :limit rows due at :now
    published: Executable  # mark rows :ids published at :now
    queued: Executable  # attempts :ids planned -> queued at :now


def _build(postgres: bool) -> _Statements:
    def among(column: Any, kind: Any) -> Any:
        # PostgreSQL: one array parameter (`= ANY`), not a thousand placeholders rendered
        # per batch; elsewhere an expanding IN.
        if postgres:
            return column == any_(bindparam("ids", type_=ARRAY(kind)))
        return column.in_(bindparam("ids", expanding=True))

    job = _OUTBOX.c.job
    fields = (
        # The document's fields, extracted by PostgreSQL (`_job` checks them): no JSON
        # document to parse here per job. The ids come back as text (`->>`), the version
        # and the payload as JSON text.
        (cast(job["v"], Text), job["attempt_id"].as_string(), job["case_id"].as_string(),
         job["campaign_id"].as_string(), job["not_before"].as_string(),
         cast(job["payload"], Text))
        if postgres
        else (cast(OutboxRow.job, Text),)
    )  # fmt: skip
    due = (
        select(OutboxRow.id, *fields)
        .where(OutboxRow.published_at.is_(None), OutboxRow.available_at <= bindparam("now"))
        .order_by(OutboxRow.available_at, OutboxRow.id)
        .limit(bindparam("limit"))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True)
    # Table (Core) updates: no ORM session synchronisation to evaluate per row.
    published = (
        update(_OUTBOX)
        .where(among(_OUTBOX.c.id, BigInteger()))
        .values(published_at=bindparam("now"), publish_attempts=_OUTBOX.c.publish_attempts + 1)
    )
    attempt_ids = (
        _ATTEMPTS.c.id == any_(cast(bindparam("ids", type_=ARRAY(Text())), ARRAY(Uuid())))
        if postgres
        else among(_ATTEMPTS.c.id, Uuid())
    )
    waiting: tuple[Any, ...] = (attempt_ids, _ATTEMPTS.c.state.in_(_TO_QUEUED))
    if postgres:
        # A row a worker has locked is being reserved or refused from the job just
        # published: skip it rather than wait on the worker's transaction with this one
        # (and the outbox rows it holds) open. Left `planned`, it is dispatchable all the
        # same, and the worker moves it on.
        held = select(_ATTEMPTS.c.id).where(*waiting).with_for_update(skip_locked=True)
        waiting = (_ATTEMPTS.c.id.in_(held.scalar_subquery()),)
    queued = (
        update(_ATTEMPTS)
        .where(*waiting)
        .values(state=AttemptState.QUEUED.value, updated_at=bindparam("now"))
    )
    return _Statements(due, published, queued)


_POSTGRES = _build(postgres=True)
_GENERIC = _build(postgres=False)


async def _postpone(session: AsyncSession, ids: list[int], until: datetime, error: str) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(ids))
        .values(
            available_at=until,
            publish_attempts=OutboxRow.publish_attempts + 1,
            last_error=error[:2000],
        )
    )
    await session.commit()


async def relay_all(
    maker: async_sessionmaker[AsyncSession], queue: JobQueue, now: datetime, limit: int = 1000
) -> int:
    """Publish everything due now (tests, the end of a planning batch)."""
    total = 0
    while True:
        n = await relay_once(maker, queue, now, limit=limit)
        total += n
        if n < limit:
            return total


async def purge_published(maker: async_sessionmaker[AsyncSession], before: datetime) -> int:
    async with maker() as session:
        result = await session.execute(delete(OutboxRow).where(OutboxRow.published_at < before))
        await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_count(session: AsyncSession) -> int:
    from sqlalchemy import func

    return int(
        await session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
        )
        or 0
    )


async def requeue_waiting(
    maker: async_sessionmaker[AsyncSession], queue: JobQueue, *, batch: int = 1000
) -> int:
    """Publish again every attempt still waiting (planned or queued) in a running or
    paused campaign. The in-process queue forgets its jobs on a restart: this is what
    brings them back. (A duplicate of a job still queued is harmless: at most once.)"""
    from dialer.db.models import CampaignRow

    waiting = [AttemptState.PLANNED.value, AttemptState.QUEUED.value]
    total = 0
    after: uuid.UUID | None = None
    while True:
        async with maker() as session:
            stmt = (
                select(AttemptRow.id, AttemptRow.case_id, AttemptRow.campaign_id, AttemptRow.at)
                .join(CampaignRow, CampaignRow.id == AttemptRow.campaign_id)
                .where(
                    AttemptRow.state.in_(waiting),
                    CampaignRow.status.in_(["running", "paused"]),
                )
                .order_by(AttemptRow.id)
                .limit(batch)
            )
            if after is not None:
                stmt = stmt.where(AttemptRow.id > after)
            rows = (await session.execute(stmt)).all()
        if not rows:
            return total
        await queue.publish([Job(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows])
        total += len(rows)
        after = rows[-1][0]


async def run_relay(
    maker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    clock: Callable[[], datetime],
    *,
    idle: float = 0.5,
    keep: timedelta = timedelta(days=1),
    stop: asyncio.Event | None = None,
    wake: asyncio.Event | None = None,
    drains: int = 1,
    strict: bool = False,
) -> None:
    """The relay loop (the one relay: the worker's, and the planner's when it publishes
    itself): publish everything due, `drains` at once (on PostgreSQL, one waits for the
    broker's confirms while another reads or marks its rows: SKIP LOCKED shares them);
    then wait for `wake` (set when jobs are committed), `stop`, or `idle` seconds. Rows
    published longer than `keep` ago are purged now and then. A failure is logged and
    retried; `strict` (the planner publishing its own jobs: it waits for every one to be
    out) raises it instead, publishes what is due once more after `stop`, and purges
    nothing."""
    stop = stop or asyncio.Event()
    wake = wake or asyncio.Event()
    last_purge: datetime | None = None
    while True:
        wake.clear()
        last = stop.is_set()
        if last and not strict:
            return
        try:
            await asyncio.gather(*(relay_all(maker, queue, clock()) for _ in range(drains)))
            now = clock()
            if not strict and (last_purge is None or now - last_purge > timedelta(minutes=10)):
                await purge_published(maker, now - keep)
                last_purge = now
        except QueueError as exc:
            if strict:
                raise
            log.warning("outbox relay: broker refused a batch, retrying later: %r", exc)
        except Exception:
            if strict:
                raise
            log.exception("outbox relay failed; retrying")
        if last:
            return
        await _first_of(stop, wake, idle)


async def _first_of(stop: asyncio.Event, wake: asyncio.Event, idle: float) -> None:
    """Wait until `stop` or `wake` is set, or `idle` seconds pass."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
