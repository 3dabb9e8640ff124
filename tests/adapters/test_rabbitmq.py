"""The RabbitMQ queue against a real broker: confirms, dead letters, delays, a dropped link.

Each test declares its own namespace of queues and deletes it afterwards. Waiting here is
waiting for the broker (TTL delay queues, reconnects), polled, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from adapters.errors import PermanentJobError, QueueError, RetryLater
from adapters.ports import DeadLetter, Delivery, Job
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings, pick_delay_bucket

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
