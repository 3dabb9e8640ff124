"""The worker, the planner and the webhook callbacks record into the process's `Metrics`:
refusals by rule (at dispatch and at planning), provider errors by kind, queue lag, and one
`dialer_attempts_total` per attempt that a callback brings to a final state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from adapters.errors import PermanentError, PermanentErrorKind, TransientError
from adapters.ports import Delivery
from dialer.db.models import ContactPointRow
from dialer.dispatch import outbox, planner
from dialer.dispatch.runtime import Runtime
from dialer.observability.metrics import Metrics
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world
from tests.dialer.support import Api, settings_for
from tests.dialer.twilio_forms import Hooks, call_status, configure, sms_status

STATUS = "/v1/twilio/voice/status"
SMS_STATUS = "/v1/twilio/sms/status"
SID = "CA" + "5" * 32
MSG = "SM" + "5" * 32


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database, start=INSIDE) as w:
        yield w


async def _plan(world: World, metrics: Metrics | None = None) -> uuid.UUID:
    cid = await world.campaign()
    await planner.plan_campaign(world.maker, cid, world.clock, batch=7, metrics=metrics)
    await outbox.relay_all(world.maker, world.queue, world.clock())
    return cid


async def _drain(world: World, metrics: Metrics) -> None:
    dispatcher = world.dispatcher()
    dispatcher.metrics = metrics
    await world.queue.drain(INSIDE + timedelta(minutes=1), dispatcher)


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# --- the dispatcher ---------------------------------------------------------------------
async def test_a_refusal_at_dispatch_counts_each_of_its_rules(world: World) -> None:
    metrics = Metrics()
    await world.add_cases(1)
    await _plan(world)
    (attempt,) = await world.attempts()
    async with world.maker() as session:  # STOP arrives after planning
        await session.execute(
            update(ContactPointRow)
            .where(ContactPointRow.id == attempt.contact_point_id)
            .values(opted_out=["voice"])
        )
        await session.commit()
    await _drain(world, metrics)
    (refused,) = await world.attempts()
    assert refused.state == "refused" and refused.refusal is not None
    rules = [r["rule"] for r in refused.refusal["reasons"]]
    assert "optout.channel" in rules
    assert _value(metrics, "dialer_refusals_total", rule="optout.channel") == 1
    total = sum(_value(metrics, "dialer_refusals_total", rule=r) for r in set(rules))
    assert total == len(rules), "one increment per rule of the refusal"
    assert world.dials() == 0


async def test_a_permanent_provider_error_counts_its_kind(world: World) -> None:
    metrics = Metrics()
    await world.add_cases(1)
    await _plan(world)
    (attempt,) = await world.attempts()
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        to = point.value
    world.telephony.fail_next(
        to, PermanentError("refused", kind=PermanentErrorKind.INVALID_NUMBER, code=21211)
    )
    await _drain(world, metrics)
    assert (await world.attempts())[0].state == "failed"
    assert _value(metrics, "dialer_provider_errors_total", kind="invalid_number") == 1
    assert _value(metrics, "dialer_provider_errors_total", kind="transient") == 0
    assert _value(metrics, "dialer_queue_lag_seconds") >= 0


async def test_a_transient_provider_error_counts_as_transient(world: World) -> None:
    metrics = Metrics()
    await world.add_cases(1)
    await _plan(world)
    (attempt,) = await world.attempts()
    async with world.maker() as session:
        point = await session.get(ContactPointRow, attempt.contact_point_id)
        assert point is not None
        to = point.value
    world.telephony.fail_next(to, TransientError("503"))
    dispatcher = world.dispatcher()
    dispatcher.metrics = metrics
    (job,) = world.queue.pending()
    world.clock.advance_to(job.not_before + timedelta(seconds=30))  # taken 30 s late
    await dispatcher(Delivery(job))
    assert _value(metrics, "dialer_provider_errors_total", kind="transient") == 1
    assert _value(metrics, "dialer_queue_lag_seconds") == 30
    # The worker tried the create again itself, on a fresh pacing slot (issue 19 item 5).
    assert (await world.attempts(id=attempt.id))[0].state == "sent"
    assert world.dials() == 1


async def test_without_metrics_the_dispatcher_records_nothing_and_still_works(
    world: World,
) -> None:
    await world.add_cases(1)
    await _plan(world)
    await world.queue.drain(INSIDE + timedelta(minutes=1), world.dispatcher())
    assert world.dials() == 1


# --- the planner ----------------------------------------------------------------------------
async def test_the_planner_counts_the_refusals_it_reports_for_progress(world: World) -> None:
    metrics = Metrics()
    await world.add_cases(2)
    await world.add_cases(1, flags=["dispute"])
    await _plan(world, metrics)
    assert _value(metrics, "dialer_refusals_total", rule="flag.dispute") == 1


# --- the worker's composition root ---------------------------------------------------------
async def test_the_runtime_hands_its_metrics_to_the_dispatcher(
    world: World, database: Database
) -> None:
    metrics = Metrics()
    settings = settings_for(database)
    runtime = Runtime.build(settings, world.engine, world.maker, metrics=metrics)
    assert runtime.metrics is metrics and runtime.dispatcher().metrics is metrics
    assert Runtime.build(settings, world.engine, world.maker).dispatcher().metrics is None


# --- webhook callbacks ----------------------------------------------------------------------
@pytest.fixture
def hooks(api: Api) -> Hooks:
    return configure(api)


def _metrics(hooks: Hooks) -> Metrics:
    metrics = hooks.api.app.state.metrics
    assert isinstance(metrics, Metrics)
    return metrics


async def test_a_completed_call_counts_one_attempt_and_a_duplicate_none(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    for event in (call_status(SID, "ringing", 1), call_status(SID, "in-progress", 2)):
        assert (await hooks.post(STATUS, event, attempt=attempt.id)).status_code == 204
    assert _value(metrics, "dialer_attempts_total", channel="voice", outcome="no_answer") == 0
    completed = call_status(SID, "completed", 3, CallDuration="42")
    for _ in range(2):  # Twilio retries: the second is a duplicate
        assert (await hooks.post(STATUS, completed, attempt=attempt.id)).status_code == 204
    token = {"I-Twilio-Idempotency-Token": "tok-9"}  # a retry under a new key: stale
    r = await hooks.post(STATUS, completed, attempt=attempt.id, headers=token)
    assert r.status_code == 204
    assert (await hooks.attempt(attempt.id)).state == "completed"
    assert _value(metrics, "dialer_attempts_total", channel="voice", outcome="no_answer") == 1


async def test_a_delivered_sms_counts_one_attempt(hooks: Hooks) -> None:
    metrics = _metrics(hooks)
    attempt = await hooks.add_attempt(await hooks.us_case(), channel="sms", sid=MSG)
    for status in ("sent", "delivered", "delivered"):
        r = await hooks.post(SMS_STATUS, sms_status(MSG, status), attempt=attempt.id)
        assert r.status_code == 204
    assert _value(metrics, "dialer_attempts_total", channel="sms", outcome="delivered") == 1


async def test_callbacks_work_on_an_app_without_metrics(hooks: Hooks) -> None:
    hooks.api.app.state.metrics = None
    attempt = await hooks.add_attempt(await hooks.case(), sid=SID)
    r = await hooks.post(STATUS, call_status(SID, "completed", 3), attempt=attempt.id)
    assert r.status_code == 204
    assert (await hooks.attempt(attempt.id)).state == "completed"


async def test_a_dispatch_decision_in_a_year_without_its_holiday_notice_is_counted(
    database: Database,
) -> None:
    # Tuesday 2027-03-02 10:00 in Shanghai: China's 2027 notice is not shipped, so the
    # decision carries calendar.no_published_schedule and the worker counts it.
    start = datetime(2027, 3, 2, 2, 0, tzinfo=UTC)
    async with open_world(database, start=start) as world:
        metrics = Metrics()
        await world.add_cases(1, due_date="2027-02-20")
        await _plan(world)
        dispatcher = world.dispatcher()
        dispatcher.metrics = metrics
        await world.queue.drain(start + timedelta(minutes=1), dispatcher)
        name = "dialer_decision_warnings_total"
        assert _value(metrics, name, warning="calendar.no_published_schedule") == 1
