"""Telephony through Twilio: calls with status callbacks and answering-machine detection,
SMS with status callbacks, and the look-ups the reconciler needs.

Only what Twilio certainly did not do is retried (429, a request never sent; a create only
with `retry_creates`). A 5xx or lost response on a create raises `AmbiguousError` after one
POST and the reconciler looks it up before anything dials again: the attempt id rides in
every callback URL, so callbacks map back even when the create response was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.rest import Client  # type: ignore[import-untyped]

from adapters.callback_urls import DEFAULT_CONNECTION_OVERRIDES, callback_url, check_overrides
from adapters.errors import (
    AdapterError,
    AmbiguousError,
    NotFoundError,
    PermanentError,
    PermanentErrorKind,
    TransientError,
)
from adapters.ports import (
    CallInfo,
    CallRequest,
    MessageInfo,
    ProviderRef,
    SmsRequest,
    Telephony,
)
from adapters.sendby import SEND_BY
from adapters.twilio_client import TOO_MANY_REQUESTS, HttpxTwilioClient

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]

# Twilio error codes -> what we record on the contact point.
# https://www.twilio.com/docs/api/errors
ERROR_KINDS: dict[int, PermanentErrorKind] = {
    21211: PermanentErrorKind.INVALID_NUMBER,  # invalid 'To' phone number
    21217: PermanentErrorKind.INVALID_NUMBER,  # phone number does not appear to be valid
    21614: PermanentErrorKind.INVALID_NUMBER,  # 'To' is not a valid mobile number (SMS)
    21610: PermanentErrorKind.OPTED_OUT,  # recipient replied STOP
    21215: PermanentErrorKind.BLOCKED,  # geo permissions do not allow this number
    21216: PermanentErrorKind.BLOCKED,  # number blocked by Twilio
    21408: PermanentErrorKind.BLOCKED,  # SMS permission not enabled for the region
    20003: PermanentErrorKind.AUTH,  # authentication failed
}
NOT_FOUND = 20404


@dataclass(frozen=True, slots=True)
class WebhookPaths:
    """Where the service answers Twilio (dialer.api.routes.twilio); each gets
    `?attempt=<attempt id>` appended. Inbound SMS (`/v1/twilio/sms/inbound`) is set on the
    Twilio number itself."""

    voice_twiml: str = "/v1/twilio/voice/answer"
    voice_status: str = "/v1/twilio/voice/status"
    voice_amd: str = "/v1/twilio/voice/amd"
    sms_status: str = "/v1/twilio/sms/status"


@dataclass(frozen=True, slots=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    public_base_url: str  # as Twilio reaches the service, e.g. https://dialer.example.com
    messaging_service_sid: str | None = None  # SMS sender when a request names no number
    default_sms_from: str | None = None
    paths: WebhookPaths = WebhookPaths()
    machine_detection: str = "DetectMessageEnd"  # leave a voicemail after the beep
    max_attempts: int = 4  # per request, counting the first
    max_retry_wait: float = 30.0  # seconds, also caps a Retry-After
    retry_creates: bool = True  # False: the caller retries a create (on its own pacing)
    region: str | None = None
    edge: str | None = None
    # The fragment every callback URL carries (`adapters.callback_urls`); "" for none.
    connection_overrides: str = DEFAULT_CONNECTION_OVERRIDES


Sleep = Callable[[float], Awaitable[None]]


class TwilioTelephony(Telephony):
    def __init__(
        self,
        settings: TwilioSettings,
        *,
        http_client: HttpxTwilioClient | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings
        self._overrides = check_overrides(settings.connection_overrides)
        self._http = http_client or HttpxTwilioClient()
        self._client = Client(
            settings.account_sid,
            settings.auth_token,
            http_client=self._http,
            region=settings.region,
            edge=settings.edge,
        )
        self._sleep: Sleep = sleep or asyncio.sleep
        self._backoff = wait_random_exponential(multiplier=0.5, max=settings.max_retry_wait)

    # --- the port ----------------------------------------------------------------------
    async def place_call(self, request: CallRequest) -> ProviderRef:
        s = self.settings
        params: dict[str, Any] = {
            "to": request.to,
            "from_": request.from_number,
            "url": self.webhook_url(s.paths.voice_twiml, request.attempt_id),
            "method": "POST",
            "status_callback": self.webhook_url(s.paths.voice_status, request.attempt_id),
            "status_callback_event": STATUS_CALLBACK_EVENTS,
            "status_callback_method": "POST",
        }
        if request.machine_detection:
            params |= {
                "machine_detection": s.machine_detection,
                "async_amd": "true",
                "async_amd_status_callback": self.webhook_url(
                    s.paths.voice_amd, request.attempt_id
                ),
                "async_amd_status_callback_method": "POST",
            }
        if request.ring_timeout_seconds is not None:
            params["timeout"] = request.ring_timeout_seconds
        if request.time_limit_seconds is not None:
            params["time_limit"] = request.time_limit_seconds
        call = await self._create(
            lambda: self._client.calls.create_async(**params), "create call", request.send_by
        )
        return ProviderRef("twilio", str(call.sid), call.status)

    async def send_sms(self, request: SmsRequest) -> ProviderRef:
        s = self.settings
        params: dict[str, Any] = {
            "to": request.to,
            "body": request.body,
            "status_callback": self.webhook_url(s.paths.sms_status, request.attempt_id),
        }
        sender = request.from_number or s.default_sms_from
        if request.from_number is None and s.messaging_service_sid:
            params["messaging_service_sid"] = s.messaging_service_sid
        elif sender:
            params["from_"] = sender
        else:
            raise ValueError("no SMS sender: set messaging_service_sid or a from number")
        message = await self._create(
            lambda: self._client.messages.create_async(**params), "send SMS", request.send_by
        )
        return ProviderRef("twilio", str(message.sid), message.status)

    async def fetch_call(self, sid: str) -> CallInfo:
        call = await self._call(
            lambda: self._client.calls(sid).fetch_async(), creates=False, what="fetch call"
        )
        return _call_info(call)

    async def fetch_message(self, sid: str) -> MessageInfo:
        message = await self._call(
            lambda: self._client.messages(sid).fetch_async(), creates=False, what="fetch SMS"
        )
        return _message_info(message)

    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        # Twilio's Messages list filtered by `To` and `DateSent>=` (its date filter) finds
        # every message sent since; a message still queued or accepted has no sent date yet
        # and that filter leaves it out, so the newest messages to the number are read as
        # well. Both are merged by sid and kept when created since `after`, newest first.
        since = after.astimezone(UTC)
        sent = await self._call(
            lambda: self._client.messages.list_async(to=to, date_sent_after=since, limit=50),
            creates=False,
            what="list SMS",
        )
        newest = await self._call(
            lambda: self._client.messages.list_async(to=to, limit=20),
            creates=False,
            what="list SMS",
        )
        found: dict[str, MessageInfo] = {}
        for m in [*sent, *newest]:
            info = _message_info(m)
            found.setdefault(info.sid, info)
        kept = [m for m in found.values() if m.created_at is None or m.created_at >= after]
        return sorted(kept, key=lambda m: m.created_at or after, reverse=True)

    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        # Filter on `To` only and compare creation times here: Twilio's StartTime filters
        # leave out calls still queued (no start time yet), which are exactly the ones a
        # lost create response may have left behind. Calls come newest first.
        calls = await self._call(
            lambda: self._client.calls.list_async(to=to, limit=50),
            creates=False,
            what="list calls",
        )
        found = [_call_info(c) for c in calls]
        return [c for c in found if c.created_at is None or c.created_at >= after]

    async def update_call(self, sid: str, twiml_url: str) -> None:
        # `creates=True`: a redirect that may have reached Twilio (5xx, lost response) is
        # ambiguous, not retried: a second redirect would start the message again.
        await self._call(
            lambda: self._client.calls(sid).update_async(url=twiml_url, method="POST"),
            creates=True,
            what="update call",
        )

    async def close(self) -> None:
        await self._http.aclose()

    # --- helpers -----------------------------------------------------------------------
    def webhook_url(self, path: str, attempt_id: str) -> str:
        return callback_url(
            self.settings.public_base_url, path, {"attempt": attempt_id}, self._overrides
        )

    async def _create(self, op: Callable[[], Awaitable[T]], what: str, send_by: float | None) -> T:
        """A create (call, SMS): sent only before the caller's deadline (`SEND_BY`, checked
        by the HTTP layer), retried only with `retry_creates`."""
        token = SEND_BY.set(send_by)
        try:
            return await self._call(op, creates=True, what=what, retry=self.settings.retry_creates)
        finally:
            SEND_BY.reset(token)

    async def _call(
        self, op: Callable[[], Awaitable[T]], *, creates: bool, what: str, retry: bool = True
    ) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts if retry else 1),
            wait=self._wait,
            retry=retry_if_exception_type(TransientError),
            reraise=True,
            sleep=self._sleep,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await op()
                except TwilioException as exc:
                    raise map_twilio_error(exc, creates=creates, what=what) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        cap = self.settings.max_retry_wait
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, cap)
        return float(self._backoff(state))


def map_twilio_error(exc: TwilioException, *, creates: bool, what: str) -> AdapterError:
    """Turn the library's exception into ours. `creates`: the request could have made
    something (a call, a message), so an unexplained server failure is ambiguous."""
    status: int | None = None
    code: int | None = None
    message = str(exc)
    if isinstance(exc, TwilioRestException):
        status, code, message = exc.status, exc.code, str(exc.msg)
    elif isinstance(exc, TwilioServiceException):
        status, code, message = exc.status, exc.code, f"{exc.title}: {exc.detail or ''}"
    text = f"Twilio refused to {what}: HTTP {status} code {code}: {message}"
    if status == 429 or code == TOO_MANY_REQUESTS:
        return TransientError(text)
    if status is None or status >= 500:
        return AmbiguousError(text) if creates else TransientError(text)
    if code is not None and code in ERROR_KINDS:
        return PermanentError(text, kind=ERROR_KINDS[code], code=code)
    if status == 401:
        return PermanentError(text, kind=PermanentErrorKind.AUTH, code=code)
    if status == 404 or code == NOT_FOUND:
        return NotFoundError(text)
    return PermanentError(text, kind=PermanentErrorKind.OTHER, code=code)


def _call_info(call: Any) -> CallInfo:
    duration = call.duration
    return CallInfo(
        sid=str(call.sid),
        status=str(call.status),
        to=str(call.to),
        from_number=str(call._from),
        created_at=_aware(call.date_created),
        started_at=_aware(call.start_time),
        duration_seconds=int(duration) if duration not in (None, "") else None,
        answered_by=call.answered_by,
    )


def _message_info(message: Any) -> MessageInfo:
    return MessageInfo(
        sid=str(message.sid),
        status=str(message.status),
        to=str(message.to),
        error_code=message.error_code,
        created_at=_aware(message.date_created),
        sent_at=_aware(message.date_sent),
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is None or not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
