"""While the database is unreachable, Twilio's callbacks get a 503 with Retry-After within
`DIALER_WEBHOOK_DATABASE_TIMEOUT_SECONDS`: never a 500, a dropped connection or a hang
(Twilio retries 5xx only because our URLs ask it to, within a 15-second budget). Once the
database is back the same signed callback is recorded, once.

The database really goes away: the service reaches PostgreSQL through a TCP relay that the
test cuts (every connection dropped, the port closed: "connection refused") or turns into
a black hole (connections accepted, nothing relayed: a network partition)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.api.app import create_app
from dialer.core.clock import fixed_clock
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import WebhookEventRow
from tests.databases import PG_HOST, PG_PORT, Database
from tests.dialer.support import NOW
from tests.dialer.twilio_forms import BASE, TOKEN, call_status, inbound, signature, sms_status

TIMEOUT = 0.5  # DIALER_WEBHOOK_DATABASE_TIMEOUT_SECONDS in these tests
MARGIN = 1.5  # what a loaded machine may add to it
SID = "CA" + "9" * 32


@dataclass
class Relay:
    """A TCP relay to PostgreSQL: `open`, `refuse` (connection refused) or `hang`."""

    mode: str = "open"
    server: asyncio.Server | None = None
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if self.mode != "open":
            await self._swallow(reader)
            return
        up_reader, up_writer = await asyncio.open_connection(PG_HOST, PG_PORT)
        self.writers.append(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if self.mode == "hang":  # a black hole: what is sent is lost
                continue
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def refuse(self) -> None:
        """Drop every connection and stop listening: connects are refused."""
        self.mode = "refuse"
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    def hang(self) -> None:
        """Keep every connection and accept new ones, but relay nothing."""
        self.mode = "hang"

    async def reopen(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        if self.server is not None:
            self.server.close()
        self.mode = "open"
        await self.start(self.port)

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        if self.server is not None:
            self.server.close()


class AnswerTimer:
    """ASGI wrapper noting when the response starts: what Twilio waits for (the app may
    still be dropping a dead connection after it has answered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answered = time.perf_counter()
            await send(message)

        await self.app(scope, receive, timed)


@dataclass
class Service:
    relay: Relay
    client: httpx.AsyncClient
    database: Database
    timer: AnswerTimer

    async def post(self, path: str, fields: dict[str, str], query: str = "") -> httpx.Response:
        target = f"{path}?{query}" if query else path
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(f"{BASE}{target}", fields),
        }
        return await self.client.post(target, content=urlencode(fields), headers=headers)

    async def events(self) -> int:
        engine = build_engine(
            Settings(database_url=self.database.url, database_schema=self.database.schema)
        )
        try:
            async with build_sessionmaker(engine)() as session:
                return int(
                    await session.scalar(select(func.count()).select_from(WebhookEventRow)) or 0
                )
        finally:
            await engine.dispose()


@pytest.fixture
async def service(migrated: Database) -> AsyncIterator[Service]:
    if migrated.kind != "postgres":
        pytest.skip("a SQLite file cannot become unreachable; PostgreSQL through a relay can")
    relay = Relay()
    await relay.start()
    url = make_url(migrated.url).set(host="127.0.0.1", port=relay.port)
    settings = Settings(
        database_url=url.render_as_string(hide_password=False),
        database_schema=migrated.schema,
        twilio_auth_token=SecretStr(TOKEN),
        public_base_url=BASE,
        webhook_database_timeout_seconds=TIMEOUT,
    )
    app = create_app(settings, clock=fixed_clock(NOW))
    try:
        async with app.router.lifespan_context(app):
            timer = AnswerTimer(app)
            transport = httpx.ASGITransport(app=timer)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Service(relay, client, migrated, timer)
                await relay.reopen()  # let the app's pools close cleanly
    finally:
        await relay.close()


CALLBACKS = [
    ("/v1/twilio/voice/status", call_status(SID, "ringing", 1), 204),  # the fast route
    ("/v1/twilio/sms/status", sms_status("SM" + "9" * 32, "delivered"), 204),  # fast route
    ("/v1/twilio/sms/inbound", inbound("SM" + "8" * 32, "+12125550199", "STOP"), 200),
    ("/v1/twilio/voice/amd", {"CallSid": SID, "AnsweredBy": "human"}, 204),
]


async def _timed(
    service: Service, path: str, fields: dict[str, str]
) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    r = await asyncio.wait_for(service.post(path, fields), 30)  # done, not only answered
    return r, service.timer.answered - start


async def _retried_until_recorded(
    service: Service, path: str, fields: dict[str, str], ok: int
) -> None:
    """Retry as Twilio does (`rc` times): a connection the outage cut may still cost one
    more 503 while the pools reconnect, never anything but 503 or the success."""
    for _ in range(5):
        r = await service.post(path, fields)
        if r.status_code == ok:
            return
        assert r.status_code == 503, r.text
    raise AssertionError(f"{path} still refused after the database came back")


def _assert_unavailable(r: httpx.Response, took: float) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"].isdigit()
    assert r.json()["error"]["code"] == "database_unavailable"
    assert took < TIMEOUT + MARGIN, f"answered after {took:.2f}s"


@pytest.mark.parametrize(("path", "fields", "ok"), CALLBACKS)
async def test_a_refused_database_is_a_quick_503_and_the_retry_is_recorded_once(
    service: Service, path: str, fields: dict[str, str], ok: int
) -> None:
    await service.relay.refuse()
    for _ in range(2):
        r, took = await _timed(service, path, fields)
        _assert_unavailable(r, took)
    await service.relay.reopen()
    await _retried_until_recorded(service, path, fields, ok)
    assert (await service.post(path, fields)).status_code == ok  # a duplicate: absorbed
    assert await service.events() == 1


@pytest.mark.parametrize(("path", "fields", "ok"), CALLBACKS)
async def test_a_database_that_stops_answering_is_a_503_within_the_timeout(
    service: Service, path: str, fields: dict[str, str], ok: int
) -> None:
    r = await service.post("/v1/twilio/voice/status", call_status(SID, "initiated", 0))
    assert r.status_code == 204, r.text  # connections are open and in use
    service.relay.hang()
    r, took = await _timed(service, path, fields)
    _assert_unavailable(r, took)
    await service.relay.reopen()
    await _retried_until_recorded(service, path, fields, ok)
    assert await service.events() == 2
