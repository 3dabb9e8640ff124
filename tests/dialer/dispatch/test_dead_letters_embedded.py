"""The embedded default's dead letters are seen from every process: the worker's
in-process queue keeps them in the database, the API (another process, another queue
object) lists them, and a replay through the API reaches the worker through the outbox."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from adapters.errors import PermanentJobError
from adapters.inprocess import ManualClock
from adapters.ports import Delivery, Job
from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import DeadLetterRow
from dialer.dispatch import outbox
from dialer.dispatch.deadletters import EmbeddedJobQueue
from dialer.dispatch.runtime import build_queue
from tests.dialer.support import NOW, Api


async def test_a_dead_letter_in_the_worker_is_listed_and_replayed_by_the_api(api: Api) -> None:
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    clock = ManualClock(NOW)
    worker_queue = build_queue(api.settings, clock, maker)  # as `dialer worker` builds it
    assert isinstance(worker_queue, EmbeddedJobQueue)
    seen: list[str] = []
    poison = True

    async def handler(delivery: Delivery) -> None:
        seen.append(delivery.job.attempt_id)
        if poison:
            raise PermanentJobError("cannot be handled")

    job = Job(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), NOW)
    try:
        await worker_queue.publish([job])
        assert await worker_queue.drain(NOW, handler) == 1
        h = api.auth(Role.SUPERVISOR)
        listed = (await api.client.get("/v1/dead-letters", headers=h)).json()["items"]
        assert [(d["message_id"], d["reason"]) for d in listed] == [(job.attempt_id, "rejected")]

        poison = False
        r = await api.client.post("/v1/dead-letters/replay", json={}, headers=h)
        assert r.status_code == 200, r.text
        assert (await api.client.get("/v1/dead-letters", headers=h)).json()["items"] == []
        async with maker() as session:
            assert await session.scalar(select(func.count()).select_from(DeadLetterRow)) == 0
        # The worker's relay publishes the replayed job; the worker handles it again.
        assert await outbox.relay_once(maker, worker_queue, NOW + timedelta(seconds=1)) == 1
        assert await worker_queue.drain(NOW + timedelta(seconds=2), handler) == 1
        assert seen == [job.attempt_id, job.attempt_id]
    finally:
        await worker_queue.close()
        await engine.dispose()


async def test_a_dead_letter_is_kept_in_memory_when_the_database_refuses(api: Api) -> None:
    engine = build_engine(api.settings)
    queue = EmbeddedJobQueue(clock=ManualClock(NOW), maker=build_sessionmaker(engine))

    async def refusing(*_: object) -> None:
        raise OSError("database gone")

    queue.keep_dead_letter = refusing  # type: ignore[method-assign]

    async def handler(delivery: Delivery) -> None:
        raise PermanentJobError("poison")

    job = Job(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()), NOW)
    try:
        await queue.publish([job])
        await queue.drain(NOW, handler)
        held = await queue.dead_letters(10)  # this process still holds it: nothing is lost
        assert [(d.message_id, d.reason) for d in held] == [(job.attempt_id, "rejected")]
    finally:
        await queue.close()
        await engine.dispose()
