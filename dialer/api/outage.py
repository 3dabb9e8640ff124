"""While the database is down, a Twilio callback gets a quick 503 with Retry-After.

A callback that hangs or fails with a 500 is the worst answer: Twilio's budget is short and
it retries only what the connection overrides ask (`adapters.callback_urls`). So every
callback route's database work is `guarded`: past `DIALER_WEBHOOK_DATABASE_TIMEOUT_SECONDS`,
or when the database is unreachable (`dialer.db.errors.database_unavailable`), it becomes
`DatabaseUnavailableError`. Nothing was committed, so Twilio's retry does the work once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from dialer.api.errors import error_body
from dialer.core.errors import DialerError
from dialer.core.settings import Settings
from dialer.db.errors import database_unavailable

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 2
T = TypeVar("T")


class DatabaseUnavailableError(DialerError):
    status_code = 503
    code = "database_unavailable"


async def guarded(work: Coroutine[Any, Any, T], settings: Settings) -> T:
    """Run `work` (a callback's database work) as a task given
    `DIALER_WEBHOOK_DATABASE_TIMEOUT_SECONDS`; past that, or on an error that says the
    database is unreachable, raise `DatabaseUnavailableError`. Work cut short is cancelled
    and left to finish dropping its connection in the background: SQLAlchemy first tries to
    close a connection that stopped answering politely, for up to 2 s, and Twilio should
    not wait for that."""
    limit = settings.webhook_database_timeout_seconds
    task = asyncio.create_task(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except BaseException:  # the request itself was cancelled: so is its work
        task.cancel()
        raise
    if not done:
        task.cancel()
        _LINGERING.add(task)
        task.add_done_callback(_forget)
        log.warning("webhook: the database did not answer within %ss: 503", limit)
        raise DatabaseUnavailableError(
            f"the database did not answer within {limit:g} s; retry later"
        )
    try:
        return task.result()
    except DialerError:
        raise
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("webhook: the database is unreachable (%s): 503", type(exc).__name__)
        raise DatabaseUnavailableError("the database is unreachable; retry later") from exc


_LINGERING: set[asyncio.Task[Any]] = set()  # work cut short, until it has ended


def _forget(task: asyncio.Task[Any]) -> None:
    _LINGERING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.info("webhook: work cut short ended with %r", task.exception())


def unavailable_response(exc: DatabaseUnavailableError) -> Response:
    return JSONResponse(
        error_body(exc.code, exc.message),
        status_code=exc.status_code,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


class GuardedRoute(APIRoute):
    """A webhook route whose whole handler (the session it opens included) is `guarded`:
    a 503 with Retry-After while the database is down."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await guarded(handler(request), request.app.state.settings)
            except DatabaseUnavailableError as exc:
                return unavailable_response(exc)

        return route
