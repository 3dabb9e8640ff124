"""Invariants 3 and 6 across crashes: workers SIGKILLed between the reservation and the
provider call, and between the provider's answer and the record of it.

Crash injection lives in the test entry point (`tests.e2e.worker_main`, a wrapper around
the real adapter), never in production code. A killed worker's unacked jobs come back to
the others flagged as redelivered and must not dial again; its reserved attempts stay
visibly `reserved` (not yet fenced) or `dialing` until the reconciler reclaims or looks
them up at the provider: found -> `sent` with the provider's sid, not found -> `not_sent`
and planned again. Nothing is dialled
twice, nothing lost.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.e2e.harness import E2E, Figures

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

CASES = int(os.environ.get("DIALER_E2E_CRASH_CASES", "200"))
CRASHES_EACH = 3  # kills per crash point
CRASH_ON = "10"  # the n-th provider request of a crashing worker
# The workers' own reconcilers leave a killed worker's `dialing` attempts alone during the
# run (the send window, HTTP timeout and this margin: over ten minutes), so the test's
# look-up below finds them all; their reserved ones wait for their 5-minute leases.
LATE_RECLAIM = {"DIALER_RECLAIM_MARGIN_SECONDS": "600"}


async def test_workers_killed_mid_dispatch_dial_nothing_twice_and_lose_nothing(
    e2e: E2E, record_property: Callable[[str, object], None]
) -> None:
    await e2e.seed(CASES, case_cap=1)
    campaign = await e2e.campaign("morning", channels=("voice",), cps=100)
    await e2e.plan_here(campaign)
    # Each crash point in its own process; a replacement comes up after each kill (as a
    # supervisor would restart it) until each point was hit CRASHES_EACH times; then two
    # plain workers finish the campaign.
    kinds = {"after_reserve": 0, "after_provider": 0}
    crashing: dict[int, str] = {}

    def spawn_crashing(kind: str) -> None:
        proc = e2e.spawn(DIALER_TEST_CRASH_AT=kind, DIALER_TEST_CRASH_ON=CRASH_ON, **LATE_RECLAIM)
        crashing[proc.pid] = kind

    for kind in kinds:
        spawn_crashing(kind)

    async def supervise() -> None:
        for proc in e2e.reap_crashed():
            kind = crashing.pop(proc.pid)
            kinds[kind] += 1
            if kinds[kind] < CRASHES_EACH:
                spawn_crashing(kind)
            elif not crashing:
                e2e.spawn(**LATE_RECLAIM)
                e2e.spawn(**LATE_RECLAIM)

    await e2e.wait_until(
        lambda: e2e.quiet("planned", "queued"),
        within=240,
        what="every job to be handled",
        tick=supervise,
    )
    await supervise()
    # A relay killed between the broker's confirm and its commit publishes its batch
    # again (at least once): those copies must find their attempts handled, and do.
    await e2e.wait_until(e2e.queue_drained, within=120, what="the queue to drain")
    await e2e.stop_workers()
    assert kinds == {"after_reserve": CRASHES_EACH, "after_provider": CRASHES_EACH}

    before = await e2e.counts()
    # A killed worker's attempts are visible, not lost: reserved (not yet fenced: its lease
    # runs out) or dialing (fenced: looked up once the HTTP timeout and a margin passed).
    held = before.get("reserved", 0) + before.get("dialing", 0)
    assert held >= 2 * CRASHES_EACH, dict(before)
    # Calls found never placed are planned again (the campaign still runs): a worker
    # places them now, each once, within the case's cap.
    moved, replanned = await e2e.reconcile_then_dispatch()
    assert replanned == moved.get("not_sent", 0)
    figures = await e2e.check(Figures("crashes", cases=CASES), case_cap=1)
    figures.extra["reserved_before_reconcile"] = before.get("reserved", 0)
    figures.extra["dialing_before_reconcile"] = before.get("dialing", 0)
    figures.extra["reconciled"] = sum(moved.values())
    figures.extra["reconciled_sent"] = moved.get("sent", 0)
    figures.extra["reconciled_not_sent"] = moved.get("not_sent", 0)
    figures.print(record_property)

    assert not figures.violations, figures.violations[:10]
    assert figures.crashes_injected == 2 * CRASHES_EACH
    assert figures.jobs == CASES + replanned
    assert sum(moved.values()) == held
    # Killed after Twilio answered: the call exists, found by the reconciler, not redialled.
    assert moved.get("sent", 0) >= CRASHES_EACH
    # Killed before the request left: nothing at Twilio, so not_sent (final), and a
    # fresh attempt placed in its stead: nothing lost.
    assert moved.get("not_sent", 0) >= CRASHES_EACH
    assert figures.states.get("not_sent", 0) == moved.get("not_sent", 0)
    assert figures.provider_calls == figures.states.get("sent", 0)
