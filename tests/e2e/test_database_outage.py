"""A database outage is transient: a job that meets one should wait and come back, not be
requeued at once. Found by the database-restart test (`test_restarts.py`): while
PostgreSQL was down for four seconds, 48 of 300 jobs were dead-lettered and the campaign
completed only after an operator replayed them.

Why it happened: the worker let the driver's `ConnectionRefusedError` (or SQLAlchemy's
`OperationalError`) escape; the RabbitMQ adapter answers any unclassified exception with
nack-and-requeue, the broker hands the job straight back, and every redelivery fails the
same way within milliseconds, so the quorum queue's delivery limit (5 by default) is spent
in well under a second and the job is dead-lettered. The style guide's rule: the exception
type decides "transient, retry later" (`RetryLater`) against "permanent, dead-letter".
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from adapters.errors import RetryLater
from adapters.fakes import FakeTelephony
from adapters.ports import Delivery, Job
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.errors import database_unavailable
from dialer.dispatch.worker import Dispatcher

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


async def test_a_job_that_meets_a_database_outage_is_retried_later_not_requeued_at_once() -> None:
    # Nothing listens on port 1: every connection is refused, as while PostgreSQL restarts.
    settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/test")
    engine = build_engine(settings)
    try:
        dispatcher = Dispatcher(build_sessionmaker(engine), FakeTelephony(), None, lambda: NOW)
        job = Job(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), NOW)
        with pytest.raises(RetryLater):
            await dispatcher(Delivery(job))
    finally:
        await engine.dispose()


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["08006", "08003", "57P01", "57P03", "53300", "40001"])
def test_outage_sqlstates_are_transient(sqlstate: str) -> None:
    wrapped = DBAPIError("SELECT 1", None, _PgError(sqlstate))
    assert database_unavailable(wrapped)


def test_a_wrong_statement_is_not_an_outage() -> None:
    assert not database_unavailable(IntegrityError("INSERT", None, _PgError("23505")))
    assert not database_unavailable(DBAPIError("SELECT", None, _PgError("42P01")))
    assert not database_unavailable(ValueError("bad job"))
    assert not database_unavailable(
        OperationalError("SELECT", None, sqlite3.OperationalError("no such table: x"))
    )


def test_refused_connections_and_a_locked_sqlite_are_outages() -> None:
    try:
        raise RuntimeError("while dispatching") from ConnectionRefusedError(111, "refused")
    except RuntimeError as exc:
        assert database_unavailable(exc)
    locked = OperationalError("UPDATE", None, sqlite3.OperationalError("database is locked"))
    assert database_unavailable(locked)
