"""A webhook, authenticated: the raw body parsed once, the signature checked, and the
fields read as plain typed values (`StatusEvent`, `CallRef`, `Keypress`).

Pure functions over bytes and strings: the HTTP request is read in `dialer.api`, which
hands the raw path, query, body and headers down. `urllib.parse.parse_qsl` on the raw body
costs a fraction of Starlette's form parser, and the raw pairs are exactly what the
signature covers. Nothing is written before the signature passes: a missing or bad one is
a 403 in the standard error shape.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from dialer.callbacks.signature import is_valid, public_url
from dialer.core.errors import DialerError, FieldError, ForbiddenError, PayloadTooLargeError
from dialer.core.settings import Settings
from dialer.db.types import text_problem
from dialer.domain.attempts import CALL_STATUS, MESSAGE_STATUS, StatusEvent

log = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"
# The integer columns a callback's numbers land in (SequenceNumber, CallDuration) are
# PostgreSQL `integer` (int4): a larger value must be a 400 naming the field, not a 500.
INT4_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")
# Fields kept in columns of fixed width (attempts.provider_sid, answered_by, error_code,
# provider_status; webhook_events.provider_sid). Twilio's SIDs are 34 characters.
FIELD_WIDTHS = {
    "CallSid": 64,
    "MessageSid": 64,
    "SmsSid": 64,
    "AnsweredBy": 32,
    "ErrorCode": 40,
    "CallStatus": 24,
    "MessageStatus": 24,
    "SmsStatus": 24,
}


class MalformedWebhookError(DialerError):
    status_code = 400
    code = "bad_request"


@dataclass(frozen=True, slots=True)
class TwilioForm:
    """The form fields Twilio posted (first value per name) and our query parameters."""

    fields: dict[str, str]
    query: dict[str, str]
    idempotency_token: str | None

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if value else None

    def int_of(self, name: str) -> int | None:
        """The field as a count (0 .. 2^31-1), None when absent or empty; anything else
        (a sign, a fraction, `1_000`, non-ASCII digits, past int4) is a 400 naming it."""
        value = self.fields.get(name)
        if not value:
            return None
        if not _DIGITS.fullmatch(value):
            reason = "must be a whole number of ASCII digits, without a sign"
            raise MalformedWebhookError(f"{name} {reason}", [FieldError(name, reason)])
        significant = value.lstrip("0") or "0"  # int() of thousands of digits raises
        if len(significant) > len(str(INT4_MAX)) or int(significant) > INT4_MAX:
            reason = f"must be at most {INT4_MAX}"
            raise MalformedWebhookError(f"{name} {reason}", [FieldError(name, reason)])
        return int(significant)


def _pairs(raw: bytes, what: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedWebhookError(f"the {what} is not a valid form encoding") from exc


def verify(
    raw_path: bytes,
    raw_query: bytes,
    body: bytes,
    signature: str | None,
    idempotency_token: str | None,
    settings: Settings,
) -> TwilioForm:
    """The authenticated form of a request: its raw path and query as they arrived, its
    body, and its X-Twilio-Signature; raises 403, 400 or 413 otherwise."""
    if not signature:
        raise ForbiddenError("missing X-Twilio-Signature")
    if len(body) > settings.webhook_max_body_bytes:
        raise PayloadTooLargeError("webhook body too large")
    pairs = _pairs(body, "body")
    url = public_url(settings.public_base_url, raw_path, raw_query)
    token = settings.twilio_auth_token.get_secret_value()
    if not is_valid(token, url, pairs, signature, settings.twilio_connection_overrides):
        log.warning("webhook refused: bad X-Twilio-Signature on %s", raw_path.decode("latin-1"))
        raise ForbiddenError("bad X-Twilio-Signature")
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    _check_storable(fields)
    query = dict(_pairs(raw_query, "query string")) if raw_query else {}
    return TwilioForm(fields, query, idempotency_token)


def _check_storable(fields: dict[str, str]) -> None:
    """A field the database cannot keep is a 400 naming it, not a 500: PostgreSQL stores no
    NUL character (text or JSON), and the identifiers land in columns of fixed width."""
    for name, value in fields.items():
        problem = text_problem(name) or text_problem(value)
        if problem is not None:
            field = name.replace("\x00", "\\0")
            raise MalformedWebhookError(f"{field} {problem}", [FieldError(field, problem)])
        limit = FIELD_WIDTHS.get(name)
        if limit is not None and len(value) > limit:
            reason = f"is longer than {limit} characters"
            raise MalformedWebhookError(f"{name} {reason}", [FieldError(name, reason)])


def mask_number(value: str | None) -> str:
    """A phone number for logs: the last three digits only."""
    if not value:
        return "-"
    return f"***{value[-3:]}" if len(value) > 3 else "***"


def required(form: TwilioForm, *names: str) -> list[str]:
    """The named fields' values; a 400 naming every one missing."""
    values = [form.get(n) for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if v is None]
    if missing:
        raise MalformedWebhookError(f"missing {', '.join(missing)}")
    return [v or "" for v in values]


