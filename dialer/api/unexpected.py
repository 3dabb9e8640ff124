"""The last line of defence: an error nobody expected still gets the one error shape, with a
request id that the log line carries too, so a client's report leads to the traceback.

Outermost of the app's middlewares, so it also covers the body limit and the webhook fast
route. A database that cannot be reached is a 503 (retry later), anything else a 500. The
exception is logged here and not raised on, so the server does not log it a second time.
"""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api.asgi import send_error
from dialer.db.errors import database_unavailable

log = logging.getLogger(__name__)


class UnexpectedErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            request_id = uuid.uuid4().hex
            unavailable = database_unavailable(exc)
            log.error(
                "database unavailable" if unavailable else "unexpected error",
                exc_info=exc,
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                },
            )
            if started:  # the status line is out: all that is left is to close the stream
                raise
            if unavailable:
                status, code, message = 503, "unavailable", "the database is unavailable: retry"
            else:
                status, code, message = 500, "internal_error", "an unexpected error occurred"
            await send_error(
                send,
                status,
                code,
                f"{message} (request id {request_id})",
                extra={"request_id": request_id},
            )
