"""A Twilio webhook's HTTP request read into the callbacks' plain form: the raw path and
query as they arrived, the body (capped), and the two headers that matter. The checks
themselves (size, signature, storable text) are `dialer.callbacks.forms.verify`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from dialer.callbacks.forms import IDEMPOTENCY_HEADER, TwilioForm, verify
from dialer.callbacks.signature import SIGNATURE_HEADER
from dialer.core.errors import ForbiddenError, PayloadTooLargeError
from dialer.core.settings import Settings

_SIGNATURE = SIGNATURE_HEADER.encode()
_IDEMPOTENCY = IDEMPOTENCY_HEADER.encode()


def scope_form(scope: Scope, body: bytes, settings: Settings) -> TwilioForm:
    """The authenticated form of an ASGI request whose body has been read."""
    signature = token = None
    for name, value in scope["headers"]:
        if name == _SIGNATURE:
            signature = value.decode("latin-1")
        elif name == _IDEMPOTENCY:
            token = value.decode("latin-1")
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    raw_path = raw_path.split(b"?", 1)[0]
    raw_query: bytes = scope.get("query_string", b"")
    return verify(raw_path, raw_query, body, signature, token, settings)


async def verified_form(request: Request, settings: Settings) -> TwilioForm:
    """Parse and authenticate a Twilio webhook; raises 403, 400 or 413 otherwise."""
    if not request.headers.get(SIGNATURE_HEADER):
        raise ForbiddenError("missing X-Twilio-Signature")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.webhook_max_body_bytes:
        raise PayloadTooLargeError("webhook body too large")
    return scope_form(request.scope, await request.body(), settings)
