"""Prometheus metrics: the names and labels operators alert on, one registry per app."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from dialer.api.app import create_app
from dialer.core.settings import Settings
from dialer.observability import start_worker_observability
from dialer.observability.metrics import Metrics, WebhookTiming
from strategy.model import Channel
from tests.dialer.support import Api


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_recorders_count_by_their_labels() -> None:
    m = Metrics()
    m.record_attempt(Channel.VOICE, "answered")
    m.record_attempt("voice", "answered")
    m.record_attempt("sms", "delivered")
    m.record_refusals(["guardrail.window", "cap.contact_point.unanswered", "guardrail.window"])
    m.record_provider_error("transient")
    m.observe_webhook("/webhooks/twilio/call-status", 0.03)
    with m.time_webhook("/webhooks/twilio/sms-status"):
        pass
    m.set_queue_lag(4.5)
    got = samples(m)
    assert got[("dialer_attempts_total", (("channel", "voice"), ("outcome", "answered")))] == 2
    assert got[("dialer_attempts_total", (("channel", "sms"), ("outcome", "delivered")))] == 1
    assert got[("dialer_refusals_total", (("rule", "guardrail.window"),))] == 2
    assert got[("dialer_refusals_total", (("rule", "cap.contact_point.unanswered"),))] == 1
    assert got[("dialer_provider_errors_total", (("kind", "transient"),))] == 1
    assert got[("dialer_queue_lag_seconds", ())] == 4.5
    route = (("route", "/webhooks/twilio/call-status"),)
    assert got[("dialer_webhook_latency_seconds_count", route)] == 1
    assert got[("dialer_webhook_latency_seconds_sum", route)] == 0.03
    assert got[("dialer_webhook_latency_seconds_bucket", (("le", "0.05"), *route))] == 1
    sms = (("route", "/webhooks/twilio/sms-status"),)
    assert got[("dialer_webhook_latency_seconds_count", sms)] == 1


def test_a_negative_lag_or_duration_reads_as_zero() -> None:
    m = Metrics()
    m.set_queue_lag(-3)  # a job picked up before its instant (clock skew between hosts)
    m.observe_webhook("/w", -0.1)
    got = samples(m)
    assert got[("dialer_queue_lag_seconds", ())] == 0
    assert got[("dialer_webhook_latency_seconds_sum", (("route", "/w"),))] == 0


def test_each_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.record_attempt("voice", "busy")
    assert ("dialer_attempts_total", (("channel", "voice"), ("outcome", "busy"))) in samples(a)
    assert not any(name == "dialer_attempts_total" for name, _ in samples(b))
    # two apps in one process: no "duplicated timeseries" from a shared global registry
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    first, second = create_app(settings), create_app(settings)
    assert first.state.metrics is not second.state.metrics


def test_the_composition_root_can_pass_the_metrics_its_services_record_into() -> None:
    shared = Metrics()
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"), metrics=shared)
    assert app.state.metrics is shared


async def test_metrics_endpoint_serves_the_text_exposition(api: Api) -> None:
    api.app.state.metrics.record_attempt("voice", "no_answer")
    api.app.state.metrics.record_refusals(["optout.channel"])
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'dialer_attempts_total{channel="voice",outcome="no_answer"} 1.0' in r.text
    assert 'dialer_refusals_total{rule="optout.channel"} 1.0' in r.text
    for name in (
        "dialer_provider_errors_total",
        "dialer_queue_lag_seconds",
        "dialer_webhook_latency_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in r.text


async def test_metrics_endpoint_is_404_when_disabled(api: Api) -> None:
    api.app.state.settings = api.settings.model_copy(update={"metrics_enabled": False})
    r = await api.client.get("/metrics")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_webhook_routes_are_timed_by_their_template_and_unmatched_paths_are_not() -> None:
    metrics = Metrics()
    app = FastAPI()

    @app.post("/v1/twilio/voice/{event}")
    async def voice(event: str) -> dict[str, str]:
        return {"event": event}

    @app.get("/v1/cases")
    async def cases() -> list[str]:
        return []

    app.add_middleware(WebhookTiming, metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/v1/twilio/voice/status?attempt=a-1")).status_code == 200
        assert (await client.post("/v1/twilio/voice/amd")).status_code == 200
        assert (await client.post("/v1/twilio/no/such/route")).status_code == 404
        assert (await client.get("/v1/cases")).status_code == 200
    got = samples(metrics)
    counts = {k[1]: v for k, v in got.items() if k[0] == "dialer_webhook_latency_seconds_count"}
    assert counts == {(("route", "/v1/twilio/voice/{event}"),): 2}


def test_create_app_times_the_twilio_webhooks() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    assert any(m.cls is WebhookTiming for m in app.user_middleware)


def test_a_process_without_the_api_serves_its_metrics_on_a_port() -> None:
    metrics = Metrics()
    metrics.record_provider_error("auth")
    port = metrics.serve(0, addr="127.0.0.1")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        assert 'dialer_provider_errors_total{kind="auth"} 1.0' in r.text
    finally:
        metrics.stop_serving()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_worker_observability_logs_json_and_serves_metrics_on_the_configured_port() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics = start_worker_observability(Settings(worker_metrics_port=port))
    try:
        assert any(getattr(h, "_dialer_handler", False) for h in root.handlers)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    finally:
        metrics.stop_serving()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    off = start_worker_observability(Settings(worker_metrics_port=0))
    try:
        assert off._server is None
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


async def test_the_app_times_its_real_twilio_webhooks_even_when_it_refuses_them(
    api: Api,
) -> None:
    r = await api.client.post("/v1/twilio/voice/status", data={"CallSid": "CA1"})
    assert r.status_code == 403  # unsigned: refused, and Twilio still waited for the answer
    got = samples(api.app.state.metrics)
    assert got[("dialer_webhook_latency_seconds_count", (("route", "/v1/twilio/voice/status"),))]


def test_decision_warnings_count_by_warning() -> None:
    # A decision in a year without China's holiday notice carries a warning; the worker
    # counts each one it dispatches on.
    m = Metrics()
    m.record_decision_warnings(["calendar.no_published_schedule"])
    m.record_decision_warnings(iter(["calendar.no_published_schedule"]))
    got = samples(m)
    key = ("dialer_decision_warnings_total", (("warning", "calendar.no_published_schedule"),))
    assert got[key] == 2