def sms_ids(form: TwilioForm) -> tuple[str, str | None]:
    """A message callback's sid and status: MessageSid / MessageStatus, or the older
    SmsSid / SmsStatus names ("" / None when absent). The one reader of these fields."""
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    return sid, form.get("MessageStatus") or form.get("SmsStatus")


def call_status_event(form: TwilioForm) -> tuple[str, StatusEvent]:
    """A call status callback as (CallSid, event); a 400 naming what is missing or wrong,
    before anything is written."""
    sid, status = required(form, "CallSid", "CallStatus")
    if status not in CALL_STATUS:
        raise MalformedWebhookError(f"unknown CallStatus {status!r}")
    return sid, StatusEvent(
        "voice",
        status,
        sequence_number=form.int_of("SequenceNumber"),
        duration=form.int_of("CallDuration"),
        answered_by=form.get("AnsweredBy"),
    )


def sms_status_event(form: TwilioForm) -> tuple[str, StatusEvent]:
    """A message status callback as (MessageSid, event); a 400 otherwise."""
    sid, status = sms_ids(form)
    if not sid or not status:
        raise MalformedWebhookError("missing MessageSid or MessageStatus")
    if status not in MESSAGE_STATUS:
        raise MalformedWebhookError(f"unknown MessageStatus {status!r}")
    return sid, StatusEvent("sms", status, error_code=form.get("ErrorCode"))


def attempt_ref(form: TwilioForm) -> uuid.UUID | None:
    """Our attempt id from the callback URL's query (None: absent or not one of ours, the
    provider's sid identifies the attempt instead)."""
    raw = form.query.get("attempt")
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CallRef:
    """Which attempt a voice callback is about: our id (from the URL) and Twilio's CallSid."""

    attempt_id: uuid.UUID | None
    sid: str | None

    @classmethod
    def of(cls, form: TwilioForm) -> CallRef:
        return cls(attempt_ref(form), form.get("CallSid"))


KEYPAD_STEPS = ("greeting", "menu")  # where a <Gather> asks: its action URL's `step`


@dataclass(frozen=True, slots=True)
class Keypress:
    """A <Gather>'s callback: the call, the step it was asked at, the digits pressed."""

    call: CallRef
    step: str
    digits: str

    @classmethod
    def of(cls, form: TwilioForm) -> Keypress:
        step = form.query.get("step", "greeting")
        if step not in KEYPAD_STEPS:  # our own URLs name one of these
            reason = f"is {step!r}, not one of {', '.join(KEYPAD_STEPS)}"
            raise MalformedWebhookError(f"step {reason}", [FieldError("step", reason)])
        return cls(CallRef.of(form), step, (form.get("Digits") or "").strip())


@dataclass(frozen=True, slots=True)
class Hold:
    """A waiting call asking again for a collector: the call, and when the person was
    verified (`since`, our query, covered by the signature like the rest of the URL)."""

    call: CallRef
    since: datetime

    @classmethod
    def of(cls, form: TwilioForm) -> Hold:
        raw = form.query.get("since") or ""
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            raise MalformedWebhookError(f"since: {raw!r} is not an ISO 8601 instant") from None
        if since.tzinfo is None:
            raise MalformedWebhookError(f"since: {raw!r} has no UTC offset")
        return cls(CallRef.of(form), since)
