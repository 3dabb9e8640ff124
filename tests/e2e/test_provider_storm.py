"""A provider storm: Twilio answers creates with 429 for a stretch, then 500 (once without
placing the call, once after placing it), then recovers.

- 429 is documented as never processed: the adapter backs off (honouring `Retry-After`),
  a job whose retries run out is recorded `not_sent` and a fresh attempt is planned for
  later; the rate of requests during the storm stays near what the workers' concurrency
  allows (a hot loop would be hundreds a second).
- 500 on a create is ambiguous: the attempt goes to `unknown`, nothing dials it again, and
  the reconciler (the workers' own loop) looks it up: the call placed before the 500 is
  found and recorded `sent` with its sid, the one never placed becomes `not_sent` and a
  fresh attempt is planned in its place.
- The campaign resumes after the storm and completes; nothing is dialled twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from dialer.db.models import AttemptRow
from tests.e2e.harness import E2E, WAITING, Figures
from tests.e2e.mock_twilio import Fault

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

CASES = int(os.environ.get("DIALER_E2E_STORM_CASES", "240"))
WORKERS = 2
CONCURRENCY = 8  # per worker (harness default)
CPS = 20.0


def peak_per_second(stamps: list[float]) -> int:
    """The most requests in any one-second window starting at a request."""
    stamps = sorted(stamps)
    peak, j = 0, 0
    for i, t in enumerate(stamps):
        while j < len(stamps) and stamps[j] < t + 1.0:
            j += 1
        peak = max(peak, j - i)
    return peak


async def test_twilio_429_and_5xx_storm_backs_off_dials_nothing_twice_and_campaign_completes(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(CASES, case_cap=1)
    campaign = await e2e.campaign("morning", channels=("voice",), cps=CPS)
    await e2e.plan_here(campaign)
    e2e.mock.set_fault(Fault(429, retry_after=1))
    for _ in range(WORKERS):
        e2e.spawn()

    async def requests_seen(n: int) -> bool:
        return len(e2e.mock.creates) >= n

    await e2e.wait_until(lambda: requests_seen(1), within=60, what="the first request")
    storm_start = time.monotonic()
    await asyncio.sleep(6)  # the 429 stretch: longer than the adapter's retries last
    e2e.mock.set_fault(Fault(500))
    await asyncio.sleep(3)
    e2e.mock.set_fault(Fault(503, create_anyway=True))
    await asyncio.sleep(3)
    e2e.mock.set_fault(None)
    storm_end = time.monotonic()
    in_storm = [c for c in e2e.mock.creates if storm_start <= c.wall < storm_end]
    during = await e2e.counts()

    # The retried attempts wait a minute (the worker's transient delay); the ambiguous
    # ones wait for the workers' reconciler (30 s after reservation, every 15 s).
    await e2e.wait_until(lambda: e2e.quiet(*WAITING), within=240, what="the campaign to finish")
    # A relay killed between the broker's confirm and its commit publishes its batch
    # again (at least once): those copies must find their attempts handled, and do.
    await e2e.wait_until(e2e.queue_drained, within=120, what="the queue to drain")
    await e2e.stop_workers()
    figures = await e2e.check(Figures("provider-storm", cases=CASES), case_cap=1)
    rate_limited = [c for c in in_storm if c.status == 429]
    ambiguous = [c for c in in_storm if c.status >= 500]
    async with e2e.maker() as session:
        retries = await session.scalar(
            select(func.count()).where(AttemptRow.notes.like("retry of %"))
        )
        transient = await session.scalar(
            select(func.count()).where(AttemptRow.error_code == "transient")
        )
        reconciled_sent = await session.scalar(
            select(func.count()).where(
                AttemptRow.error_code == "ambiguous", AttemptRow.state == "sent"
            )
        )
        reconciled_not_sent = await session.scalar(
            select(func.count()).where(
                AttemptRow.error_code == "ambiguous", AttemptRow.state == "not_sent"
            )
        )
    peak = peak_per_second([c.wall for c in in_storm])
    figures.extra.update(
        storm_requests=len(in_storm),
        storm_429=len(rate_limited),
        storm_5xx=len(ambiguous),
        storm_peak_requests_per_second=peak,
        unknown_during_storm=during.get("unknown", 0),
        transient_not_sent=transient,
        retry_attempts_planned=retries,
        ambiguous_found_sent=reconciled_sent,
        ambiguous_found_not_sent=reconciled_not_sent,
    )
    figures.print(record_property)

    assert not figures.violations, figures.violations[:10]
    assert rate_limited and ambiguous
    # Paced backoff: each in-flight job waits Retry-After between tries, new jobs come at
    # the campaign's pace; a hot loop would be orders of magnitude above this bound.
    assert peak <= WORKERS * CONCURRENCY * 2 + CPS, peak
    assert transient and retries == transient, "every 429-exhausted job planned again once"
    assert reconciled_sent and reconciled_not_sent, "both ambiguous kinds looked up"
    # Resumed and completed: every case was dialled once, those whose create was lost in a
    # 500 that placed nothing too (not_sent after the look-up, then planned afresh by the
    # reconciler; the lost attempt itself is never redialled).
    assert figures.extra["cases_contacted"] == CASES
    async with e2e.maker() as session:
        replanned = await session.scalar(
            select(func.count()).where(AttemptRow.notes.like("re-planned by the reconciler%"))
        )
    assert replanned == reconciled_not_sent
    assert figures.provider_calls == figures.states.get("sent", 0)
