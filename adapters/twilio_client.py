"""twilio-python's HTTP layer over httpx, so tests can mock Twilio's REST API with respx.

The library's aiohttp client is not used: respx cannot see it, and it re-POSTs on a 5xx,
which can place a second call. This client never retries; it only says what a failure
means: not sent (connect error, HTTP 429 with its `Retry-After`, a create past its `SEND_BY`
deadline) -> `TransientError`; sent but unanswered -> `AmbiguousError` (a GET: transient).
Any other status goes back to the library, which raises its `TwilioException`s. Its
connections check the deadline at the socket write (`adapters.sendby`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]

from adapters import sendby
from adapters.errors import AmbiguousError, TransientError

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOO_MANY_REQUESTS = 20429


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(
            logger=logger or logging.getLogger(__name__), is_async=True, timeout=timeout
        )
        self._owns_client = client is None
        self._client = client or sendby.client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the library passes it
        allow_redirects: bool = False,
    ) -> Response:
        method = method.upper()
        if method not in _SAFE_METHODS:
            sendby.check_send_by()  # late already: no connection taken (checked again at the write)
        try:
            response = await self._client.request(
                method,
                uri,
                params=params,  # type: ignore[arg-type]
                data=data,  # lists become repeated fields (StatusCallbackEvent)
                headers=headers,
                auth=auth,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                follow_redirects=allow_redirects,
            )
        except _NOT_SENT as exc:
            raise TransientError(f"Twilio not reached ({method} {uri}): {exc!r}") from exc
        except httpx.HTTPError as exc:
            if method in _SAFE_METHODS:
                raise TransientError(f"Twilio read failed ({method} {uri}): {exc!r}") from exc
            raise AmbiguousError(
                f"Twilio may have acted on {method} {uri}; no response: {exc!r}"
            ) from exc
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            raise TransientError(
                f"Twilio rate limit ({method} {uri}): {_error_message(response.text)}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return Response(response.status_code, response.text, dict(response.headers))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:200]
    return text[:200]
