"""Fakes of our own ports for the service's tests: they record what they were asked and
fail on demand. (The in-process queue needs no fake: use `InProcessJobQueue` with a
`ManualClock`.)"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

from adapters.errors import AdapterError, NotFoundError
from adapters.ports import (
    CallInfo,
    CallRequest,
    EmailMessage,
    Mailer,
    MessageInfo,
    ProviderRef,
    SmsRequest,
    Telephony,
)


class FakeTelephony(Telephony):
    """Records calls and SMS by destination; `fail_next(to, error)` makes the next request
    to that number raise (an `AmbiguousError` after "placing" the call models a lost
    response: the call exists and `find_calls` finds it)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now
        self.calls: dict[str, list[CallRequest]] = defaultdict(list)
        self.sms: dict[str, list[SmsRequest]] = defaultdict(list)
        self.placed: dict[str, CallInfo] = {}
        self.messages: dict[str, MessageInfo] = {}
        self.updates: dict[str, list[str]] = defaultdict(list)  # call sid -> TwiML URLs
        self._failures: dict[str, list[tuple[AdapterError, bool]]] = defaultdict(list)
        self._sids = itertools.count(1)

    def fail_next(self, to: str, error: AdapterError, *, after_acting: bool = False) -> None:
        """The next request to `to` raises `error`; with `after_acting` the call or message
        is created first, as when Twilio acted but its response was lost."""
        self._failures[to].append((error, after_acting))

    def _failure(self, to: str) -> tuple[AdapterError, bool] | None:
        queued = self._failures.get(to)
        return queued.pop(0) if queued else None

    async def place_call(self, request: CallRequest) -> ProviderRef:
        failure = self._failure(request.to)
        if failure and not failure[1]:
            raise failure[0]
        sid = f"CA{next(self._sids):032d}"
        self.calls[request.to].append(request)
        self.placed[sid] = CallInfo(sid, "queued", request.to, request.from_number, self.now)
        if failure:
            raise failure[0]
        return ProviderRef("fake", sid, "queued")

    async def send_sms(self, request: SmsRequest) -> ProviderRef:
        failure = self._failure(request.to)
        if failure and not failure[1]:
            raise failure[0]
        sid = f"SM{next(self._sids):032d}"
        self.sms[request.to].append(request)
        self.messages[sid] = MessageInfo(sid, "accepted", request.to, None, self.now)
        if failure:
            raise failure[0]
        return ProviderRef("fake", sid, "accepted")

    async def fetch_call(self, sid: str) -> CallInfo:
        if sid not in self.placed:
            raise NotFoundError(sid)
        return self.placed[sid]

    async def fetch_message(self, sid: str) -> MessageInfo:
        if sid not in self.messages:
            raise NotFoundError(sid)
        return self.messages[sid]

    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        found = [
            c
            for c in self.placed.values()
            if c.to == to and (c.created_at is None or c.created_at >= after)
        ]
        return found[::-1]

    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        found = [
            m
            for m in self.messages.values()
            if m.to == to and (m.created_at is None or m.created_at >= after)
        ]
        return found[::-1]

    async def update_call(self, sid: str, twiml_url: str) -> None:
        """Records the redirect; `fail_next(sid, error)` makes the next one for `sid`
        raise (with `after_acting`, after recording it, as a lost response would)."""
        failure = self._failure(sid)
        if failure and not failure[1]:
            raise failure[0]
        if sid not in self.placed:
            raise NotFoundError(sid)
        self.updates[sid].append(twiml_url)
        if failure:
            raise failure[0]

    def set_call_status(self, sid: str, status: str, answered_by: str | None = None) -> None:
        call = self.placed[sid]
        self.placed[sid] = CallInfo(
            call.sid, status, call.to, call.from_number, call.created_at, answered_by=answered_by
        )

    def set_message_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        message = self.messages[sid]
        self.messages[sid] = MessageInfo(
            message.sid, status, message.to, error_code, message.created_at, self.now
        )


class FakeMailer(Mailer):
    def __init__(self) -> None:
        self.sent: dict[str, list[EmailMessage]] = defaultdict(list)
        self._failures: dict[str, list[AdapterError]] = defaultdict(list)
        self._ids = itertools.count(1)

    def fail_next(self, to: str, error: AdapterError) -> None:
        self._failures[to].append(error)

    async def send(self, message: EmailMessage) -> ProviderRef:
        if self._failures.get(message.to):
            raise self._failures[message.to].pop(0)
        self.sent[message.to].append(message)
        return ProviderRef("fake", f"<{message.attempt_id}.{next(self._ids)}@fake>", "accepted")
