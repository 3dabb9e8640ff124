"""A stand-in for api.twilio.com: a real HTTP server on 127.0.0.1 that the worker processes
reach through the real `TwilioTelephony` (its httpx transport redirected here), and that
records every request it gets.

It answers the six requests the adapter makes (create call, create message, fetch call,
fetch message, list calls by `To`, list messages by `To` and `DateSent>=`) with the JSON
shapes Twilio documents, stamps `date_created` (and a message's `date_sent`) with the
workers' shifted clock, can end calls without a callback (`end_calls_after`), and can be
told to answer creates with a fault for a while: 429 (never processed, with
`Retry-After`), or 5xx where the call was created anyway or not (the ambiguous case the
reconciler exists for).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<ac>AC\w+)/(?P<kind>Calls|Messages)(?:/(?P<sid>\w+))?\.json$"
)


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """One create request as received: `created` says whether a call/message exists now."""

    wall: float  # time.monotonic() when it arrived
    kind: str  # "call" | "sms"
    to: str
    attempt_id: str | None
    status: int  # the HTTP status answered
    created: bool
    sid: str | None


@dataclass(frozen=True, slots=True)
class Fault:
    status: int  # 429, 500, 503 ...
    create_anyway: bool = False  # a 5xx after the call was placed: the ambiguous case
    retry_after: int | None = None


class MockTwilio:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.creates: list[CreateRequest] = []
        self.reads: list[tuple[float, str]] = []
        self.records: dict[str, dict[str, Any]] = {}  # sid -> the resource's JSON
        self.fault: Fault | None = None
        self.call_length: float | None = None  # see `end_calls_after`
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> MockTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_fault(self, fault: Fault | None) -> None:
        with self.lock:
            self.fault = fault

    def end_calls_after(self, seconds: float | None) -> None:
        """Calls end (`completed`, answered, `seconds` long) that long after they were
        created, and no callback says so: the provider's record is all there is."""
        with self.lock:
            self.call_length = seconds

    def _end_calls(self) -> None:
        if self.call_length is None:
            return
        now = self.clock().timestamp()
        for r in self.records.values():
            ended = r["_created"] + self.call_length <= now
            if r["sid"].startswith("CA") and r["status"] == "queued" and ended:
                r.update(status="completed", duration=str(int(self.call_length)))

    # --- what the tests read -------------------------------------------------------------
    def dials_by_attempt(self) -> dict[str, int]:
        """Calls and messages that exist, per attempt id (from the callback URL)."""
        counts: dict[str, int] = {}
        with self.lock:
            for c in self.creates:
                if c.created and c.attempt_id:
                    counts[c.attempt_id] = counts.get(c.attempt_id, 0) + 1
        return counts

    def dials_by_number(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for c in self.creates:
                if c.created:
                    counts[c.to] = counts.get(c.to, 0) + 1
        return counts

    def created(self) -> list[CreateRequest]:
        with self.lock:
            return [c for c in self.creates if c.created]

    # --- the API -------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        m = _PATH.match(path)
        if m is None:
            return 404, _error(20404, 404, f"no route {path}")
        kind, sid = m["kind"], m["sid"]
        if method == "POST" and sid is None:
            return self._create("call" if kind == "Calls" else "sms", m["ac"], body)
        if method == "GET":
            with self.lock:
                self.reads.append((time.monotonic(), path))
                self._end_calls()
                if sid is not None:
                    found = self.records.get(sid)
                    return (200, found) if found else (404, _error(20404, 404, "not found"))
                params = parse_qs(query)
                to = params.get("To", [None])[0]
                # DateSent>=...: Twilio's date filter; a message not sent yet has no date
                sent_since = params.get("DateSent>", [None])[0]
                prefix = "CA" if kind == "Calls" else "SM"
                found_all = [
                    r
                    for r in self.records.values()
                    if r["sid"].startswith(prefix)
                    and (to is None or r["to"] == to)
                    and (
                        sent_since is None
                        or (r["_sent"] is not None and r["_sent"] >= _instant(sent_since))
                    )
                ]
            found_all.sort(key=lambda r: r["_created"], reverse=True)  # newest first
            return 200, {
                kind.lower(): found_all[:50],
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "uri": path,
            }
        return 405, _error(20004, 405, "method not allowed")

    def _create(self, kind: str, account: str, body: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        callback = form.get("StatusCallback", "")
        attempt = parse_qs(urlsplit(callback).query).get("attempt", [None])[0]
        to = form.get("To", "")
        with self.lock:
            fault = self.fault
            created = fault is None or (fault.status >= 500 and fault.create_anyway)
            sid = None
            record: dict[str, Any] | None = None
            if created:
                now = self.clock()
                sid = ("CA" if kind == "call" else "SM") + uuid.uuid4().hex
                record = {
                    "sid": sid,
                    "account_sid": account,
                    "status": "queued" if kind == "call" else "accepted",
                    "to": to,
                    "from": form.get("From", ""),
                    "body": form.get("Body"),
                    "date_created": format_datetime(now),
                    "start_time": None,
                    "duration": None,
                    "answered_by": None,
                    "error_code": None,
                    "_created": now.timestamp(),
                    "_sent": None,
                }
                if kind == "sms":  # handed to the carrier at once
                    record.update(status="sent", date_sent=format_datetime(now))
                    record["_sent"] = now.timestamp()
                self.records[sid] = record
            status = 201 if fault is None else fault.status
            self.creates.append(
                CreateRequest(time.monotonic(), kind, to, attempt, status, created, sid)
            )
        if fault is None:
            assert record is not None
            return 201, record
        if fault.status == 429:
            return 429, _error(20429, 429, "Too Many Requests")
        return fault.status, _error(20500, fault.status, "Internal Server Error")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a worker SIGKILLed mid-request resets its connection: expected here


def _instant(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _error(code: int, status: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": status, "more_info": "mock"}


def _handler(mock: MockTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client died mid-request: Twilio would not act
                self.close_connection = True
                return
            parts = urlsplit(self.path)
            status, doc = mock.handle(method, parts.path, parts.query, body)
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            fault = mock.fault
            if status == 429 and fault is not None and fault.retry_after is not None:
                self.send_header("Retry-After", str(fault.retry_after))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the test prints its own figures

    return Handler
