"""Text the databases can store. PostgreSQL refuses a NUL character in any text or JSON
value, and no driver encodes a lone surrogate, so such text is refused at the edge with
the field it came in, instead of failing deep in a statement (a 500)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from dialer.api.asgi import send_error
from dialer.errors import FieldError


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate, which is not valid UTF-8 text"
    return None


def nested_text_problem(value: object) -> str | None:
    """`text_problem` of every string in a value: lists, sets and mappings (keys too)."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, Mapping):
        items: list[object] = [*value.keys(), *value.values()]
        return next((p for p in map(nested_text_problem, items) if p), None)
    if isinstance(value, list | tuple | set | frozenset):
        return next((p for p in map(nested_text_problem, value) if p), None)
    return None


class StorableQueryText:
    """Refuses (422) a request whose path or query string carries unstorable text, naming
    the query parameter, before any route filters on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            fields = _problems(scope)
            if fields:
                await send_error(send, 422, "validation_failed", "the request is invalid", fields)
                return
        await self.app(scope, receive, send)


def _problems(scope: Scope) -> list[FieldError]:
    fields: list[FieldError] = []
    if reason := text_problem(scope.get("path", "")):
        fields.append(FieldError("path", reason))
    raw: bytes = scope.get("query_string", b"")
    if b"%00" in raw or b"\x00" in raw:  # decoded as Starlette does (invalid UTF-8: U+FFFD)
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if reason := text_problem(name) or text_problem(value):
                fields.append(FieldError(name if not text_problem(name) else "query", reason))
    return fields
