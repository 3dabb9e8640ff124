"""HTTP connections that send a provider create before its deadline or not at all.

A create may leave only within its fence's send window (`SEND_BY`, which the adapter sets
around the create): the reconciler takes an unanswered `dialing` attempt for never sent
once that window, the HTTP timeout and a margin have passed, and plans it again. A check
made before the request enters httpx leaves a gap (pool checkout, connect, event-loop
turns) in which a process stalled there wakes and sends late, after its attempt was
reclaimed: a number called twice. This httpcore network backend checks the deadline at
every write, in the same synchronous step as the socket send (an asyncio transport sends
at once when its buffer is empty), so a request leaves in time or stops short; a request
cut off after its headers is one no server acts on.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
import typing
import urllib.request
from collections.abc import Iterable

import httpcore
import httpx

from adapters.errors import TransientError

# The `time.monotonic()` instant after which the current task's request must not be sent.
SEND_BY: contextvars.ContextVar[float | None] = contextvars.ContextVar("send_by", default=None)
_READ_HIGH = 1 << 20  # bytes buffered before the socket's reading is paused


class SendDeadlinePassed(TransientError):
    """The request was not sent, or stopped before its end: certainly not acted on."""


def check_send_by() -> None:
    """Raise `SendDeadlinePassed` if the current task's send-by instant has passed."""
    send_by = SEND_BY.get()
    if send_by is not None and time.monotonic() > send_by:
        raise SendDeadlinePassed("send deadline passed; not sent")


def transport(**kwargs: typing.Any) -> httpx.AsyncHTTPTransport:
    """httpx's transport (`kwargs` as `httpx.AsyncHTTPTransport` takes them) with its
    connections made by `SendByBackend`. httpx takes no network backend as an argument,
    so it is set on the transport's connection pool; a version without one fails here."""
    made = httpx.AsyncHTTPTransport(**kwargs)
    pool = getattr(made, "_pool", None)
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore changed: no connection pool to give a backend to")
    pool._network_backend = SendByBackend()
    return made


def client(base: str = "https://api.twilio.com", **kwargs: typing.Any) -> httpx.AsyncClient:
    """An httpx client (`kwargs` as `httpx.AsyncClient` takes them) all of whose
    connections are `SendByBackend`'s, a proxied one included: the environment's proxy
    for `base` (HTTPS_PROXY or ALL_PROXY, unless NO_PROXY names its host) is given to
    `transport`, not to httpx's own proxy mounts, which would connect without the check."""
    host = httpx.URL(base).host
    proxies = urllib.request.getproxies()
    proxy = None if urllib.request.proxy_bypass(host) else proxies.get("https", proxies.get("all"))
    return httpx.AsyncClient(transport=transport(proxy=proxy), trust_env=False, **kwargs)


class _Connection(asyncio.Protocol):
    """One connection's bytes received, end and write flow control, for `_Stream`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: Exception | None = None
        self.paused = False
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.readable.set()
        if len(self.buffer) > _READ_HIGH and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True

    def eof_received(self) -> bool:
        self.eof = True
        self.readable.set()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self.readable.set()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    @property
    def _transport(self) -> asyncio.Transport:
        assert self._conn.transport is not None
        return self._conn.transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        conn = self._conn
        try:
            async with asyncio.timeout(timeout):
                while not conn.buffer and not conn.eof:
                    conn.readable.clear()
                    await conn.readable.wait()
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("read timed out") from exc
        if not conn.buffer:
            if conn.error is not None:
                raise httpcore.ReadError(str(conn.error)) from conn.error
            return b""
        data = bytes(conn.buffer[:max_bytes])
        del conn.buffer[:max_bytes]
        if conn.paused and len(conn.buffer) < _READ_HIGH // 4:
            conn.paused = False
            self._transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        conn = self._conn
        try:
            async with asyncio.timeout(timeout):
                await conn.writable.wait()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("write timed out") from exc
        if conn.error is not None or self._transport.is_closing():
            raise httpcore.WriteError(f"connection closed: {conn.error!r}")
        check_send_by()
        self._transport.write(buffer)  # nothing awaited between the check and the send

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    self._transport, self._conn, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (ssl.SSLError, OSError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if tls is None:
            raise httpcore.ConnectError("TLS handshake failed")
        self._conn.transport = tls
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        conn, t = self._conn, self._transport
        if info == "ssl_object":
            return t.get_extra_info("ssl_object")
        if info == "client_addr":
            return t.get_extra_info("sockname")
        if info == "server_addr":
            return t.get_extra_info("peername")
        if info == "socket":
            return t.get_extra_info("socket")
        if info == "is_readable":  # an idle connection the server closed or wrote to
            return bool(conn.buffer) or conn.eof or t.is_closing()
        return None


class SendByBackend(httpcore.AsyncNetworkBackend):
    """asyncio connections whose writes check `SEND_BY` (see the module's docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                made, conn = await loop.create_connection(_Connection, host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connect to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _with_options(made, conn, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                made, conn = await loop.create_unix_connection(_Connection, path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connect to {path} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _with_options(made, conn, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _with_options(
    made: asyncio.BaseTransport,
    conn: _Connection,
    options: Iterable[httpcore.SOCKET_OPTION] | None,
) -> _Stream:
    sock = made.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)
    return _Stream(conn)
