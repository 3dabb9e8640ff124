"""The telephony simulator: the embedded default's `Telephony`. It dials nobody.

`place_call` and `send_sms` answer at once with a Twilio-shaped SID, then, in the
background, post what Twilio would post back to the running service over HTTP, each
request signed with `X-Twilio-Signature` exactly as Twilio signs it (twilio-python's
`RequestValidator` over the public URL and the form fields):

- a call: initiated, ringing, then busy / no-answer / failed, or answered (in-progress)
  with asynchronous answering-machine detection (`AnsweredBy` human, or machine_end_beep
  as Twilio reports a machine under `DetectMessageEnd`, the adapter's mode);
  for a human it fetches the call's TwiML and presses keys the way `<Gather>` posts
  them (1 = right party, 2 = someone else; in the menu 1 = promise, 2 = call back,
  9 = stop), follows a `<Redirect>` after its `<Pause>` (a caller waiting for a
  collector), then completed with a duration;
- an SMS: sent, then delivered, or undelivered / failed with an `ErrorCode`; now and then
  the recipient replies STOP.

The mix comes from a `random.Random` seeded by (seed, destination, n-th request to it), so
a run is reproducible whatever order the worker dispatches in. Delays are milliseconds:
a morning runs in seconds. `fetch_call`, `fetch_message`, `find_calls` and
`find_messages` answer from what the simulator has played so far, for the reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, urldefrag, urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from adapters.errors import NotFoundError, PermanentError, PermanentErrorKind
from adapters.ports import (
    CallInfo,
    CallRequest,
    MessageInfo,
    ProviderRef,
    SmsRequest,
    Telephony,
)
from adapters.twilio import WebhookPaths

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
INBOUND_SMS_PATH = "/v1/twilio/sms/inbound"
CALL_OUTCOMES = ("human", "machine", "busy", "no-answer", "failed")
SMS_OUTCOMES = ("delivered", "undelivered", "failed")
# https://www.twilio.com/docs/api/errors: unreachable handset, unknown handset, landline
UNDELIVERED_CODES = (30003, 30005, 30006)
FAILED_CODES = (30007, 30008)  # carrier filtering, unknown error


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Mix:
    """Relative weights of what happens; each draw is independent."""

    call: dict[str, float] = field(
        default_factory=lambda: {
            "human": 0.45,
            "machine": 0.2,
            "busy": 0.1,
            "no-answer": 0.2,
            "failed": 0.05,
        }
    )
    right_party: float = 0.8  # a human presses 1 at the greeting (else 2: someone else)
    menu: dict[str, float] = field(default_factory=lambda: {"1": 0.5, "2": 0.35, "9": 0.15})
    sms: dict[str, float] = field(
        default_factory=lambda: {"delivered": 0.85, "undelivered": 0.1, "failed": 0.05}
    )
    sms_stop: float = 0.05  # a delivered text is answered STOP


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    account_sid: str
    auth_token: str
    public_base_url: str  # as "Twilio" reaches the service: URLs are signed against it
    post_base_url: str | None = None  # where to post, when it differs (None: the public URL)
    our_number: str = "+15005550006"  # the To of inbound replies
    seed: int = 7
    mix: Mix = field(default_factory=Mix)
    delay: tuple[float, float] = (0.001, 0.01)  # seconds between two callbacks of one call
    # before the first callback: the provider's answer reaches the caller first, as it
    # nearly always does with Twilio
    first_delay: tuple[float, float] = (0.2, 0.4)
    paths: WebhookPaths = field(default_factory=WebhookPaths)
    inbound_path: str = INBOUND_SMS_PATH
    retries: int = 3  # a callback the service did not answer is sent again (as Twilio does)
    pause_scale: float = 1.0  # a TwiML <Pause length="n"> lasts n x this many seconds


@dataclass(slots=True)
class Stats:
    """What the simulator posted and how the service answered."""

    posted: Counter[str] = field(default_factory=Counter)  # by path
    answered: Counter[int] = field(default_factory=Counter)  # by HTTP status
    rejected: list[tuple[str, int]] = field(default_factory=list)  # (path, status) not 2xx
    errors: list[str] = field(default_factory=list)  # transport errors after all retries
    calls: Counter[str] = field(default_factory=Counter)  # outcome drawn
    keys: Counter[str] = field(default_factory=Counter)  # digits pressed
    sms: Counter[str] = field(default_factory=Counter)  # outcome drawn (and "stop")


class SimulatedTelephony(Telephony):
    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        clock: Clock = _utc_now,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._http = http or httpx.AsyncClient(timeout=30.0)
        self._validator = RequestValidator(settings.auth_token)
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._calls: dict[str, CallInfo] = {}
        self._requests: dict[str, CallRequest] = {}
        self.redirects: dict[str, list[str]] = defaultdict(list)  # call SID -> TwiML URLs
        self._messages: dict[str, MessageInfo] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = Stats()

    # --- the port ----------------------------------------------------------------------
    async def place_call(self, request: CallRequest) -> ProviderRef:
        rng = self._rng("call", request.to)
        sid = _sid("CA", rng)
        self._calls[sid] = CallInfo(sid, "queued", request.to, request.from_number, self.clock())
        self._requests[sid] = request
        self._spawn(self._play_call(sid, request, rng), sid)
        return ProviderRef("simulator", sid, "queued")

    async def send_sms(self, request: SmsRequest) -> ProviderRef:
        rng = self._rng("sms", request.to)
        sid = _sid("SM", rng)
        self._messages[sid] = MessageInfo(sid, "queued", request.to, None, self.clock())
        self._spawn(self._play_sms(sid, request, rng), sid)
        return ProviderRef("simulator", sid, "queued")

    async def fetch_call(self, sid: str) -> CallInfo:
        if sid not in self._calls:
            raise NotFoundError(f"no call {sid}")
        return self._calls[sid]

    async def fetch_message(self, sid: str) -> MessageInfo:
        if sid not in self._messages:
            raise NotFoundError(f"no message {sid}")
        return self._messages[sid]

    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        found = [
            c
            for c in self._calls.values()
            if c.to == to and (c.created_at is None or c.created_at >= after)
        ]
        return sorted(found, key=lambda c: c.created_at or after, reverse=True)

    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        found = [
            m
            for m in self._messages.values()
            if m.to == to and (m.created_at is None or m.created_at >= after)
        ]
        return sorted(found, key=lambda m: m.created_at or after, reverse=True)

    async def update_call(self, sid: str, twiml_url: str) -> None:
        """Redirect a live call as Twilio does: fetch its next TwiML from `twiml_url`.

        Twilio's calls are one state for every process; a simulator's are its own. When
        `dialer serve` and `dialer worker` run apart, the API's simulator is asked to
        redirect a call the worker's simulator placed: it fetches the TwiML itself, as
        Twilio would, with the fields it knows (no From and To)."""
        call = self._calls.get(sid)
        if call is None:
            if not sid.startswith("CA"):
                raise NotFoundError(f"no call {sid}")
            self.redirects[sid].append(twiml_url)
            fields = {
                "AccountSid": self.settings.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": sid,
                "CallStatus": "in-progress",
                "Direction": "outbound-api",
            }
            self._spawn(self._post_once(twiml_url, fields), f"{sid}:redirect")
            return
        if call.status != "in-progress":  # Twilio error 21220: not in progress
            raise PermanentError(
                f"call {sid} is {call.status}: cannot redirect",
                kind=PermanentErrorKind.OTHER,
                code=21220,
            )
        self.redirects[sid].append(twiml_url)
        fields = self._gather_fields(sid, self._requests[sid], None)
        self._spawn(self._post_once(twiml_url, fields), f"{sid}:redirect")

    async def _post_once(self, url: str, fields: dict[str, str]) -> None:
        await self._post(url, fields)

    async def close(self) -> None:
        await self.drain(wait_seconds=5.0)
        await self._http.aclose()

    # --- for the demo and tests --------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Calls and messages whose callbacks are still being played."""
        return sum(1 for t in self._tasks if not t.done())

    async def drain(self, wait_seconds: float = 30.0) -> list[str]:
        """Wait until every callback has been posted; returns the SIDs still playing at
        the timeout (their tasks are cancelled)."""
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=wait_seconds)
        stragglers = sorted(t.get_name() for t in pending)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return stragglers

    # --- playing a call ----------------------------------------------------------------
    async def _play_call(self, sid: str, request: CallRequest, rng: random.Random) -> None:
        s = self.settings
        mix = s.mix
        outcome = rng.choices(list(mix.call), weights=list(mix.call.values()))[0]
        self.stats.calls[outcome] += 1
        status_url = self._url(s.paths.voice_status, request.attempt_id)
        seq = 0

        async def status(value: str, **extra: str) -> None:
            nonlocal seq
            self._set_call(sid, status=value)
            await self._post(status_url, self._call_fields(sid, request, value, seq, **extra))
            seq += 1

        await self._pause(rng, s.first_delay)
        await status("initiated")
        await self._pause(rng)
        await status("ringing")
        await self._pause(rng)
        if outcome in ("busy", "no-answer", "failed"):
            await status(outcome, CallDuration="0")
            return
        started = self.clock()
        self._set_call(sid, started_at=started)
        await status("in-progress")
        # The adapter asks for DetectMessageEnd: Twilio reports a machine once its greeting
        # ends (machine_start only comes with MachineDetection=Enable).
        answered_by = "human" if outcome == "human" else "machine_end_beep"
        # Twilio fetches the TwiML on answer while asynchronous AMD listens.
        twiml = await self._post(
            self._url(s.paths.voice_twiml, request.attempt_id),
            self._gather_fields(sid, request, None),
        )
        await self._pause(rng)
        self._set_call(sid, answered_by=answered_by)
        if request.machine_detection:  # Twilio reports AMD only for calls that asked for it
            await self._post(
                self._url(s.paths.voice_amd, request.attempt_id),
                {
                    "AccountSid": s.account_sid,
                    "AnsweredBy": answered_by,
                    "CallSid": sid,
                    "MachineDetectionDuration": str(rng.randint(1200, 4200)),
                    "From": request.from_number,
                    "To": request.to,
                },
            )
        if outcome == "human":
            for _ in range(6):  # greeting, menu, a wait or two for a collector, no more
                action = _gather_action(twiml)
                if action is not None:
                    step = parse_qs(urlsplit(action).query).get("step", ["greeting"])[0]
                    digits = self._press(rng, step)
                    self.stats.keys[f"{step}:{digits}"] += 1
                    await self._pause(rng)
                    twiml = await self._post(action, self._gather_fields(sid, request, digits))
                    continue
                redirect = _redirect(twiml)
                if redirect is None:
                    break
                url, paused = redirect
                await asyncio.sleep(paused * s.pause_scale)
                twiml = await self._post(url, self._gather_fields(sid, request, None))
        duration = rng.randint(25, 180) if outcome == "human" else rng.randint(15, 40)
        self._set_call(sid, duration_seconds=duration)
        await self._pause(rng)
        await status("completed", CallDuration=str(duration))

    def _press(self, rng: random.Random, step: str) -> str:
        mix = self.settings.mix
        if step == "greeting":
            return "1" if rng.random() < mix.right_party else "2"
        return rng.choices(list(mix.menu), weights=list(mix.menu.values()))[0]

    def _call_fields(
        self, sid: str, request: CallRequest, status: str, seq: int, **extra: str
    ) -> dict[str, str]:
        fields = {
            "AccountSid": self.settings.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "Called": request.to,
            "Caller": request.from_number,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": request.from_number,
            "SequenceNumber": str(seq),
            "Timestamp": format_datetime(self.clock().astimezone(UTC)),
            "To": request.to,
        }
        fields.update(extra)
        return fields

    def _gather_fields(self, sid: str, request: CallRequest, digits: str | None) -> dict[str, str]:
        fields = {
            "AccountSid": self.settings.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": request.from_number,
            "To": request.to,
        }
        if digits is not None:
            fields.update({"Digits": digits, "FinishedOnKey": "", "msg": "Gather End"})
        return fields

    def _set_call(self, sid: str, **changes: object) -> None:
        self._calls[sid] = replace(self._calls[sid], **changes)  # type: ignore[arg-type]

    # --- playing a text ----------------------------------------------------------------
    async def _play_sms(self, sid: str, request: SmsRequest, rng: random.Random) -> None:
        s = self.settings
        mix = s.mix
        outcome = rng.choices(list(mix.sms), weights=list(mix.sms.values()))[0]
        stop = outcome == "delivered" and rng.random() < mix.sms_stop
        self.stats.sms[outcome] += 1
        url = self._url(s.paths.sms_status, request.attempt_id)
        sender = request.from_number or s.our_number
        steps: list[tuple[str, int | None]]
        if outcome == "delivered":
            steps = [("sent", None), ("delivered", None)]
        elif outcome == "undelivered":
            steps = [("sent", None), ("undelivered", rng.choice(UNDELIVERED_CODES))]
        else:
            steps = [("failed", rng.choice(FAILED_CODES))]
        for i, (status, code) in enumerate(steps):
            await self._pause(rng, s.first_delay if i == 0 else None)
            sent_at = self._messages[sid].sent_at or (self.clock() if status == "sent" else None)
            self._messages[sid] = replace(
                self._messages[sid], status=status, error_code=code, sent_at=sent_at
            )
            fields = {
                "AccountSid": s.account_sid,
                "ApiVersion": "2010-04-01",
                "From": sender,
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": request.to,
            }
            if code is not None:
                fields["ErrorCode"] = str(code)
            await self._post(url, fields)
        if stop:
            self.stats.sms["stop"] += 1
            await self._pause(rng)
            reply = _sid("SM", rng)
            await self._post(
                self._public(s.inbound_path),
                {
                    "AccountSid": s.account_sid,
                    "ApiVersion": "2010-04-01",
                    "Body": "退订" if request.to.startswith("+86") else "STOP",
                    "From": request.to,
                    "MessageSid": reply,
                    "NumMedia": "0",
                    "NumSegments": "1",
                    "SmsMessageSid": reply,
                    "SmsSid": reply,
                    "SmsStatus": "received",
                    "To": sender,
                },
            )

    # --- posting -----------------------------------------------------------------------
    def _public(self, path: str) -> str:
        return self.settings.public_base_url.rstrip("/") + path

    def _url(self, path: str, attempt_id: str) -> str:
        return f"{self._public(path)}?{urlencode({'attempt': attempt_id})}"

    def signature(self, url: str, fields: dict[str, str]) -> str:
        """`X-Twilio-Signature` of a POST to the public `url` with `fields`."""
        return str(self._validator.compute_signature(url, fields))

    async def _post(self, public_url: str, fields: dict[str, str]) -> str:
        """Post like Twilio: signed against the public URL, sent to the post URL; returns
        the response body (TwiML for the voice flow). A fragment (our connection
        overrides) is neither sent nor signed, as with Twilio."""
        s = self.settings
        public_url = urldefrag(public_url).url
        target = public_url
        if s.post_base_url and public_url.startswith(s.public_base_url.rstrip("/")):
            target = s.post_base_url.rstrip("/") + public_url[len(s.public_base_url.rstrip("/")) :]
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.signature(public_url, fields),
            "User-Agent": "TwilioProxy/1.1 (dialer simulator)",
        }
        path = urlsplit(public_url).path
        self.stats.posted[path] += 1
        for attempt in range(s.retries + 1):
            try:
                response = await self._http.post(target, content=urlencode(fields), headers=headers)
            except httpx.TransportError as exc:
                if attempt == s.retries:
                    self.stats.errors.append(f"{path}: {exc!r}")
                    log.warning("simulator: %s not delivered: %r", path, exc)
                    return ""
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            self.stats.answered[response.status_code] += 1
            if response.status_code >= 500 and attempt < s.retries:
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            if not response.is_success:
                self.stats.rejected.append((path, response.status_code))
                log.warning("simulator: %s answered %d", path, response.status_code)
            return response.text
        return ""

    # --- helpers -----------------------------------------------------------------------
    def _rng(self, kind: str, to: str) -> random.Random:
        n = self._counts[f"{kind}:{to}"]
        self._counts[f"{kind}:{to}"] = n + 1
        return random.Random(f"{self.settings.seed}:{kind}:{to}:{n}")  # noqa: S311  (not secret)

    async def _pause(self, rng: random.Random, bounds: tuple[float, float] | None = None) -> None:
        low, high = bounds or self.settings.delay
        await asyncio.sleep(rng.uniform(low, high))

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats.errors.append(f"{task.get_name()}: {task.exception()!r}")
            log.error("simulator: playing %s failed: %r", task.get_name(), task.exception())


def _sid(prefix: str, rng: random.Random) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


def _gather_action(twiml: str) -> str | None:
    """The `action` URL of the first `<Gather>` in a TwiML document, if any."""
    try:
        root = ET.fromstring(twiml)  # noqa: S314  (our own service's TwiML)
    except ET.ParseError:
        return None
    node = root.find(".//Gather")
    return None if node is None else node.get("action")


def _redirect(twiml: str) -> tuple[str, float] | None:
    """The URL of a TwiML document's `<Redirect>` and the seconds its `<Pause>`s last
    before it, if it redirects."""
    try:
        root = ET.fromstring(twiml)  # noqa: S314  (our own service's TwiML)
    except ET.ParseError:
        return None
    node = root.find(".//Redirect")
    if node is None or not (node.text or "").strip():
        return None
    paused = sum(float(p.get("length", "1")) for p in root.iter("Pause"))
    return (node.text or "").strip(), paused
