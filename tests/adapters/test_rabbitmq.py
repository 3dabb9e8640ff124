"""The RabbitMQ queue against a real broker: confirms, dead letters, delays, a dropped link,
bundles (several jobs a message, one `Delivery` each, settled together; old single-job
messages still consumed).

Each test declares its own namespace of queues and deletes it afterwards. Waiting here is
waiting for the broker (TTL delay queues, reconnects), polled, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.message import IncomingMessage

from adapters.errors import PermanentJobError, QueueError, RetryLater
from adapters.ports import DeadLetter, Delivery, Job
from adapters.rabbitmq import (
    BUNDLE_CONTENT_TYPE,
    JOB_CONTENT_TYPE,
    RETRIES_HEADER,
    Item,
    RabbitJobQueue,
    RabbitSettings,
    pick_delay_bucket,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def job(attempt_id: str, not_before: datetime = T0) -> Job:
    return Job(attempt_id, "case-1", "camp-1", not_before, {"channel": "voice"})


async def wait_until(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Poll for an effect of the broker (delays, redeliveries); fail after `within` s."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the broker sets no event of ours
            await asyncio.sleep(0.05)


QueueFactory = Callable[..., Awaitable[RabbitJobQueue]]


@pytest.fixture
async def make_queue(rabbit_url: str) -> AsyncIterator[QueueFactory]:
    """Queues under a fresh namespace; the topology is deleted after the test."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    made: list[RabbitJobQueue] = []

    async def make(**overrides: object) -> RabbitJobQueue:
        settings = RabbitSettings(
            url=rabbit_url,
            namespace=namespace,
            delay_buckets=(1, 5),
            reconnect_interval=0.5,
            heartbeat=5,
            **overrides,  # type: ignore[arg-type]
        )
        queue = RabbitJobQueue(settings)
        await queue.connect()
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.close()
    if made:
        await made[0].delete_topology()


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.at: list[datetime] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.at.append(datetime.now(UTC))

    def ids(self) -> list[str]:
        return [d.job.attempt_id for d in self.deliveries]


