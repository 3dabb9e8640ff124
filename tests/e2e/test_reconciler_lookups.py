"""Issue 19 items 3 and 4 (the reconciler's part), against real worker processes, the
broker, PostgreSQL and the mock Twilio:

- texts caught by a 503 burst (some created at Twilio anyway, some not) are looked up by
  `To` and date: the ones Twilio has are recorded with its sid and never sent again, the
  ones it never got are `not_sent` and planned again; every case gets its one text, none
  is closed `failed` on a guess;
- a text the reconciler closed as failed on its own (Twilio knew nothing of its sid) is
  corrected by Twilio's late `delivered` callback, through the real app on PostgreSQL's
  one-statement path; a failure Twilio reported stays failed;
- calls whose callbacks never come (Twilio does not retry them) free their in-progress
  places once the reconciler has seen them end at Twilio, well before the 30-minute stuck
  timeout: a campaign with `max_in_progress` keeps dialling instead of stalling.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from dialer.api.app import create_app
from dialer.core.clock import fixed_clock
from dialer.db.models import AttemptRow
from dialer.dispatch import reconciler
from tests.dialer.dispatch_world import INSIDE
from tests.dialer.twilio_forms import ACCOUNT, BASE, TOKEN, sms_status
from tests.e2e.harness import E2E, WAITING, Figures
from tests.e2e.mock_twilio import Fault
from tests.e2e.test_webhook_storm import signed
from tests.e2e.worker_main import mock_telephony

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

TEXT_CASES = 80
BURST = 4  # texts that meet each kind of 503 at least
CALL_CASES = 24
MAX_IN_PROGRESS = 4
CALL_SECONDS = 1.0  # every call ends this long after it was placed, no callback says so


async def test_texts_caught_by_a_503_burst_are_looked_up_and_the_unsent_sent_once(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(TEXT_CASES, case_cap=1)
    campaign = await e2e.campaign("texts", channels=("sms",), cps=20)
    await e2e.plan_here(campaign)
    e2e.spawn()
    e2e.spawn()

    async def some_sent() -> bool:
        return (await e2e.counts()).get("sent", 0) >= TEXT_CASES // 5

    await e2e.wait_until(some_sent, within=120, what="the first texts")
    # A 503 burst: first Twilio does nothing, then it sends and still answers 503; each
    # lasts until a few texts have met it (a loaded machine dispatches slower).
    for fault in (Fault(503), Fault(503, create_anyway=True)):
        e2e.mock.set_fault(fault)

        async def met(fault: Fault = fault) -> bool:
            return sum(1 for c in e2e.mock.creates if c.status == 503 and
                       c.created == fault.create_anyway) >= BURST  # fmt: skip

        await e2e.wait_until(met, within=60, what="texts to meet the 503 burst")
    e2e.mock.set_fault(None)
    await e2e.wait_until(lambda: e2e.quiet("planned", "queued"), within=180, what="the campaign")
    await e2e.wait_until(e2e.queue_drained, within=60, what="the queue")
    await e2e.stop_workers()
    before = await e2e.counts()
    moved, replanned = await e2e.reconcile_then_dispatch()
    figures = await e2e.check(Figures("texts-503", cases=TEXT_CASES), case_cap=1)
    burst = [c for c in e2e.mock.creates if c.status == 503]
    figures.extra.update(
        creates_answered_503=len(burst),
        of_them_sent_anyway=sum(1 for c in burst if c.created),
        unknown_before_reconcile=before.get("unknown", 0),
        reconciled=moved,
        replanned=replanned,
    )
    figures.print(record_property)

    assert any(c.created for c in burst) and any(not c.created for c in burst), burst
    assert before.get("unknown", 0) == len(burst)
    assert not figures.violations, figures.violations[:10]
    # Found at Twilio: recorded with its sid (the check above), never sent again.
    assert (
        moved.get("sent", 0) + moved.get("in_progress", 0) == figures.extra["of_them_sent_anyway"]
    )
    # Never got by Twilio: not_sent, planned again and sent once; nothing closed on a guess.
    assert (
        moved.get("not_sent", 0) == replanned == len(burst) - figures.extra["of_them_sent_anyway"]
    )
    assert "failed" not in figures.states
    assert not any(figures.states.get(s) for s in WAITING)
    assert figures.extra["cases_contacted"] == TEXT_CASES  # every case got its one text
    assert figures.provider_calls == TEXT_CASES


async def test_calls_whose_callbacks_are_lost_free_their_places_before_the_stuck_timeout(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(CALL_CASES, case_cap=1)
    campaign = await e2e.campaign(
        "silent", channels=("voice",), cps=50, max_in_progress=MAX_IN_PROGRESS
    )
    await e2e.plan_here(campaign)
    e2e.mock.end_calls_after(CALL_SECONDS)
    started = time.monotonic()
    # A call rings and plays its flow in well under 2 s here (production: 180 s).
    e2e.spawn(DIALER_SILENT_CALL_SECONDS="2", DIALER_RECONCILE_INTERVAL_SECONDS="1")

    async def all_dialled_and_ended() -> bool:
        counts = await e2e.counts()
        return counts.get("completed", 0) == CALL_CASES

    # Today the first MAX_IN_PROGRESS calls hold every place until the stuck timeout
    # (DIALER_STUCK_ATTEMPT_TIMEOUT_SECONDS, 1800 s): nothing else is dialled.
    await e2e.wait_until(all_dialled_and_ended, within=300, what="every call to end")
    took = time.monotonic() - started
    await e2e.stop_workers()
    figures = await e2e.check(Figures("silent-calls", cases=CALL_CASES), case_cap=1)
    figures.extra.update(seconds_to_finish=round(took, 1), max_in_progress=MAX_IN_PROGRESS)
    figures.print(record_property)

    assert not figures.violations, figures.violations[:10]
    assert figures.extra["cases_contacted"] == CALL_CASES
    assert figures.states == {"completed": CALL_CASES}
    assert figures.provider_calls == CALL_CASES
    # Freed by the look-ups, each round of MAX_IN_PROGRESS calls within seconds of its
    # end: the whole campaign far inside one stuck timeout (1800 s, what today waits).
    assert took < 300, took


LATE_CASES = 8


async def test_a_late_delivered_callback_corrects_only_the_reconcilers_own_failure(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(LATE_CASES, case_cap=1)
    campaign = await e2e.campaign("late", channels=("sms",), cps=50)
    await e2e.plan_here(campaign)
    e2e.spawn()
    await e2e.wait_until(
        lambda: e2e.quiet("planned", "queued", "reserved", "unknown"), within=120, what="texts"
    )
    await e2e.stop_workers()
    async with e2e.maker() as session:
        texts = (await session.scalars(select(AttemptRow).order_by(AttemptRow.id))).all()
    assert len(texts) == LATE_CASES and all(t.provider_sid for t in texts)
    forgotten, refused = texts[: LATE_CASES // 2], texts[LATE_CASES // 2 :]
    settings = e2e.settings.model_copy(
        update={
            "twilio_auth_token": SecretStr(TOKEN),
            "twilio_account_sid": ACCOUNT,
            "public_base_url": BASE,
        }
    )
    app = create_app(settings, clock=fixed_clock(INSIDE))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def post(text: AttemptRow, status: str, error: str | None = None) -> None:
                assert text.provider_sid is not None
                fields = sms_status(text.provider_sid, status, error=error)
                target, body, headers = signed("sms/status", fields, text.id)
                r = await client.post(target, content=body, headers=headers)
                assert r.status_code == 204, r.text

            # Twilio reports these failed itself; the others' callbacks are all lost, and
            # Twilio no longer knows their sids when the reconciler asks (404).
            for text in refused:
                await post(text, "undelivered", "30003")
            with e2e.mock.lock:
                for text in forgotten:
                    e2e.mock.records.pop(text.provider_sid or "")
            telephony = mock_telephony(e2e.settings, e2e.mock.url)
            try:
                report = await reconciler.reconcile(
                    e2e.maker,
                    telephony,
                    e2e.clock() + timedelta(minutes=10),
                    stuck_after=timedelta(minutes=5),
                )
            finally:
                await telephony.close()
            assert report.moved == {"failed": len(forgotten)}
            # Late, Twilio's `delivered` arrives for every text.
            for text in texts:
                await post(text, "delivered")
    async with e2e.maker() as session:
        rows = {a.id: a for a in (await session.scalars(select(AttemptRow))).all()}
    corrected = [rows[t.id] for t in forgotten]
    kept = [rows[t.id] for t in refused]
    figures = Figures("late-delivered", cases=LATE_CASES)
    figures.states = dict(Counter(f"{a.state}/{a.result}/{a.error_code}" for a in rows.values()))
    figures.extra.update(reconciler_failed=len(forgotten), twilio_failed=len(refused))
    figures.print(record_property)
    assert [(a.state, a.result, a.error_code) for a in corrected] == [
        ("completed", "delivered", None)
    ] * len(forgotten)
    assert [(a.state, a.error_code) for a in kept] == [("failed", "30003")] * len(refused)


CRASH_TEXT_CASES = 80
TEXT_CRASHES_EACH = 2


async def test_texts_of_workers_killed_mid_send_are_found_or_sent_once(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    """Workers SIGKILLed just before a text's create left (fenced: dialing, nothing at
    Twilio) and just after Twilio took it (dialing, a message at Twilio, no sid
    recorded): the reconciler finds the second kind by `To` and date and plans the first
    kind again. Their other jobs die reserved or dialing, whichever they had reached."""
    await e2e.seed(CRASH_TEXT_CASES, case_cap=1)
    campaign = await e2e.campaign("texts", channels=("sms",), cps=40)
    await e2e.plan_here(campaign)
    kinds = {"after_reserve": 0, "after_provider": 0}
    crashing: dict[int, str] = {}

    def spawn_crashing(kind: str) -> None:
        proc = e2e.spawn(DIALER_TEST_CRASH_AT=kind, DIALER_TEST_CRASH_ON="5")
        crashing[proc.pid] = kind

    for kind in kinds:
        spawn_crashing(kind)

    async def supervise() -> None:
        for proc in e2e.reap_crashed():
            kind = crashing.pop(proc.pid)
            kinds[kind] += 1
            if kinds[kind] < TEXT_CRASHES_EACH:
                spawn_crashing(kind)
            elif not crashing:
                e2e.spawn()

    await e2e.wait_until(
        lambda: e2e.quiet("planned", "queued"), within=240, what="every job", tick=supervise
    )
    await supervise()
    await e2e.wait_until(e2e.queue_drained, within=120, what="the queue to drain")
    await e2e.stop_workers()
    assert kinds == {"after_reserve": TEXT_CRASHES_EACH, "after_provider": TEXT_CRASHES_EACH}
    before = await e2e.counts()
    moved, replanned = await e2e.reconcile_then_dispatch()
    figures = await e2e.check(Figures("texts-killed", cases=CRASH_TEXT_CASES), case_cap=1)
    figures.extra.update(
        reserved_before_reconcile=before.get("reserved", 0),
        dialing_before_reconcile=before.get("dialing", 0),
        reconciled=moved,
        replanned=replanned,
    )
    figures.print(record_property)

    assert not figures.violations, figures.violations[:10]
    # Each crash left its own text fenced (the fence comes before every create).
    assert before.get("dialing", 0) >= 2 * TEXT_CRASHES_EACH
    # Killed after Twilio took it: found, its sid recorded, never sent again.
    assert moved.get("sent", 0) + moved.get("in_progress", 0) >= TEXT_CRASHES_EACH
    # Killed before it left: not_sent and sent once in its stead; nothing closed failed.
    assert moved.get("not_sent", 0) == replanned >= TEXT_CRASHES_EACH
    assert "failed" not in figures.states
    assert figures.extra["cases_contacted"] == CRASH_TEXT_CASES
    assert figures.provider_calls == CRASH_TEXT_CASES
