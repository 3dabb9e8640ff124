"""Twilio's webhooks, under /v1/twilio (the paths `adapters.twilio.WebhookPaths` builds).

They authenticate by `X-Twilio-Signature`, not by API key: a missing or bad signature is
a 403 that changes nothing. Each handler commits its event before answering 2xx (Twilio
retries what it does not see answered). The routes hold no business logic: they parse,
authenticate, and hand the form to `dialer.callbacks.apply` / `voice_flow`. While the
database is down they answer 503 with Retry-After within a bounded time
(`dialer.api.outage`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.ports import Telephony
from dialer.api.deps import get_now, get_settings
from dialer.api.outage import GuardedRoute
from dialer.api.twilio_form import verified_form
from dialer.callbacks import apply as callbacks
from dialer.callbacks.fastpath import FastStatusPath
from dialer.callbacks.forms import CallRef, Hold, Keypress
from dialer.observability.metrics import Metrics
from dialer.services import agents, voice_flow


class Background:
    """Work a webhook starts after its commit and does not wait for (the voicemail
    redirect): the tasks are kept referenced, and drained when the app stops."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan (FastAPI merges router lifespans), after the engine.
    The telephony that redirects live calls is `app.state.telephony`, read at each use:
    the one the composition root (or a test) set, before or after start, else one built
    here from the settings like the worker's (and closed here)."""
    from dialer.dispatch.runtime import build_telephony  # the dispatch root: imported only to start

    fast = await FastStatusPath.open(app.state.settings)
    app.state.webhook_fast_path = fast
    built: Telephony | None = None
    if getattr(app.state, "telephony", None) is None:
        built = app.state.telephony = build_telephony(app.state.settings, app.state.clock)
    app.state.webhook_background = background = Background()
    # SQLite has one writer at a time: callbacks take turns here rather than contend for
    # the file's write lock, whose busy handler sleeps and backs off (the collapse under load).
    app.state.webhook_gate = asyncio.Lock() if app.state.settings.is_sqlite else None
    try:
        yield
    finally:
        await background.drain()
        if built is not None:
            await built.close()
        if fast is not None:
            await fast.close()


# Every route answers a 503 with Retry-After, quickly, while the database is down.
router = APIRouter(
    prefix="/twilio", tags=["twilio webhooks"], lifespan=lifespan, route_class=GuardedRoute
)
SIGNED = {"description": "authenticated by X-Twilio-Signature (403 otherwise)"}
UNAVAILABLE = {"description": "the database is unreachable: retry after Retry-After"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


def _metrics(request: Request) -> Metrics | None:
    """The app's metrics; None when the app was built without them (some tests)."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    return metrics


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return maker


@asynccontextmanager
async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """The session of one callback, taken in turn with the others on SQLite (`lifespan`)."""
    gate: asyncio.Lock | None = getattr(request.app.state, "webhook_gate", None)
    async with gate or nullcontext(), _sessions(request)() as session:
        yield session


# Each route opens its session itself, inside its handler: the outage guard bounds the
# handler, session included (`dialer.api.outage`). On PostgreSQL the two status routes are
# answered before this router by `dialer.api.twilio_fast` (error 21610 excepted).
@router.post("/voice/status", status_code=204, responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_status(request: Request) -> Response:
    """Call progress: initiated, ringing, answered, completed (with CallDuration)."""
    form = await verified_form(request, get_settings(request))
    now = get_now(request)
    async with _session(request) as session:
        await callbacks.record_call_status(session, form, now, metrics=_metrics(request))
        call = CallRef.of(form)
        if call.attempt_id is not None and callbacks.call_is_over(form):
            await agents.call_over(session, call.attempt_id, now)  # the agent's wrap-up
    return Response(status_code=204)


@router.post("/voice/amd", status_code=204, responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_amd(request: Request) -> Response:
    """Asynchronous answering-machine detection (`AnsweredBy`). At the end of a machine's
    greeting the live call is redirected to the voicemail message, once, after the commit
    and without holding up this answer."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    metrics = _metrics(request)
    async with _session(request) as session:
        claim = await callbacks.record_amd(session, form, get_now(request), metrics=metrics)
    if claim is not None:
        telephony: Telephony = request.app.state.telephony
        background: Background = request.app.state.webhook_background
        background.spawn(
            voice_flow.leave_voicemail(
                _sessions(request), telephony, claim, settings, metrics=metrics
            )
        )
    return Response(status_code=204)


@router.post("/voice/voicemail", responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_voicemail(request: Request) -> Response:
    """The TwiML of a call redirected after the machine's beep: the limited-content
    voicemail at the level granted for an answering machine (hangs up otherwise)."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    async with _session(request) as session:
        return _xml(await voice_flow.voicemail(session, CallRef.of(form), settings))


@router.post("/voice/answer", responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_answer(request: Request) -> Response:
    """The call's first TwiML: the greeting, within the disclosure granted."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    async with _session(request) as session:
        return _xml(await voice_flow.answer(session, CallRef.of(form), settings))


@router.post("/voice/gather", responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_gather(request: Request) -> Response:
    """A keypress (`Digits`) at the greeting or in the debtor menu."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    async with _session(request) as session:
        press = Keypress.of(form)
        key = callbacks.event_key("gather", form)
        reply = await voice_flow.gather(
            session, press, key, form.fields, settings, get_now(request)
        )
        return _xml(reply)


@router.post("/voice/hold", responses={403: SIGNED, 503: UNAVAILABLE})
async def voice_hold(request: Request) -> Response:
    """A verified person waiting for a collector (`<Redirect>` after a `<Pause>`): put
    through to one free now, or wait once more, or the abandoned-call message once the
    2 s the abandonment rule allows have passed. Answered after the commit."""
    settings = get_settings(request)
    form = await verified_form(request, settings)
    async with _session(request) as session:
        wait = Hold.of(form)
        return _xml(await voice_flow.hold(session, wait, settings, get_now(request)))


@router.post("/sms/status", status_code=204, responses={403: SIGNED, 503: UNAVAILABLE})
async def sms_status(request: Request) -> Response:
    """SMS delivery: queued, sent, delivered, undelivered, failed (with ErrorCode)."""
    form = await verified_form(request, get_settings(request))
    async with _session(request) as session:
        await callbacks.record_sms_status(
            session, form, get_now(request), metrics=_metrics(request)
        )
    return Response(status_code=204)


@router.post("/sms/inbound", responses={403: SIGNED, 503: UNAVAILABLE})
async def sms_inbound(request: Request) -> Response:
    """A reply: STOP and the other opt-out words (退订, TD), START, HELP, or text kept on
    the case. Twilio answers its own keywords, so the reply is empty TwiML."""
    form = await verified_form(request, get_settings(request))
    async with _session(request) as session:
        await callbacks.record_inbound_sms(
            session, form, get_now(request), clock=request.app.state.clock
        )
    return _xml(EMPTY_TWIML)
