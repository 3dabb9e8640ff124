"""Prometheus metrics of one process, in a registry of its own.

The composition root builds one `Metrics` and hands it to whatever records (the worker, the
planner, the webhook routes); `create_app` puts it on `app.state.metrics` and serves it at
`/metrics`. A registry per instance, not prometheus_client's global one, so several apps in
one process (tests) never collide. Nothing here imports FastAPI.

Label values name things, never people: a channel, an outcome, a rule id, an error kind, a
route template. Never a phone number, an address or a case id (unbounded cardinality).
Starlette appears only in type hints (`WebhookTiming` is a plain ASGI middleware).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from starlette.types import ASGIApp, Receive, Scope, Send

# Webhooks must answer Twilio within 15 s; most should take milliseconds.
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


def _label(value: str | Enum) -> str:
    return str(value.value if isinstance(value, Enum) else value)


class Metrics:
    """What the dialer counts. Methods are cheap and never raise on a valid label."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._server: WSGIServer | None = None
        self.attempts = self._counter(
            "dialer_attempts",
            "Contact attempts carried out, by channel and outcome.",
            ["channel", "outcome"],
        )
        self.refusals = self._counter(
            "dialer_refusals",
            "Reasons the engine refused a candidate contact, by rule.",
            ["rule"],
        )
        self.decision_warnings = self._counter(
            "dialer_decision_warnings",
            "Decisions taken on less than they should rest on, by warning (e.g."
            " calendar.no_published_schedule: a year without its holiday notice).",
            ["warning"],
        )
        self.provider_errors = self._counter(
            "dialer_provider_errors",
            "Errors from telephony and mail providers, by kind.",
            ["kind"],
        )
        self.queue_lag = Gauge(
            "dialer_queue_lag_seconds",
            "How late the last job was picked up after its not_before instant.",
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "dialer_webhook_latency_seconds",
            "Time to answer a provider webhook, by route.",
            ["route"],
            buckets=WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self._webhook_children: dict[str, Histogram] = {}
        self.webhook_unmatched = self._counter(
            "dialer_webhook_events_unmatched",
            "Provider callbacks naming no known call or message, kept for reconciliation,"
            " by kind (duplicates are not counted again).",
            ["kind"],
        )
        self.webhook_reconciled = self._counter(
            "dialer_webhook_events_reconciled",
            "Callbacks kept as unmatched that the reconciler later applied to their attempt,"
            " by kind.",
            ["kind"],
        )
        self.voicemail_redirects = self._counter(
            "dialer_voicemail_redirects",
            "Live calls redirected to the voicemail message after the machine's beep, by"
            " outcome (redirected, failed; a failure is recorded, never retried).",
            ["outcome"],
        )

    def _counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def record_attempt(self, channel: str | Enum, outcome: str | Enum) -> None:
        self.attempts.labels(channel=_label(channel), outcome=_label(outcome)).inc()

    def record_refusals(self, rules: Iterable[str | Enum]) -> None:
        """One increment per rule named (a refused candidate usually names several)."""
        for rule in rules:
            self.refusals.labels(rule=_label(rule)).inc()

    def record_decision_warnings(self, warnings: Iterable[str | Enum]) -> None:
        """One increment per warning a decision carries (`Decision.warnings`, by rule)."""
        for warning in warnings:
            self.decision_warnings.labels(warning=_label(warning)).inc()

    def record_provider_error(self, kind: str | Enum) -> None:
        self.provider_errors.labels(kind=_label(kind)).inc()

    def record_unmatched_event(self, kind: str) -> None:
        self.webhook_unmatched.labels(kind=kind).inc()

    def record_reconciled_event(self, kind: str) -> None:
        self.webhook_reconciled.labels(kind=kind).inc()

    def record_voicemail_redirect(self, outcome: str) -> None:
        self.voicemail_redirects.labels(outcome=outcome).inc()

    def observe_webhook(self, route: str, seconds: float) -> None:
        # The child per route is kept: `labels()` locks and builds a key on every call,
        # and this runs on every webhook (the route set is bounded: matched routes only).
        child = self._webhook_children.get(route)
        if child is None:
            child = self._webhook_children[route] = self.webhook_latency.labels(route=route)
        child.observe(max(seconds, 0.0))

    @contextmanager
    def time_webhook(self, route: str) -> Iterator[None]:
        """`with metrics.time_webhook("/webhooks/twilio/call-status"): ...`"""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe_webhook(route, time.perf_counter() - start)

    def set_queue_lag(self, seconds: float) -> None:
        self.queue_lag.set(max(seconds, 0.0))

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104
        """Serve /metrics on `port` (0: any free port) from a daemon thread, for processes
        without the API (`dialer worker`); returns the port. `stop_serving()` stops it."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def stop_serving(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class WebhookTiming:
    """ASGI middleware: every request under `prefix` that matched a route is observed in
    `dialer_webhook_latency_seconds{route=<its path or path template>}`, signature check and
    commit included, as Twilio waits for them. Unmatched paths (scanners) are not counted,
    so the label set stays bounded."""

    def __init__(self, app: ASGIApp, metrics: Metrics, prefix: str = "/v1/twilio/") -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            template = getattr(scope.get("route"), "path", None)
            if isinstance(template, str):  # a route matched: the label set stays bounded
                # Without path parameters the path is its own template, prefixes included
                # (FastAPI's nested routers keep only their own part in `route.path`).
                label = template if scope.get("path_params") else scope["path"]
                self.metrics.observe_webhook(label, time.perf_counter() - start)
