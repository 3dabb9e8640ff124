"""`adapters.sendby`: connections that send a create before its deadline or not at all,
against a real local HTTP server (plain and TLS), as the Twilio adapter uses them."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from adapters import sendby
from adapters.sendby import SEND_BY, SendDeadlinePassed


@dataclass
class Server:
    """HTTP/1.1 with keep-alive: answers each whole request `200 {n}`; records what came."""

    ssl: ssl.SSLContext | None = None
    whole: list[bytes] = field(default_factory=list)  # requests received whole
    cut: list[bytes] = field(default_factory=list)  # requests whose connection ended early
    connections: int = 0
    close_after: int | None = None  # close each connection after this many answers
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        self.cut.append(exc.partial)
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                try:
                    body = await reader.readexactly(length)
                except asyncio.IncompleteReadError as exc:
                    self.cut.append(head + exc.partial)
                    return
                self.whole.append(head + body)
                answer = str(len(self.whole)).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    return
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://localhost:{self.port}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with _serving(Server()) as s:
        yield s


class _serving:
    def __init__(self, s: Server) -> None:
        self.s = s

    async def __aenter__(self) -> Server:
        self.srv = await asyncio.start_server(self.s.handle, "127.0.0.1", 0, ssl=self.s.ssl)
        self.s.port = self.srv.sockets[0].getsockname()[1]
        return self.s

    async def __aexit__(self, *exc: object) -> None:
        self.srv.close()


def client(**transport: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sendby.transport(**transport), timeout=5.0)


async def test_requests_go_and_connections_are_kept_alive(server: Server) -> None:
    async with client() as http:
        first = await http.post(server.url + "/Calls.json", data={"To": "+15551230000"})
        second = await http.get(server.url + "/Calls/CA1.json")
    assert (first.status_code, first.text, second.text) == (200, "1", "2")
    assert server.connections == 1
    assert server.whole[0].endswith(b"To=%2B15551230000")


async def test_a_connection_the_server_closed_while_idle_is_not_reused(server: Server) -> None:
    server.close_after = 1
    async with client() as http:
        assert (await http.get(server.url + "/a")).text == "1"
        await asyncio.sleep(0.05)  # the server's close arrives
        assert (await http.post(server.url + "/b", data={"x": "1"})).text == "2"
    assert server.connections == 2 and not server.cut


async def test_a_request_past_its_send_by_is_not_sent(server: Server) -> None:
    async with client() as http:
        await http.get(server.url + "/warm")  # a pooled connection: nothing else to wait for
        token = SEND_BY.set(time.monotonic() - 0.001)
        try:
            with pytest.raises(SendDeadlinePassed):
                await http.post(server.url + "/Calls.json", data={"To": "+15551230000"})
        finally:
            SEND_BY.reset(token)
        await asyncio.sleep(0.05)
        assert (await http.get(server.url + "/after")).text == "2"  # the client still works
    assert len(server.whole) == 2 and not server.cut


async def test_a_deadline_passing_between_headers_and_body_stops_the_request_short(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process stalls after the headers left: the body is not sent, the connection is
    # closed, and the server holds a request it never received whole (never acted on).
    checks = 0

    def stalled_after_the_first_write() -> None:
        nonlocal checks
        checks += 1
        if checks > 1:
            raise SendDeadlinePassed("send deadline passed; not sent")

    monkeypatch.setattr(sendby, "check_send_by", stalled_after_the_first_write)
    async with client() as http:
        with pytest.raises(SendDeadlinePassed):
            await http.post(server.url + "/Calls.json", data={"To": "+15551230000"})
    for _ in range(100):
        if server.cut:
            break
        await asyncio.sleep(0.01)
    assert checks == 2  # the headers' write, then the body's
    assert not server.whole
    assert server.cut and server.cut[0].startswith(b"POST /Calls.json")
    assert b"To=" not in server.cut[0]


async def test_no_connection_is_an_httpx_connect_error() -> None:
    async with _serving(Server()) as s:
        url = s.url
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url + "/gone")


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        await asyncio.sleep(2)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=sendby.transport(), timeout=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"http://127.0.0.1:{port}/")
    finally:
        srv.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_tls_connections_work_and_check_the_deadline(tmp_path: Path) -> None:
    # api.twilio.com is HTTPS: the same backend under TLS (a self-signed localhost cert).
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = await asyncio.create_subprocess_exec(
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
        *("-keyout", str(key), "-out", str(cert)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await made.wait() == 0
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with _serving(Server(ssl=served)) as s:
        async with client(verify=trusted) as http:
            answer = await http.post(s.url + "/Messages.json", data={"Body": "hi"})
            token = SEND_BY.set(time.monotonic() - 0.001)
            try:
                with pytest.raises(SendDeadlinePassed):
                    await http.post(s.url + "/Messages.json", data={"Body": "late"})
            finally:
                SEND_BY.reset(token)
        assert answer.text == "1"
        assert answer.extensions["network_stream"].get_extra_info("ssl_object") is not None
        assert len(s.whole) == 1 and s.whole[0].endswith(b"Body=hi")


@pytest.mark.parametrize(
    ("env", "proxied"),
    [
        ({"HTTPS_PROXY": "http://proxy.example:3128"}, True),
        ({"ALL_PROXY": "http://proxy.example:3128"}, True),
        ({"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "api.twilio.com"}, False),
        ({}, False),
    ],
)
async def test_the_clients_connections_check_the_deadline_behind_a_proxy_too(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], proxied: bool
) -> None:
    # httpx's own proxy mounts (trust_env) would connect without the write-time check.
    import httpcore

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with sendby.client() as http:
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, httpcore.AsyncHTTPProxy) is proxied
        assert isinstance(pool._network_backend, sendby.SendByBackend)
        assert not http._mounts  # nothing routed around it
