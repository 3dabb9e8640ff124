"""`dialer worker` for the end-to-end tests: the production `Runtime` (consumer, outbox
relay, planner, reconciler) on PostgreSQL and RabbitMQ from `DIALER_*` settings, with four
test-only seams that production code knows nothing about:

- `DIALER_TEST_TWILIO_URL`: the real `TwilioTelephony`, its httpx transport sending what
  would go to https://api.twilio.com to the local mock instead (the request is unchanged
  otherwise: the same form, auth and paths).
- `DIALER_TEST_CLOCK_START` (ISO instant) + `DIALER_TEST_CLOCK_T0` (epoch seconds): the
  clock reads START + (wall time - T0), the same in every process, so the campaign runs
  inside its calling window whatever the real hour.
- `DIALER_TEST_DUPLICATE_PUBLISH=1`: every job the relay publishes goes to the broker
  twice (duplicates injected at the queue level); `DIALER_TEST_STATS` names a file that
  gets one line per published batch ("published <n> duplicated <n>").
- every handled job: when the handler returns (the ack follows), the attempt's state is
  written to the stats file, so the test can show no job was acked before its attempt
  was recorded.
- `DIALER_TEST_CRASH_AT=after_reserve|after_provider` + `DIALER_TEST_CRASH_ON=<n>`: the
  process SIGKILLs itself on its n-th provider request, just before it is sent (the
  attempt is reserved and committed) or just after Twilio answered (nothing recorded).

Run: `python -m tests.e2e.worker_main`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from adapters import sendby
from adapters.ports import (
    CallInfo,
    CallRequest,
    Delivery,
    Job,
    MessageInfo,
    ProviderRef,
    SmsRequest,
    Telephony,
)
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from adapters.twilio import TwilioSettings, TwilioTelephony
from adapters.twilio_client import HttpxTwilioClient
from dialer.core.settings import Settings
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.db.models import AttemptRow
from dialer.dispatch.runtime import Runtime, queue_url, worker_config
from dialer.dispatch.worker import Dispatcher

BUCKETS = (1, 5, 30)  # the delay queues (seconds): short, the runs last minutes


def shifted_clock(start: datetime, t0: float) -> Callable[[], datetime]:
    def clock() -> datetime:
        return start + timedelta(seconds=time.time() - t0)

    return clock


class RedirectTransport(httpx.AsyncBaseTransport):
    """Sends every request to `base` (scheme, host, port), path and query unchanged."""

    def __init__(self, base: str) -> None:
        self._base = httpx.URL(base)
        self._inner = sendby.transport()  # production's connections (`adapters.sendby`)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        request.headers["Host"] = f"{self._base.host}:{self._base.port}"
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class DuplicatingQueue(RabbitJobQueue):
    def __init__(self, *args: object, stats: str | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._stats = stats

    async def publish(self, jobs: Sequence[Job]) -> None:
        await super().publish([*jobs, *jobs])
        if self._stats:
            with open(self._stats, "a") as f:  # noqa: ASYNC230 - one short line, test-only
                f.write(f"published {len(jobs)} duplicated {len(jobs)}\n")


class CrashingTelephony(Telephony):
    """Delegates to the real adapter; SIGKILLs this process on the n-th create."""

    def __init__(self, inner: Telephony, at: str, on: int) -> None:
        self.inner, self.at, self.on, self.seen = inner, at, on, 0

    def _before(self) -> int:
        self.seen += 1
        if self.seen == self.on and self.at == "after_reserve":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.seen

    def _after(self, nth: int) -> None:
        if nth == self.on and self.at == "after_provider":
            os.kill(os.getpid(), signal.SIGKILL)

    async def place_call(self, request: CallRequest) -> ProviderRef:
        nth = self._before()
        ref = await self.inner.place_call(request)
        self._after(nth)
        return ref

    async def send_sms(self, request: SmsRequest) -> ProviderRef:
        nth = self._before()
        ref = await self.inner.send_sms(request)
        self._after(nth)
        return ref

    async def fetch_call(self, sid: str) -> CallInfo:
        return await self.inner.fetch_call(sid)

    async def fetch_message(self, sid: str) -> MessageInfo:
        return await self.inner.fetch_message(sid)

    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        return await self.inner.find_calls(to, after)

    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        return await self.inner.find_messages(to, after)

    async def close(self) -> None:
        await self.inner.close()


class CheckedDispatcher(Dispatcher):
    """The real handler; when it returns (the queue acks next) it checks that the job's
    attempt is recorded, i.e. no longer planned or queued (invariant 6), and notes each
    check in the stats file ("acked <state>")."""

    stats: str | None = None

    async def __call__(self, delivery: Delivery) -> None:
        await super().__call__(delivery)
        try:
            async with self.maker() as session:
                state = await session.scalar(
                    select(AttemptRow.state).where(
                        AttemptRow.id == uuid.UUID(delivery.job.attempt_id)
                    )
                )
        except Exception:  # any driver error while the database is down: a check
            state = "unchecked"  # must never turn a handled job into a failed one
        if self.stats:
            with open(self.stats, "a") as f:  # noqa: ASYNC230 - one short line, test-only
                f.write(f"acked {state} {delivery.job.attempt_id}\n")


class CheckedRuntime(Runtime):
    def dispatcher(self) -> Dispatcher:
        handler = CheckedDispatcher(
            self.maker,
            self.telephony,
            self.mailer,
            self.clock,
            config=worker_config(self.settings),
            metrics=self.metrics,
        )
        handler.stats = os.environ.get("DIALER_TEST_STATS")
        return handler


def mock_telephony(settings: Settings, mock_url: str) -> TwilioTelephony:
    """As `dialer.dispatch.runtime.build_telephony` builds it (the HTTP timeout from the settings,
    creates retried by the worker on its pacing), its transport sent to the mock."""
    http = httpx.AsyncClient(
        transport=RedirectTransport(mock_url), timeout=settings.twilio_http_timeout_seconds
    )
    return TwilioTelephony(
        TwilioSettings(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            public_base_url=settings.public_base_url,
            default_sms_from=settings.twilio_from_number,
            max_retry_wait=5.0,
            retry_creates=False,
        ),
        http_client=HttpxTwilioClient(http),
    )


async def main() -> None:
    env = os.environ
    settings = Settings()
    start = datetime.fromisoformat(env["DIALER_TEST_CLOCK_START"]).astimezone(UTC)
    clock = shifted_clock(start, float(env["DIALER_TEST_CLOCK_T0"]))
    url = queue_url(settings)
    assert url, "the end-to-end worker runs on RabbitMQ"
    rabbit = RabbitSettings(
        url=url,
        namespace=settings.queue_namespace,
        delivery_limit=settings.queue_delivery_limit,
        delay_buckets=BUCKETS,
        reconnect_interval=0.5,
        heartbeat=5,
    )
    queue: RabbitJobQueue = (
        DuplicatingQueue(rabbit, clock=clock, stats=env.get("DIALER_TEST_STATS"))
        if env.get("DIALER_TEST_DUPLICATE_PUBLISH") == "1"
        else RabbitJobQueue(rabbit, clock=clock)
    )
    telephony: Telephony = mock_telephony(settings, env["DIALER_TEST_TWILIO_URL"])
    if env.get("DIALER_TEST_CRASH_AT"):
        telephony = CrashingTelephony(
            telephony, env["DIALER_TEST_CRASH_AT"], int(env.get("DIALER_TEST_CRASH_ON", "1"))
        )
    engine = build_engine(settings)
    maker = build_sessionmaker(engine)
    runtime = CheckedRuntime(settings, engine, maker, queue, telephony, None, clock)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.stop.set)
    try:
        await runtime.run(settings.worker_concurrency)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(main())
