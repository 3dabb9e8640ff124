"""Engine and session factory, built by the composition root (FastAPI lifespan, CLI)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
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
    costs a round trip per checkout; a worker turns it off, since a job that fails on a
    dropped connection is redelivered and the pool replaces the connection."""
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
        if pool_size is not None:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 0  # a fixed size: many workers share max_connections
    engine = create_async_engine(settings.database_url, connect_args=connect_args, **kwargs)
    if settings.is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


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
