"""Unknown-id callbacks kept for reconciliation and the ones the reconciler later applies
are counted in the process's metrics: `dialer_webhook_events_unmatched_total{kind}` and
`dialer_webhook_events_reconciled_total{kind}`, once per event (a duplicate counts
nothing), after the commit. On PostgreSQL the status callbacks take the one-statement
path, on SQLite the session path: both count the same."""

from __future__ import annotations

import uuid

import pytest

from dialer.callbacks import apply as callbacks
from dialer.observability.metrics import Metrics
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, amd, call_status, configure, sms_status

STATUS = "/v1/twilio/voice/status"
AMD = "/v1/twilio/voice/amd"
SMS_STATUS = "/v1/twilio/sms/status"
SID = "CA" + "4" * 32
MSG = "SM" + "4" * 32
UNMATCHED = "dialer_webhook_events_unmatched_total"
RECONCILED = "dialer_webhook_events_reconciled_total"


@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


def _metrics(hooks: Hooks) -> Metrics:
    metrics = hooks.api.app.state.metrics
    assert isinstance(metrics, Metrics)
    return metrics


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_unknown_call_and_message_ids_are_counted_once_by_kind(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    ringing = call_status(SID, "ringing", 1)
    for _ in range(2):  # Twilio's retry of the same callback is a duplicate
        assert (await hooks.post(STATUS, ringing)).status_code == 204
    r = await hooks.post(STATUS, call_status(SID, "completed", 2), attempt=uuid.uuid4())
    assert r.status_code == 204
    assert (await hooks.post(AMD, amd(SID, "human"))).status_code == 204
    for _ in range(2):
        assert (await hooks.post(SMS_STATUS, sms_status(MSG, "delivered"))).status_code == 204
    assert [e.status for e in await hooks.events()] == ["unmatched"] * 4
    assert _value(metrics, UNMATCHED, kind="voice_status") == 2
    assert _value(metrics, UNMATCHED, kind="amd") == 1
    assert _value(metrics, UNMATCHED, kind="sms_status") == 1


async def test_known_attempts_count_no_unmatched_event(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    r = await hooks.post(STATUS, call_status(SID, "ringing", 1), attempt=attempt.id)
    assert r.status_code == 204
    r = await hooks.post(STATUS, call_status(SID, "in-progress", 2))  # found by its sid
    assert r.status_code == 204
    assert (await hooks.attempt(attempt.id)).state == "in_progress"
    assert _value(metrics, UNMATCHED, kind="voice_status") == 0


async def test_a_forged_callback_counts_nothing(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    r = await hooks.post(STATUS, call_status(SID, "ringing", 1), token="forged")
    assert r.status_code == 403
    assert _value(metrics, UNMATCHED, kind="voice_status") == 0
    assert await hooks.events() == []


async def test_events_the_reconciler_applies_are_counted_by_kind(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    await hooks.post(STATUS, call_status(SID, "ringing", 1))
    await hooks.post(STATUS, call_status(SID, "completed", 2, CallDuration="9"))
    await hooks.post(AMD, amd(SID, "machine_end_beep"))
    await hooks.post(STATUS, call_status("CA" + "3" * 32, "ringing", 1))  # stays unknown
    assert _value(metrics, UNMATCHED, kind="voice_status") == 3
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    async with hooks.maker() as session:
        assert await callbacks.reconcile_unmatched(session, NOW, metrics=metrics) == 3
    assert (await hooks.attempt(attempt.id)).result == "voicemail"
    assert _value(metrics, RECONCILED, kind="voice_status") == 2
    assert _value(metrics, RECONCILED, kind="amd") == 1
    async with hooks.maker() as session:  # applied once: a second pass finds nothing new
        assert await callbacks.reconcile_unmatched(session, NOW, metrics=metrics) == 0
    assert _value(metrics, RECONCILED, kind="voice_status") == 2
    statuses = sorted(e.status for e in await hooks.events())
    assert statuses == ["resolved", "resolved", "resolved", "unmatched"]
