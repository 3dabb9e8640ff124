"""Engine and session factory, built by the composition root (FastAPI lifespan, CLI)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from dialer.core.settings import Settings

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings, *, pool_size: int | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """`pool_size`: connections kept (a worker sizes it to its concurrency). `pre_ping`
    costs round trips per checkout (three on asyncpg: BEGIN, a no-op, ROLLBACK); without
    it (the API server, a worker) a PostgreSQL connection is still checked on checkout
    for free: one the server closed (a restart, `pg_terminate_backend`, an idle timeout)
    is already marked closed by the driver and is replaced before use
    (`_closed_on_checkout`), and none is kept longer than `RECYCLE_SECONDS`. What that
    misses (a connection cut silently mid-way) fails its request: a 503 to retry (a job:
    redelivered), nothing committed, and SQLAlchemy then renews the whole pool."""
    connect_args: dict[str, Any] = {}
    # Statement parameters hold debtors' names and numbers: never in an error's text (which
    # reaches tracebacks and logs) nor in the echoed SQL.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if settings.database_echo:
        _echo_through_masked_logging()
    if settings.is_sqlite:
        connect_args["timeout"] = 30
    elif settings.database_schema:
        connect_args["server_settings"] = {"search_path": settings.database_schema}
    if not settings.is_sqlite:
        kwargs["pool_pre_ping"] = pre_ping
        kwargs["pool_recycle"] = RECYCLE_SECONDS
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 0  # a fixed size: many workers share max_connections
    engine = create_async_engine(settings.database_url, connect_args=connect_args, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif not pre_ping:
        event.listen(engine.sync_engine, "checkout", _closed_on_checkout)
    return engine


# Connections older than this are closed at checkout (no round trip), before a server's or
# a proxy's idle timeout is likely to have cut them silently.
RECYCLE_SECONDS = 1800


def _closed_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed is refused; the pool opens another."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _echo_through_masked_logging() -> None:
    """DIALER_DATABASE_ECHO: SQLAlchemy's statements at INFO through the process's logging
    (masked like every other line), not `echo=True`'s own unmasked handler on stdout."""
    logging.getLogger("sqlalchemy.engine.Engine").setLevel(logging.INFO)
    log.warning(
        "DIALER_DATABASE_ECHO is on: every SQL statement is logged (parameters hidden,"
        " phone numbers masked); turn it off outside debugging"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
