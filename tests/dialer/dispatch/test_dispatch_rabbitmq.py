"""Dispatch through the real RabbitMQ: plan -> outbox -> broker -> worker -> provider, with
every job published twice, and with the broker connection dropped mid-run.

The engine decides on a clock that starts inside the campaign's window (Tuesday 10:00 in
Shanghai) and runs at wall-clock speed, so jobs are due at once whatever the real hour;
waiting here is polling for the broker, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from adapters.errors import QueueError
from adapters.ports import Delivery, Job
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from dialer.dispatch import outbox, planner
from tests.adapters.test_rabbitmq import drop_connection
from tests.broker import RABBIT_URL, probe
from tests.databases import Database
from tests.dialer.dispatch_world import INSIDE, World, open_world

pytestmark = pytest.mark.rabbitmq


class RunningClock:
    """INSIDE, moving forward with the wall clock."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def __call__(self) -> datetime:
        return INSIDE + timedelta(seconds=time.monotonic() - self._t0)


async def wait_until(condition: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not await condition():  # noqa: ASYNC110 - the broker sets no event of ours
            await asyncio.sleep(0.1)


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with open_world(database, start=INSIDE) as w:
        yield w


@pytest.fixture
async def rabbit() -> AsyncIterator[RabbitJobQueue]:
    if not await probe():
        message = f"RabbitMQ is not reachable at {RABBIT_URL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: RabbitMQ tests are mandatory)")
        pytest.skip(message)
    settings = RabbitSettings(
        url=RABBIT_URL,
        namespace=f"dispatch-{uuid.uuid4().hex[:10]}",
        delay_buckets=(1, 5),
        reconnect_interval=0.5,
        heartbeat=5,
    )
    queue = RabbitJobQueue(settings, clock=RunningClock())
    await queue.connect()
    try:
        yield queue
    finally:
        await queue.close()
        await queue.delete_topology()


async def _all_sent(world: World, n: int) -> bool:
    return len(await world.attempts(state="sent")) == n


async def test_planned_jobs_published_twice_are_dialled_once_each(
    world: World, rabbit: RabbitJobQueue
) -> None:
    clock = RunningClock()
    await world.add_cases(30)
    cid = await world.campaign(window="00:00-24:00", cps=200)
    await planner.plan_campaign(world.maker, cid, clock, queue=rabbit, batch=8)
    await rabbit.publish(world_jobs := [
        Job.from_document(doc) for doc in await _outbox_docs(world)
    ])  # fmt: skip
    assert len(world_jobs) == 30  # the relay "crashed" after the confirm: all again
    await rabbit.consume(world.dispatcher_with_clock(clock), concurrency=8)
    await wait_until(lambda: _all_sent(world, 30))
    await asyncio.sleep(0.5)  # let any duplicate arrive before judging
    assert world.dials() == 30
    sids = [a.provider_sid for a in await world.attempts()]
    assert len(set(sids)) == 30


async def test_dropped_broker_connection_loses_nothing_and_dials_nothing_twice(
    world: World, rabbit: RabbitJobQueue
) -> None:
    clock = RunningClock()
    await world.add_cases(60)
    cid = await world.campaign(window="00:00-24:00", cps=500)
    await planner.plan_campaign(world.maker, cid, clock, batch=20)  # outbox only
    assert await outbox.relay_once(world.maker, rabbit, clock(), limit=30) == 30
    dispatcher = world.dispatcher_with_clock(clock)
    gate = asyncio.Event()
    held = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal held
        await dispatcher(delivery)
        if not gate.is_set():  # dialled and recorded, but not yet acked when the link drops
            held += 1
            await gate.wait()

    await rabbit.consume(handler, concurrency=6)
    async with asyncio.timeout(30):
        while held < 6:  # noqa: ASYNC110 - the broker sets no event of ours
            await asyncio.sleep(0.05)
    await drop_connection(rabbit)
    async with asyncio.timeout(120):  # the relay keeps trying until the broker confirms
        while await _unpublished(world):
            with contextlib.suppress(QueueError):
                await outbox.relay_all(world.maker, rabbit, clock())
            await asyncio.sleep(0.2)
    async with asyncio.timeout(30):
        while rabbit.reconnections < 1:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    gate.set()  # the held handlers finish; their acks die with the old channel
    await wait_until(lambda: _all_sent(world, 60), within=120)
    await asyncio.sleep(1.0)  # the held jobs come back flagged as redelivered
    assert world.dials() == 60, "a redelivered job never dials again"
    assert len({a.provider_sid for a in await world.attempts()}) == 60


async def _unpublished(world: World) -> int:
    async with world.maker() as session:
        return await outbox.pending_count(session)


async def _outbox_docs(world: World) -> list[dict[str, object]]:
    from sqlalchemy import select

    from dialer.db.models import OutboxRow

    async with world.maker() as session:
        return list((await session.scalars(select(OutboxRow.job))).all())
