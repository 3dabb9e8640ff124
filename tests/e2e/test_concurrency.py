"""Invariants 2, 3 and 6 under concurrency and redelivery: four worker processes on
PostgreSQL and RabbitMQ, two campaigns racing over the same cases with a case cap of one
contact a day, and every job published to the broker twice.

The workers plan the campaigns themselves (the planner's lease), relay the outbox and
dispatch. A case gets one attempt per campaign (the second planner refuses it by the cap
when the first campaign's call is already on record), so most cases have two attempts in
flight, four deliveries, and room for one contact. The provider's own log must show one
contact per case, never two for an attempt, every ack after its attempt was recorded,
and the audit nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.e2e.harness import E2E, WAITING, Figures

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

CASES = int(os.environ.get("DIALER_E2E_CASES", "2000"))  # "a few thousand": ~4-6 min here
WORKERS = 4


async def test_four_workers_every_job_twice_dial_each_attempt_once_and_hold_the_caps(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(CASES, case_cap=1)
    await e2e.campaign("morning-a", channels=("voice", "sms"))
    await e2e.campaign("morning-b", channels=("voice", "sms"))
    for _ in range(WORKERS):
        # 4 jobs at a time each: the four pools stay well inside PostgreSQL's 100 clients
        e2e.spawn(DIALER_TEST_DUPLICATE_PUBLISH="1", DIALER_WORKER_CONCURRENCY="4")

    await e2e.wait_until(lambda: e2e.quiet(*WAITING), within=1200, what="the campaigns to finish")
    # ... and until every duplicate was delivered too (each must find its attempt handled)
    await e2e.wait_until(e2e.queue_drained, within=120, what="the duplicates to be consumed")
    await e2e.stop_workers()  # in-flight jobs finish and are acked first
    figures = await e2e.check(Figures("concurrency", cases=CASES), case_cap=1)
    figures.print(record_property)

    assert not figures.violations, figures.violations[:10]
    # One attempt per case and campaign, unless the twin campaign's planner already saw
    # the first one's call on record (then the cap refuses it at planning).
    assert CASES < figures.jobs <= 2 * CASES
    assert figures.duplicates_injected == figures.jobs, "every job was published twice"
    # The cap leaves room for exactly one contact per case: one attempt is sent, the
    # twin campaign's is refused by the cap at dispatch.
    assert figures.provider_calls == CASES
    assert figures.extra["cases_contacted"] == CASES
    assert figures.states.get("sent") == CASES
    assert figures.states.get("refused") == figures.jobs - CASES
    assert figures.audit_checked is not None and figures.audit_checked >= CASES
