"""Engine and session factory, built by the composition root (FastAPI lifespan, CLI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from dialer.settings import Settings


def build_engine(
    settings: Settings, *, pool_size: int | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """`pool_size`: connections kept (a worker sizes it to its concurrency). `pre_ping`
    costs a round trip per checkout; a worker turns it off, since a job that fails on a
    dropped connection is redelivered and the pool replaces the connection."""
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
