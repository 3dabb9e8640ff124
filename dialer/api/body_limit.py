"""A ceiling on every request body: a body over the limit is refused with 413 before any
route reads it, so no handler parses (or a client makes us buffer) megabytes of JSON.

Imports stream larger files under their own limit (DIALER_MAX_UPLOAD_BYTES) and Twilio's
callbacks under theirs (DIALER_WEBHOOK_MAX_BODY_BYTES): this ceiling is the larger of its
own and theirs there, and they keep refusing past their own limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from dialer.api.asgi import replay, replay_body, send_error
from dialer.core.settings import Settings

_UPLOAD_PATHS = ("/v1/imports",)


class BodyLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.json_limit = settings.max_body_bytes
        self.upload_limit = max(settings.max_upload_bytes, settings.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.upload_limit if path.startswith(_UPLOAD_PATHS) else self.json_limit
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        if path.startswith(_UPLOAD_PATHS):  # the import route streams under its own limit
            await self.app(scope, receive, send)
            return
        # No trustworthy length (chunked, or a length that lies): read up to the limit.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay(message, receive), send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        await self.app(scope, replay_body(b"".join(chunks), receive), send)


async def _too_large(send: Send, limit: int) -> None:
    message = f"request bodies are limited to {limit} bytes"
    await send_error(send, 413, "payload_too_large", message, close=True)
