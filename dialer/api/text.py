"""Text the databases can store. PostgreSQL refuses a NUL character in any text or JSON
value, so a request carrying one is refused at the edge with the field it came in (a 422),
instead of failing deep in a statement (a 500). JSON bodies, paths and query strings are
checked here, once per request, before any route parses them; an import checks each case
it reads (`dialer.services.imports`)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api.asgi import replay_body, send_error
from dialer.core.errors import FieldError
from dialer.db.types import text_problem, unstorable

_JSON_NUL = b"\\u0000"  # JSON writes NUL only as this escape (a raw control byte is invalid)


class StorableText:
    """Refuses (422) a request whose path, query string or JSON body carries text that
    cannot be stored, naming the parameter or field. Sits inside the body limit, which
    has already read (and bounded) the body."""

    def __init__(self, app: ASGIApp, skip_bodies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip_bodies = skip_bodies  # paths whose bodies are streamed, not JSON

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = _query_problems(scope)
        if not fields and _is_json(scope) and not scope["path"].startswith(self.skip_bodies):
            body = await _read(receive)
            if _JSON_NUL in body:
                fields = _body_problems(body)
            receive = replay_body(body, receive)
        if fields:
            await send_error(send, 422, "validation_failed", "the request is invalid", fields)
            return
        await self.app(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    ctype = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    return scope.get("method") in ("POST", "PUT", "PATCH") and b"json" in ctype.lower()


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(chunks)


def _body_problems(body: bytes) -> list[FieldError]:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return []  # not JSON: the route says so
    found = unstorable(doc)
    return [found] if found else []


def _query_problems(scope: Scope) -> list[FieldError]:
    fields: list[FieldError] = []
    if reason := text_problem(scope.get("path", "")):
        fields.append(FieldError("path", reason))
    raw: bytes = scope.get("query_string", b"")
    if b"%00" in raw or b"\x00" in raw:  # decoded as Starlette does (invalid UTF-8: U+FFFD)
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if reason := text_problem(name) or text_problem(value):
                fields.append(FieldError(name if not text_problem(name) else "query", reason))
    return fields
