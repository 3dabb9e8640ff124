"""Twilio's status callbacks answered at the edge of the app, on PostgreSQL.

Status callbacks are most of the webhook traffic. Through FastAPI each one pays for the
whole stack: the error and body-limit middlewares, route matching over every API route,
dependency solving and a threadpool-free but generic request handler; that stack costs
more than the work itself (parse, HMAC, one SQL statement). `FastWebhooks` is a plain ASGI
middleware, outermost, that answers `POST /v1/twilio/voice/status` and
`POST /v1/twilio/sms/status` itself when the one-statement path (`FastStatusPath`) is
open, and hands everything else to the app unchanged.

It keeps every rule of the routes in `dialer.api.routes.twilio`: the body is capped
(`DIALER_WEBHOOK_MAX_BODY_BYTES`, 413), the signature is checked first (`callbacks.forms.verify`,
403 in the standard error shape, nothing written), a malformed form is a 400, and the 204
goes out only after the statement committed (and, for a call's end, the move of the
collector holding it); while the database is unreachable (or slower
than `DIALER_WEBHOOK_DATABASE_TIMEOUT_SECONDS`) it answers 503 with Retry-After, like the
routes (`dialer.api.outage`), and Twilio retries per the URL's connection overrides;
any other database error propagates. Its latency is observed in
`dialer_webhook_latency_seconds` under the same route label as `WebhookTiming` gives the
FastAPI routes. What the one statement cannot do (error
21610 opts a number out) is replayed into the app, body included, and takes the session
path there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dialer.api.asgi import replay_body, send_error
from dialer.api.outage import RETRY_AFTER_SECONDS, DatabaseUnavailableError, guarded
from dialer.api.twilio_form import scope_form
from dialer.callbacks import apply as callbacks
from dialer.callbacks.fastpath import FastStatusPath
from dialer.callbacks.forms import MalformedWebhookError, call_status_event, sms_status_event
from dialer.core.errors import DialerError, PayloadTooLargeError
from dialer.domain.attempts import FINAL_STATES
from dialer.services import agents

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from dialer.core.settings import Settings
    from dialer.observability.metrics import Metrics

VOICE_STATUS = "/v1/twilio/voice/status"
SMS_STATUS = "/v1/twilio/sms/status"
_NO_CONTENT: Message = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY: Message = {"type": "http.response.body", "body": b""}
_RETRY_AFTER = str(RETRY_AFTER_SECONDS).encode()


class _Replay(Exception):
    """The statement cannot handle this event: the app's route must (body replayed)."""


class FastWebhooks:
    """ASGI middleware answering the two status callbacks (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if (path != VOICE_STATUS and path != SMS_STATUS) or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        fast: FastStatusPath | None = getattr(state, "webhook_fast_path", None)
        if fast is None:  # SQLite, or not started: the FastAPI route does it
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        metrics: Metrics | None = getattr(state, "metrics", None)
        settings: Settings = state.settings
        body = b""
        try:
            body = await _read(scope, receive, settings.webhook_max_body_bytes)
            work = _handle(scope, body, fast, settings, state.clock(), metrics, path)
            await guarded(work, settings)
        except _Replay:
            await self.app(scope, replay_body(body, receive), send)
            return
        except DialerError as exc:
            await _error(send, exc)
        else:
            await send(_NO_CONTENT)
            await send(_EMPTY)
        if metrics is not None:
            metrics.observe_webhook(path, time.perf_counter() - start)


async def _read(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLargeError("webhook body too large")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise MalformedWebhookError("the request ended before its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError("webhook body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _handle(
    scope: Scope,
    body: bytes,
    fast: FastStatusPath,
    settings: Settings,
    now: Any,
    metrics: Metrics | None,
    path: str,
) -> None:
    form = scope_form(scope, body, settings)
    if path == VOICE_STATUS:
        sid, event = call_status_event(form)
        held = await fast.record("voice_status", form, sid, event, now, metrics=metrics)
        if held is not None and event.target in FINAL_STATES:
            # the collector holding the call: freed, or owes wrap-up (committed before 204)
            async with scope["app"].state.sessionmaker() as session:
                await agents.call_over(session, held, now)
        return
    sid, event = sms_status_event(form)
    if event.error_code == callbacks.OPTED_OUT_ERROR:
        raise _Replay  # opting the number out needs the session path
    await fast.record("sms_status", form, sid, event, now, metrics=metrics)


async def _error(send: Send, exc: DialerError) -> None:
    headers = [(b"retry-after", _RETRY_AFTER)] if isinstance(exc, DatabaseUnavailableError) else []
    await send_error(send, exc.status_code, exc.code, exc.message, exc.fields, headers=headers)
