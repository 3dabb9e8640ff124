"""At most once, and at once (issue 19, items 1, 2 and 5), against the mock Twilio's log
of every create request:

1. A worker stalled (SIGSTOP) past the reclaim time while it holds reserved attempts:
   the reconciler reclaims them and another worker places them; when the stalled worker
   resumes, its fence finds the lease taken and it places nothing. No number is called
   twice, no `not_sent` attempt carries a provider id, the audit passes.
2. STOP for numbers whose texts are queued and reserved, under load: no create for a
   number after its STOP was answered 2xx. The latency from each STOP to the last
   create for its number is printed.
3. A 429 storm at a campaign's rate: every retry takes a pacing slot, so no one-second
   window holds more requests than the rate allows.

The reclaim times are settings (`DIALER_RESERVE_LEASE_SECONDS`, ...), short here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dialer.api.app import create_app
from dialer.db.models import AttemptRow, ContactPointRow
from dialer.dispatch import reconciler
from tests.dialer.twilio_forms import inbound, signature
from tests.e2e.harness import ACCOUNT, E2E, PROVIDER_STATES, PUBLIC, TOKEN, WAITING, Figures
from tests.e2e.mock_twilio import Fault
from tests.e2e.test_provider_storm import peak_per_second
from tests.e2e.worker_main import mock_telephony

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

LEASE = 3.0  # seconds: a reservation's lease (production: 300)
SHORT = {
    "DIALER_RESERVE_LEASE_SECONDS": str(LEASE),
    "DIALER_TWILIO_HTTP_TIMEOUT_SECONDS": "2",
    "DIALER_RECLAIM_MARGIN_SECONDS": "1",
    "DIALER_RECONCILE_INTERVAL_SECONDS": "1",
}


async def _reserved(e2e: E2E) -> list[uuid.UUID]:
    async with e2e.maker() as session:
        return list(
            (
                await session.scalars(select(AttemptRow.id).where(AttemptRow.state == "reserved"))
            ).all()
        )


async def test_a_worker_stalled_past_its_lease_dials_nothing_that_was_reclaimed(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    cases = 60
    await e2e.seed(cases, case_cap=1)
    # A slow pace: the worker holds reservations waiting for their slots (2 s ahead).
    campaign = await e2e.campaign("stall", channels=("voice",), cps=8.0)
    await e2e.plan_here(campaign)
    stalled = e2e.spawn(**SHORT, DIALER_WORKER_CONCURRENCY="32")

    async def holding() -> bool:
        return len(await _reserved(e2e)) >= 8

    await e2e.wait_until(holding, within=60, what="the worker to hold reservations")
    stalled.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(0.3)  # whatever it was committing has landed
        held = await _reserved(e2e)
        creates_at_stop = len(e2e.mock.creates)
        await asyncio.sleep(LEASE + 1.5)  # past the lease: the reclaim time
        # The production reconciler, as the other workers run it (reserved attempts past
        # their reclaim time: the lease here, `reserved_after` for rows without one).
        telephony = mock_telephony(e2e.settings, e2e.mock.url)
        try:
            report = await reconciler.reconcile(
                e2e.maker, telephony, e2e.clock(), reserved_after=timedelta(seconds=LEASE)
            )
        finally:
            await telephony.close()
        e2e.spawn(**SHORT)  # another worker places the re-planned calls and the rest

        async def replans_placed() -> bool:
            replan = AttemptRow.notes.like(f"{reconciler.REPLAN_NOTE}%")
            async with e2e.maker() as session:
                made = await session.scalar(select(func.count()).where(replan))
                placed = await session.scalar(
                    select(func.count()).where(replan, AttemptRow.state.in_(PROVIDER_STATES))
                )
            return bool(made) and placed == made

        await e2e.wait_until(replans_placed, within=90, what="the re-planned calls")
    finally:
        stalled.send_signal(signal.SIGCONT)
    await asyncio.sleep(3)  # the stalled worker resumes with its reservations in hand
    await e2e.wait_until(lambda: e2e.quiet(*WAITING), within=90, what="nothing waiting")
    await e2e.wait_until(e2e.queue_drained, within=60, what="the queue to drain")
    await e2e.stop_workers()

    figures = await e2e.check(Figures("stalled-worker", cases=cases), case_cap=1)
    by_number = e2e.mock.dials_by_number()
    doubles = sum(1 for n in by_number.values() if n > 1)
    async with e2e.maker() as session:
        sid_on_not_sent = await session.scalar(
            select(func.count()).where(
                AttemptRow.state == "not_sent", AttemptRow.provider_sid.is_not(None)
            )
        )
        reclaimed = await session.scalar(
            select(func.count()).where(AttemptRow.id.in_(held), AttemptRow.state == "not_sent")
        )
    figures.extra.update(
        held_when_stalled=len(held),
        creates_before_stall=creates_at_stop,
        reclaimed=reclaimed,
        reconciler_moved=sum(report.moved.values()),
        creates=figures.provider_calls,
        doubles=doubles,
        losses=cases - figures.extra["cases_contacted"],
        not_sent_with_sid=sid_on_not_sent,
        audit_exit=0 if not any(v.startswith("audit") for v in figures.violations) else 1,
    )
    figures.print(record_property)

    assert len(held) >= 8 and reclaimed and report.replanned, "reclaimed and re-planned"
    assert doubles == 0, f"{doubles} numbers called twice"
    assert not sid_on_not_sent
    assert not figures.violations, figures.violations[:10]
    assert figures.extra["cases_contacted"] == cases  # nothing lost: re-planned and placed


async def test_no_text_is_created_after_a_stop_was_answered(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    cases = int(os.environ.get("DIALER_E2E_STOP_CASES", "240"))
    await e2e.seed(cases, case_cap=1)
    campaign = await e2e.campaign("texts", channels=("sms",), cps=40.0)
    await e2e.plan_here(campaign)
    for _ in range(2):
        e2e.spawn()
    app = create_app(e2e.settings, clock=e2e.clock)
    url = f"{PUBLIC}/v1/twilio/sms/inbound"
    answered: dict[str, float] = {}  # number -> when its STOP was answered (monotonic)
    asked: dict[str, float] = {}
    codes: Counter[int] = Counter()
    stopped_points: set[uuid.UUID] = set()

    async def numbers_in_hand(n: int) -> list[tuple[uuid.UUID, str]]:
        """Numbers whose texts are reserved right now (waiting for a slot or the fence),
        or else queued."""
        async with e2e.maker() as session:
            rows = (
                await session.execute(
                    select(AttemptRow.state, ContactPointRow.id, ContactPointRow.value)
                    .join(ContactPointRow, ContactPointRow.id == AttemptRow.contact_point_id)
                    .where(AttemptRow.state.in_(["reserved", "queued"]))
                    .order_by(AttemptRow.state.desc())  # reserved first
                )
            ).all()
        out = [(cp, v) for _, cp, v in rows if cp not in stopped_points]
        return out[:n]

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def stop(number: str) -> None:
                fields = {**inbound(f"SM{uuid.uuid4().hex}", number, "STOP"), "AccountSid": ACCOUNT}
                headers = {"X-Twilio-Signature": signature(url, fields, TOKEN)}
                asked[number] = time.monotonic()
                r = await client.post("/v1/twilio/sms/inbound", data=fields, headers=headers)
                codes[r.status_code] += 1
                if r.is_success:
                    answered[number] = time.monotonic()

            await e2e.wait_until(lambda: _has_reserved(e2e), within=60, what="texts to be reserved")
            for _ in range(4):  # rounds of STOPs while the campaign sends
                picked = await numbers_in_hand(12)
                stopped_points.update(cp for cp, _ in picked)
                await asyncio.gather(*(stop(v) for _, v in picked))
                await asyncio.sleep(0.4)
    await e2e.wait_until(lambda: e2e.quiet(*WAITING), within=90, what="the campaign to finish")
    await e2e.wait_until(e2e.queue_drained, within=60, what="the queue to drain")
    await e2e.stop_workers()

    created = e2e.mock.created()
    after_2xx = [c for c in created if c.to in answered and c.wall > answered[c.to]]
    after_stop = [c for c in created if c.to in asked and c.wall > asked[c.to]]
    latency = [c.wall - asked[c.to] for c in after_stop]
    stop_answer = sorted(answered[n] - asked[n] for n in answered)
    figures = await e2e.check(Figures("stop-at-once", cases=cases), case_cap=1)
    async with e2e.maker() as session:
        refusals = (
            await session.scalars(select(AttemptRow.refusal).where(AttemptRow.state == "refused"))
        ).all()
    fenced = sum(
        1 for r in refusals if any(x["rule"] == "optout.channel" for x in (r or {})["reasons"])
    )
    figures.extra.update(
        stops=len(asked),
        stops_answered_2xx=len(answered),
        stop_codes=dict(codes),
        creates=figures.provider_calls,
        creates_after_stop=len(after_stop),
        creates_after_2xx=len(after_2xx),
        refused_for_optout=fenced,
        stop_to_last_send_ms=round(max(latency, default=0.0) * 1000, 1),
        stop_answer_ms_p50=round(stop_answer[len(stop_answer) // 2] * 1000, 1),
        stop_answer_ms_max=round(max(stop_answer, default=0.0) * 1000, 1),
        audit_exit=0 if not any(v.startswith("audit") for v in figures.violations) else 1,
    )
    figures.print(record_property)

    assert len(answered) == len(asked) >= 24, codes
    assert not after_2xx, [(c.to, c.attempt_id) for c in after_2xx][:10]
    assert not figures.violations, figures.violations[:10]


async def _has_reserved(e2e: E2E) -> bool:
    return bool(await _reserved(e2e))


async def test_retries_after_a_429_keep_the_campaign_rate(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    # A rate this shared test machine keeps under any load (the chaos run: 50/s).
    cases, cps = 150, 10.0
    await e2e.seed(cases, case_cap=1)
    campaign = await e2e.campaign("paced", channels=("voice",), cps=cps)
    await e2e.plan_here(campaign)
    for _ in range(2):  # enough jobs in hand to keep the rate
        e2e.spawn(DIALER_WORKER_CONCURRENCY="64")

    async def dialling() -> bool:
        return len(e2e.mock.creates) >= 20

    await e2e.wait_until(dialling, within=60, what="the campaign to dial")
    storm_start = time.monotonic()
    e2e.mock.set_fault(Fault(429))  # no Retry-After: the client's own backoff decides
    await asyncio.sleep(3.0)
    e2e.mock.set_fault(None)
    storm_end = time.monotonic()
    await e2e.wait_until(lambda: e2e.quiet(*WAITING), within=90, what="the campaign to finish")
    await e2e.wait_until(e2e.queue_drained, within=60, what="the queue to drain")
    await e2e.stop_workers()

    stamps = [c.wall for c in e2e.mock.creates]
    before = [t for t in stamps if t < storm_start]
    after = [t for t in stamps if t >= storm_start]
    figures = await e2e.check(Figures("429-paced", cases=cases), case_cap=1)
    figures.extra.update(
        requests=len(stamps),
        rate_limited=sum(1 for c in e2e.mock.creates if c.status == 429),
        peak_before_storm=peak_per_second(before),
        peak_from_storm_on=peak_per_second(after),
        storm_seconds=round(storm_end - storm_start, 2),
        # requests (429 included) in each second from the first; the storm's seconds
        per_second=_histogram(stamps, stamps[0] if stamps else 0.0),
        storm_in_seconds=[round(storm_start - stamps[0], 1), round(storm_end - stamps[0], 1)],
        audit_exit=0 if not any(v.startswith("audit") for v in figures.violations) else 1,
    )
    figures.print(record_property)

    assert figures.extra["rate_limited"] > 0
    assert not figures.violations, figures.violations[:10]
    # Slots are (1 + 3%)/cps apart and a dial starts within 25 ms of its slot
    # (`dialer.dispatch.pacing`): at most cps dials start in any second. Arrival at the
    # mock adds jitter (the chaos run's baseline: 51 at 50/s; this loaded machine's event
    # loops lag more), so the bound is cps + 1 or the same run's peak before the storm.
    # Retries that skip pacing double the rate (today's code: 22 at 10/s).
    bound = max(cps + 1, figures.extra["peak_before_storm"])
    assert figures.extra["peak_from_storm_on"] <= bound, figures.extra


def _histogram(stamps: list[float], start: float) -> list[int]:
    counts = Counter(int(t - start) for t in stamps)
    return [counts.get(i, 0) for i in range(max(counts, default=-1) + 1)]
