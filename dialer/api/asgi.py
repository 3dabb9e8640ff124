"""Small pieces shared by the raw ASGI middlewares (the body limit, the webhook fast route):
hand a request's already-read body on to the app, and answer in the one error shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.types import Message, Receive, Send

from dialer.api.errors import error_body
from dialer.core.errors import FieldError


def replay(first: Message, receive: Receive) -> Receive:
    """A `receive` that returns `first` once, then whatever `receive` returns."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replayed


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the whole body it would have read itself."""
    return replay({"type": "http.request", "body": body, "more_body": False}, receive)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    fields: Sequence[FieldError] = (),
    *,
    close: bool = False,
    extra: dict[str, Any] | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the API's error shape (`error_body`) as JSON (plus `headers`)."""
    payload = json.dumps(error_body(code, message, fields, **(extra or {}))).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *headers,
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