@pytest.mark.rabbitmq
async def test_published_jobs_are_confirmed_then_each_consumed_once(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()
    await queue.publish([job(f"a{i}") for i in range(300)])  # two confirm batches
    await queue.consume(record, concurrency=8)
    await wait_until(lambda: len(record.deliveries) == 300)
    await asyncio.sleep(0.2)  # let any duplicate show up
    assert sorted(record.ids()) == sorted(f"a{i}" for i in range(300))
    assert not any(d.redelivered for d in record.deliveries)
    assert record.deliveries[0].job.payload == {"channel": "voice"}


@pytest.mark.rabbitmq
async def test_unroutable_publish_is_a_queue_error_not_a_silent_loss(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    channel = await queue._require_channel()
    await channel.queue_delete(queue.work_queue_name)  # nothing bound: the broker returns it
    with pytest.raises(QueueError):
        await queue.publish([job("lost")])


@pytest.mark.rabbitmq
async def test_poison_job_reaches_the_dead_letter_queue_after_the_delivery_limit(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue(delivery_limit=2)
    deliveries: list[Delivery] = []

    async def crash(delivery: Delivery) -> None:
        deliveries.append(delivery)
        raise RuntimeError("poison")

    await queue.publish([job("poison")])
    await queue.consume(crash, concurrency=1)
    await wait_until(lambda: len(deliveries) == 3)
    letters: list[DeadLetter] = []

    async def has_dead_letter() -> None:
        while not letters:
            letters.extend(await queue.dead_letters())
            await asyncio.sleep(0.05)

    async with asyncio.timeout(10):
        await has_dead_letter()
    assert [(d.redelivered, d.delivery_count) for d in deliveries] == [
        (False, 1),
        (True, 2),
        (True, 3),
    ]
    assert [(dl.message_id, dl.reason) for dl in letters] == [("poison", "delivery_limit")]
    assert letters[0].job == job("poison")


@pytest.mark.rabbitmq
async def test_permanent_job_error_dead_letters_without_redelivery(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    calls: list[str] = []

    async def refuse(delivery: Delivery) -> None:
        calls.append(delivery.job.attempt_id)
        raise PermanentJobError("case closed")

    await queue.publish([job("closed")])
    await queue.consume(refuse, concurrency=1)
    await wait_until(lambda: len(calls) == 1)
    letters: list[DeadLetter] = []
    async with asyncio.timeout(10):
        while not letters:
            letters = await queue.dead_letters()
    assert calls == ["closed"]
    assert [(dl.message_id, dl.reason) for dl in letters] == [("closed", "rejected")]


@pytest.mark.rabbitmq
async def test_retry_later_comes_back_through_the_delay_queue_after_the_delay(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()

    async def retry_once(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.retries == 0:
            raise RetryLater(timedelta(seconds=1))

    await queue.publish([job("busy")])
    await queue.consume(retry_once, concurrency=1)
    await wait_until(lambda: len(record.deliveries) == 2)
    assert [d.retries for d in record.deliveries] == [0, 1]
    assert not record.deliveries[1].redelivered  # a fresh message, not a redelivery
    assert record.at[1] - record.at[0] >= timedelta(seconds=1)
    assert record.deliveries[1].job.not_before >= record.at[0] + timedelta(seconds=0.9)


@pytest.mark.rabbitmq
async def test_future_job_is_not_handed_over_before_its_not_before(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()
    not_before = datetime.now(UTC) + timedelta(seconds=1.5)  # hops 1 s, then 1 s again
    await queue.publish([job("later", not_before), job("now", T0)])
    await queue.consume(record, concurrency=2)
    await wait_until(lambda: len(record.deliveries) == 2)
    assert record.ids() == ["now", "later"]
    assert record.at[1] >= not_before


async def drop_connection(queue: RabbitJobQueue) -> None:
    """Have the broker kill our connection (rabbitmqctl), else cut it from our side."""
    name = f"{queue.settings.namespace}-"
    if shutil.which("rabbitmqctl"):
        listing = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "list_connections", "pid", "client_properties",
            "--no-table-headers", "-q",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await listing.communicate()
        pids = [line.split("\t")[0] for line in out.decode().splitlines() if name in line]
        for pid in pids:
            kill = await asyncio.create_subprocess_exec(
                "rabbitmqctl", "close_connection", pid, "dropped by test",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await kill.wait()
        if pids and listing.returncode == 0:
            return
    connection = queue._connection
    assert connection is not None and connection.transport is not None
    await connection.transport.connection.close(ConnectionResetError("dropped by test"))


@pytest.mark.rabbitmq
async def test_dropped_connection_loses_nothing_and_repeats_only_flagged_deliveries(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()
    blocked = 0
    gate = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        nonlocal blocked
        if not gate.is_set():  # hold the first prefetch-full of jobs across the drop
            blocked += 1
            await gate.wait()
        await record(delivery)

    first = [job(f"b{i}") for i in range(100)]
    await queue.publish(first)
    await queue.consume(handler, concurrency=10)
    await wait_until(lambda: blocked == 10)
    await drop_connection(queue)

    # The outbox's part: publish the rest, again if the broker did not confirm a batch.
    rest = [job(f"b{i}") for i in range(100, 200)]
    async with asyncio.timeout(30):
        while True:
            try:
                await queue.publish(rest)
                break
            except QueueError:
                await asyncio.sleep(0.2)
    await wait_until(lambda: queue.reconnections >= 1)
    gate.set()  # the held handlers finish now; their acks go to a dead channel

    expected = {j.attempt_id for j in first + rest}
    await wait_until(lambda: expected <= set(record.ids()), within=40)
    await asyncio.sleep(0.3)  # let any straggling duplicate arrive before judging
    assert queue.is_connected()
    repeated = [d for d in record.deliveries if record.ids().count(d.job.attempt_id) > 1]
    assert len({d.job.attempt_id for d in repeated}) >= 10  # the held ones came back
    seen: set[str] = set()
    for delivery in record.deliveries:
        attempt = delivery.job.attempt_id
        if attempt in seen:  # handed over again: only ever with the redelivered flag
            assert delivery.redelivered, attempt
        seen.add(attempt)


@pytest.mark.rabbitmq
async def test_dead_letters_are_listed_without_removal_and_replayed_on_demand(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    done: list[str] = []
    failing = True

    async def handler(delivery: Delivery) -> None:
        if failing:
            raise PermanentJobError("provider down")
        done.append(delivery.job.attempt_id)

    await queue.publish([job("x"), job("y"), job("z")])
    await queue.consume(handler, concurrency=3)
    letters: list[DeadLetter] = []
    async with asyncio.timeout(10):
        while len(letters) < 3:
            letters = await queue.dead_letters()
    assert sorted(dl.message_id for dl in letters) == ["x", "y", "z"]
    again = await queue.dead_letters(limit=2)  # browsing left them all in place
    assert len(again) == 2
    assert len(await queue.dead_letters()) == 3

    failing = False
    assert await queue.replay_dead_letters(["y"]) == 1
    await wait_until(lambda: done == ["y"])
    assert sorted(dl.message_id for dl in await queue.dead_letters()) == ["x", "z"]

    assert await queue.replay_dead_letters() == 2
    await wait_until(lambda: sorted(done) == ["x", "y", "z"])
    assert await queue.dead_letters() == []


# --- bundles: several jobs a message, one Delivery each, settled together -------------
async def dead_letters(queue: RabbitJobQueue, count: int, within: float = 20) -> list[DeadLetter]:
    """The dead letters once there are `count` of them."""
    letters: list[DeadLetter] = []
    async with asyncio.timeout(within):
        while len(letters) < count:
            letters = await queue.dead_letters()
            await asyncio.sleep(0.05)
    return letters


@pytest.fixture
async def raw(rabbit_url: str) -> AsyncIterator[aio_pika.abc.AbstractConnection]:
    """A plain connection, to play an older worker or one that dies holding a message."""
    connection = await aio_pika.connect(rabbit_url)
    yield connection
    await connection.close()


async def take(
    connection: aio_pika.abc.AbstractConnection, queue: str
) -> tuple[aio_pika.abc.AbstractChannel, AbstractIncomingMessage]:
    channel = await connection.channel()
    q = await channel.get_queue(queue)
    async with asyncio.timeout(10):
        while (message := await q.get(no_ack=False, fail=False)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return channel, message


@pytest.mark.rabbitmq
async def test_a_bundle_of_n_jobs_is_n_deliveries_acked_once_all_are_done(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await make_queue(bundle_size=10)
    await queue.publish([job(f"a{i}") for i in range(25)])  # three messages
    done: set[str] = set()
    acks: list[tuple[str | None, list[str], set[str]]] = []
    original_ack = IncomingMessage.ack

    async def spy_ack(self: IncomingMessage, multiple: bool = False) -> None:
        ids = [d["attempt_id"] for d in json.loads(self.body)["jobs"]]
        acks.append((self.content_type, ids, set(done)))
        await original_ack(self, multiple)

    monkeypatch.setattr(IncomingMessage, "ack", spy_ack)
    gate = asyncio.Event()
    deliveries: list[Delivery] = []

    async def handler(delivery: Delivery) -> None:
        deliveries.append(delivery)
        if delivery.job.attempt_id == "a3":
            await gate.wait()
        done.add(delivery.job.attempt_id)

    await queue.consume(handler, concurrency=30)
    await wait_until(lambda: len(done) == 24)
    await asyncio.sleep(0.3)
    assert len(acks) == 2  # the bundle holding a3 waits for it
    assert all("a3" not in ids for _, ids, _ in acks)
    gate.set()
    await wait_until(lambda: len(acks) == 3)
    await asyncio.sleep(0.3)
    assert sorted(len(ids) for _, ids, _ in acks) == [7, 9, 9]  # as even as can be
    for content_type, ids, finished in acks:
        assert content_type == BUNDLE_CONTENT_TYPE
        assert set(ids) <= finished  # acked only after every one of its jobs
    assert sorted(d.job.attempt_id for d in deliveries) == sorted(f"a{i}" for i in range(25))
    assert {(d.redelivered, d.delivery_count, d.retries) for d in deliveries} == {(False, 1, 0)}
    assert deliveries[0].job == job(deliveries[0].job.attempt_id)


@pytest.mark.rabbitmq
async def test_retry_later_on_one_job_of_a_bundle_delays_only_that_job(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()

    async def handler(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.job.attempt_id == "r" and delivery.retries == 0:
            raise RetryLater(timedelta(seconds=1))

    await queue.publish([job("a"), job("r"), job("b")])
    await queue.consume(handler, concurrency=3)
    await wait_until(lambda: len(record.deliveries) == 4)
    await asyncio.sleep(0.3)
    assert Counter(record.ids()) == {"a": 1, "b": 1, "r": 2}
    first, second = (i for i, d in enumerate(record.deliveries) if d.job.attempt_id == "r")
    assert record.deliveries[second].retries == 1
    assert not record.deliveries[second].redelivered
    assert record.at[second] - record.at[first] >= timedelta(seconds=1)
    assert await queue.dead_letters() == []


@pytest.mark.rabbitmq
async def test_permanent_error_on_one_job_of_a_bundle_dead_letters_only_it(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue()
    record = Recorder()

    async def handler(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.job.attempt_id == "p":
            raise PermanentJobError("case closed")

    await queue.publish([job("a"), job("p"), job("b")])
    await queue.consume(handler, concurrency=3)
    letters = await dead_letters(queue, 1)
    await asyncio.sleep(0.3)
    assert [(dl.message_id, dl.reason) for dl in letters] == [("p", "rejected")]
    assert letters[0].job == job("p") and letters[0].died_at is not None
    assert sorted(record.ids()) == ["a", "b", "p"]  # each once


@pytest.mark.rabbitmq
async def test_a_failing_job_of_a_bundle_alone_is_redelivered_then_dead_lettered(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue(delivery_limit=2)
    record = Recorder()

    async def handler(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.job.attempt_id == "bad":
            raise RuntimeError("poison")

    await queue.publish([job("a"), job("bad"), job("b")])
    await queue.consume(handler, concurrency=3)
    letters = await dead_letters(queue, 1)
    await asyncio.sleep(0.3)
    bad = [d for d in record.deliveries if d.job.attempt_id == "bad"]
    # as for a job alone in its message (limit 2: three deliveries, then dead)
    assert [(d.redelivered, d.delivery_count) for d in bad] == [(False, 1), (True, 2), (True, 3)]
    assert Counter(record.ids()) == {"a": 1, "b": 1, "bad": 3}
    assert [(dl.message_id, dl.reason) for dl in letters] == [("bad", "delivery_limit")]
    assert letters[0].job == job("bad")


@pytest.mark.rabbitmq
async def test_a_bundle_delivered_again_is_split_and_a_poison_job_dies_alone(
    make_queue: QueueFactory, raw: aio_pika.abc.AbstractConnection
) -> None:
    queue = await make_queue(delivery_limit=2)
    await queue.publish([job("a"), job("poison"), job("b")])
    channel, held = await take(raw, queue.work_queue_name)  # a worker takes it, then dies
    assert held.content_type == BUNDLE_CONTENT_TYPE
    await channel.close()
    record = Recorder()

    async def handler(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.job.attempt_id == "poison":
            raise RuntimeError("poison")

    await queue.consume(handler, concurrency=3)
    letters = await dead_letters(queue, 1)
    await asyncio.sleep(0.3)
    assert Counter(record.ids()) == {"a": 1, "b": 1, "poison": 2}
    assert all(d.redelivered for d in record.deliveries)  # the first delivery may have acted
    poison = [d.delivery_count for d in record.deliveries if d.job.attempt_id == "poison"]
    assert poison == [2, 3]  # the bundle's delivery counts against the limit
    assert [(dl.message_id, dl.reason) for dl in letters] == [("poison", "delivery_limit")]


@pytest.mark.rabbitmq
async def test_a_dead_lettered_bundle_is_listed_per_job_and_partly_replayed(
    make_queue: QueueFactory, raw: aio_pika.abc.AbstractConnection
) -> None:
    queue = await make_queue()
    await queue.publish([job("x"), job("y"), job("z")])
    channel, held = await take(raw, queue.work_queue_name)  # an older worker rejects it
    await held.reject(requeue=False)
    await channel.close()
    letters = await dead_letters(queue, 3)
    assert [(dl.message_id, dl.reason) for dl in letters] == [
        ("x", "rejected"),
        ("y", "rejected"),
        ("z", "rejected"),
    ]
    assert letters[1].job == job("y") and letters[1].died_at is not None
    assert len(await queue.dead_letters(limit=2)) == 2

    record = Recorder()
    await queue.consume(record, concurrency=3)
    assert await queue.replay_dead_letters(["y"]) == 1
    await wait_until(lambda: record.ids() == ["y"])
    kept = await queue.dead_letters()
    assert [(dl.message_id, dl.reason) for dl in kept] == [("x", "rejected"), ("z", "rejected")]
    assert kept[0].died_at == letters[0].died_at

    assert await queue.replay_dead_letters() == 2
    await wait_until(lambda: sorted(record.ids()) == ["x", "y", "z"])
    await asyncio.sleep(0.3)
    assert sorted(record.ids()) == ["x", "y", "z"]
    assert await queue.dead_letters() == []


@pytest.mark.rabbitmq
async def test_single_job_messages_of_the_old_format_are_still_consumed(
    make_queue: QueueFactory, raw: aio_pika.abc.AbstractConnection
) -> None:
    single = await make_queue(bundle_size=1)  # one job a message: the old format
    await single.publish([job("one")])
    channel, message = await take(raw, single.work_queue_name)
    assert message.content_type == JOB_CONTENT_TYPE
    assert message.body == job("one").to_json()
    assert message.message_id == "one"
    assert (message.headers or {}).get(RETRIES_HEADER) == 0
    await message.ack()

    # as the previous version published it, already in the queue
    old = aio_pika.Message(
        job("old").to_json(),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id="old",
        content_type="application/json",
        headers={RETRIES_HEADER: 2},
        timestamp=datetime.now(UTC),
    )
    exchange = await channel.get_exchange(single.work_exchange_name)
    await exchange.publish(old, "job")
    await channel.close()
    bundled = await make_queue()  # bundle_size 100, same namespace
    record = Recorder()
    await bundled.consume(record, concurrency=4)
    await wait_until(lambda: len(record.deliveries) == 1)
    delivered = record.deliveries[0]
    assert delivered.job == job("old")
    assert (delivered.retries, delivered.redelivered, delivered.delivery_count) == (2, False, 1)


@pytest.mark.rabbitmq
async def test_the_concurrency_limit_holds_across_bundles(make_queue: QueueFactory) -> None:
    queue = await make_queue(bundle_size=5)
    assert queue.prefetch(7) == 3  # two bundles fill 7 handlers, one more waits ready
    running = peak = 0
    done: list[str] = []

    async def handler(delivery: Delivery) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done.append(delivery.job.attempt_id)

    await queue.publish([job(f"c{i}") for i in range(40)])
    await queue.consume(handler, concurrency=7)
    await wait_until(lambda: len(done) == 40)
    assert peak == 7  # more than one bundle's 5 at a time, never more than the limit
    assert sorted(done) == sorted(f"c{i}" for i in range(40))


@pytest.mark.rabbitmq
async def test_a_bundle_whose_retry_is_not_confirmed_comes_back_split(
    make_queue: QueueFactory,
) -> None:
    queue = await make_queue(delivery_limit=2)
    channel = await queue._require_channel()
    await channel.queue_delete(queue.delay_queue_name(1))  # a retry of 1 s: unroutable
    record = Recorder()

    async def handler(delivery: Delivery) -> None:
        await record(delivery)
        if delivery.job.attempt_id == "r":
            raise RetryLater(timedelta(seconds=1))

    await queue.publish([job("a"), job("r")])
    await queue.consume(handler, concurrency=2)
    letters = await dead_letters(queue, 1)
    await asyncio.sleep(0.3)
    # the bundle was nacked, then split: "a" comes back alone, flagged, and is done with
    assert [d.redelivered for d in record.deliveries if d.job.attempt_id == "a"] == [False, True]
    # "r" alone is requeued each time its retry is refused, until the delivery limit
    r = [(d.redelivered, d.delivery_count) for d in record.deliveries if d.job.attempt_id == "r"]
    assert r == [(False, 1), (True, 2), (True, 3), (True, 4)]
    assert [(dl.message_id, dl.reason) for dl in letters] == [("r", "delivery_limit")]


@pytest.mark.rabbitmq
async def test_closing_lets_the_bundles_held_finish_every_job_then_acks_them(
    make_queue: QueueFactory,
) -> None:
    first = await make_queue()
    await first.publish([job(f"s{i}") for i in range(6)])
    gate = asyncio.Event()
    done: list[str] = []

    async def slow(delivery: Delivery) -> None:
        await gate.wait()
        done.append(delivery.job.attempt_id)

    await first.consume(slow, concurrency=2)
    await asyncio.sleep(0.3)
    closing = asyncio.create_task(first.close())
    await asyncio.sleep(0.2)
    gate.set()
    await closing
    assert sorted(done) == sorted(f"s{i}" for i in range(6))  # the four waiting ones too

    record = Recorder()
    second = await make_queue()
    await second.consume(record, concurrency=6)
    await asyncio.sleep(1.0)
    assert record.deliveries == []  # acked: nothing comes back


@pytest.mark.parametrize(
    ("bundle_size", "override", "concurrency", "expected"),
    [(100, None, 64, 2), (10, None, 64, 8), (100, None, 1, 1), (1, None, 64, 64), (100, 5, 64, 5)],
)
def test_the_prefetch_holds_enough_bundles_to_fill_the_concurrency_and_one_more(
    bundle_size: int, override: int | None, concurrency: int, expected: int
) -> None:
    settings = RabbitSettings(bundle_size=bundle_size, prefetch=override)
    assert RabbitJobQueue(settings).prefetch(concurrency) == expected


@pytest.mark.rabbitmq
async def test_malformed_bundles_are_dead_lettered_and_never_stall_the_consumer(
    make_queue: QueueFactory, raw: aio_pika.abc.AbstractConnection
) -> None:
    queue = await make_queue(bundle_size=10)  # prefetch 2 for a concurrency of 4
    channel = await raw.channel()
    exchange = await channel.get_exchange(queue.work_exchange_name)
    bodies = [{"v": 1, "jobs": 5}, {"v": 1, "jobs": [{"v": 1}]}, {"v": 1, "jobs": [7]}]
    for i, body in enumerate(bodies):  # each fills a prefetch slot if left unsettled
        bad = aio_pika.Message(
            json.dumps(body).encode(), content_type=BUNDLE_CONTENT_TYPE, message_id=f"bad{i}"
        )
        await exchange.publish(bad, "job")
    await channel.close()
    await queue.publish([job(f"g{i}") for i in range(30)])
    record = Recorder()
    await queue.consume(record, concurrency=4)
    await wait_until(lambda: len(record.deliveries) == 30)
    letters = await dead_letters(queue, 3)
    assert sorted(d.message_id for d in letters) == ["bad0", "bad1", "bad2"]
    assert all(d.job is None and d.reason == "rejected" for d in letters)
    assert sorted(record.ids()) == sorted(f"g{i}" for i in range(30))


@pytest.mark.rabbitmq
async def test_delayed_bundles_never_hand_a_job_over_early(make_queue: QueueFactory) -> None:
    queue = await make_queue()  # buckets 1 s and 5 s
    record = Recorder()
    now = datetime.now(UTC)
    waits = {"w05": 0.5, "w13": 1.3, "w16": 1.6, "w22": 2.2, "w00": 0.0}
    due = {name: now + timedelta(seconds=s) for name, s in waits.items()}
    await queue.publish([job(name, at) for name, at in due.items()])
    await queue.consume(record, concurrency=4)
    await wait_until(lambda: len(record.deliveries) == 5)
    await asyncio.sleep(0.3)
    assert sorted(record.ids()) == sorted(waits)
    for delivery, at in zip(record.deliveries, record.at, strict=True):
        assert at >= due[delivery.job.attempt_id], delivery.job.attempt_id
        assert not delivery.redelivered and delivery.retries == 0
    assert record.ids()[0] == "w00"


def test_publish_groups_jobs_by_destination_in_even_bundles_never_early() -> None:
    now = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    queue = RabbitJobQueue(
        RabbitSettings(delay_buckets=(1, 5, 30), bundle_size=4), clock=lambda: now
    )
    work, delay = object(), object()
    queue._work_exchange, queue._delay_exchange = work, delay  # type: ignore[assignment]
    waits = [0, -3, 0, 0, 0, 0.5, 2, 4.9, 7, 29, 31, 40, 0]  # seconds
    jobs = [job(f"j{i}", now + timedelta(seconds=w)) for i, w in enumerate(waits)]
    routed = queue.routed([Item(j) for j in jobs])
    seen: list[str] = []
    layout: list[tuple[str, int]] = []
    for exchange, key, message in routed:
        body = json.loads(message.body)
        docs = body["jobs"] if message.content_type == BUNDLE_CONTENT_TYPE else [body]
        bucket = 0 if exchange is work else int(key.rstrip("s"))
        assert exchange is (work if bucket == 0 else delay)
        for doc in docs:  # no job waits in a bucket longer than its own wait
            wait = (datetime.fromisoformat(doc["not_before"]) - now).total_seconds()
            assert bucket <= max(wait, 1 if bucket else 0)
            seen.append(doc["attempt_id"])
        layout.append((key, len(docs)))
    assert sorted(seen) == sorted(j.attempt_id for j in jobs)
    # six due now: 3 + 3 rather than 4 + 2; a group of one is a single-job message
    assert sorted(layout) == [("1s", 3), ("30s", 2), ("5s", 2), ("job", 3), ("job", 3)]
    singles = [m for _, _, m in routed if m.content_type == JOB_CONTENT_TYPE]
    assert singles == []
    one = queue.routed([Item(jobs[8], retries=2)])
    assert [(k, m.content_type, m.body) for _, k, m in one] == [
        ("5s", JOB_CONTENT_TYPE, jobs[8].to_json())
    ]
    assert one[0][2].headers == {RETRIES_HEADER: 2}


@pytest.mark.parametrize(
    ("wait", "bucket"),
    [(0.2, 1), (1, 1), (4.9, 1), (5, 5), (29, 5), (7200, 3600), (40, 30)],
)
def test_delay_bucket_is_the_longest_not_longer_than_the_wait(wait: float, bucket: int) -> None:
    buckets = (1, 5, 30, 120, 600, 3600)
    assert pick_delay_bucket(timedelta(seconds=wait), buckets) == bucket


async def test_unreachable_broker_fails_after_bounded_connection_attempts() -> None:
    queue = RabbitJobQueue(
        RabbitSettings(
            url="amqp://guest:guest@127.0.0.1:1/", connect_attempts=2, connect_backoff=0.01
        )
    )
    with pytest.raises(QueueError, match="unreachable"):
        await queue.connect()
