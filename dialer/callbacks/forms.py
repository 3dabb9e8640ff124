"""A webhook request, authenticated: the raw body parsed once, the signature checked.

`urllib.parse.parse_qsl` on the raw body costs a fraction of Starlette's form parser, and
the raw pairs are exactly what the signature covers. Nothing is written before the
signature passes: a missing or bad one is a 403 in the standard error shape.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import Scope

from dialer.callbacks.signature import SIGNATURE_HEADER, is_valid, public_url
from dialer.core.errors import DialerError, FieldError, ForbiddenError, PayloadTooLargeError
from dialer.core.settings import Settings
from dialer.db.types import text_problem

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


async def verified_form(request: Request, settings: Settings) -> TwilioForm:
    """Parse and authenticate a Twilio webhook; raises 403, 400 or 413 otherwise."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ForbiddenError("missing X-Twilio-Signature")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.webhook_max_body_bytes:
        raise PayloadTooLargeError("webhook body too large")
    body = await request.body()
    return verify(request.scope, body, signature, request.headers.get(IDEMPOTENCY_HEADER), settings)


def verify(
    scope: Scope,
    body: bytes,
    signature: str | None,
    idempotency_token: str | None,
    settings: Settings,
) -> TwilioForm:
    """The authenticated form of a request whose body has been read (the ASGI `scope`
    gives the raw path and query); raises 403, 400 or 413 otherwise."""
    if not signature:
        raise ForbiddenError("missing X-Twilio-Signature")
    if len(body) > settings.webhook_max_body_bytes:
        raise PayloadTooLargeError("webhook body too large")
    pairs = _pairs(body, "body")
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw_path.split(b"?", 1)[0]
    raw_query: bytes = scope.get("query_string", b"")
    url = public_url(settings.public_base_url, raw_path, raw_query)
    token = settings.twilio_auth_token.get_secret_value()
    if not is_valid(token, url, pairs, signature, settings.twilio_connection_overrides):
        log.warning("webhook refused: bad X-Twilio-Signature on %s", scope["path"])
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
