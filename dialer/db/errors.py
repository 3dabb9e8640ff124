"""Which database errors mean "the database is unavailable for now" (retry later) rather
than "this statement is wrong" (a bug, or data that can never be written).

A worker that meets an outage must not hand its job straight back to the broker: every
redelivery would fail the same way within milliseconds and spend the queue's delivery
limit, dead-lettering jobs that only needed to wait (`tests/e2e/test_database_outage.py`).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that a restart, a failover or an overloaded server produce.
_UNAVAILABLE_CLASSES = ("08",)  # connection exception (08000, 08003, 08006, ...)
_UNAVAILABLE_CODES = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, in recovery)
        "53300",  # too_many_connections
        "40001",  # serialization_failure: safe to run the whole job again
        "40P01",  # deadlock_detected: likewise
    }
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 16:
            continue
        seen.append(e)
        todo.extend((e.__cause__, e.__context__, getattr(e, "orig", None)))
    return seen


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or anything it was raised from) says the database could not be
    reached or asked us to come back later; False for every other error."""
    for e in _chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.TimeoutError):  # no pooled connection came free in time
            return True
        if isinstance(e, OSError):  # refused, reset, unreachable, timed out
            return True
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            return True
        code = getattr(e, "sqlstate", None)
        if isinstance(code, str) and (
            code in _UNAVAILABLE_CODES or code.startswith(_UNAVAILABLE_CLASSES)
        ):
            return True
    return False
