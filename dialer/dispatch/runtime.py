"""The composition root of dispatch: queue, telephony, mailer and the worker's loops, all
built from `Settings`. Building connects nothing; `Runtime.run` starts the loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.ports import JobQueue, Mailer, Telephony
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from adapters.simulator import SimulatedTelephony, SimulatorSettings
from adapters.smtp import SmtpMailer, SmtpSettings
from adapters.twilio import TwilioSettings, TwilioTelephony
from adapters.twilio_client import HttpxTwilioClient
from adapters.unconfigured import WHY as NO_TELEPHONY
from adapters.unconfigured import UnconfiguredTelephony
from dialer.callbacks.apply import reconcile_unmatched
from dialer.core.clock import system_clock
from dialer.core.errors import ConfigurationError
from dialer.core.settings import Settings
from dialer.dispatch import agents, lifecycle, lookups, outbox, planner, reconciler
from dialer.dispatch.context import WorkerConfig
from dialer.dispatch.deadletters import EmbeddedJobQueue
from dialer.dispatch.fence import dialing_reclaim_after
from dialer.dispatch.messages import Sender
from dialer.dispatch.worker import Dispatcher
from dialer.observability.metrics import Metrics

log = logging.getLogger(__name__)


def queue_url(settings: Settings) -> str | None:
    return settings.queue_url or settings.rabbitmq_url


def build_queue(
    settings: Settings,
    clock: Callable[[], datetime] = system_clock,
    maker: async_sessionmaker[AsyncSession] | None = None,
) -> JobQueue:
    """RabbitMQ when a URL is set; otherwise the in-process queue, whose dead letters go to
    the database (once it has a sessionmaker: here, or `bind` later) so that every process
    sees them."""
    url = queue_url(settings)
    if url:
        return RabbitJobQueue(
            RabbitSettings(
                url=url,
                namespace=settings.queue_namespace,
                delivery_limit=settings.queue_delivery_limit,
                bundle_size=settings.queue_bundle_size,
                prefetch=settings.queue_prefetch,
            ),
            clock=clock,
        )
    return EmbeddedJobQueue(clock=clock, delivery_limit=settings.queue_delivery_limit, maker=maker)


TelephonyKind = Literal["twilio", "simulator", "none"]


def telephony_kind(settings: Settings) -> TelephonyKind:
    """Which telephony these settings give: `twilio` when asked for or when an account SID
    and token are set (`auto`), `simulator` when asked for, else `none` (dials nobody).
    Raises `ConfigurationError` (one line, naming the setting) when the choice cannot work."""
    token = settings.twilio_auth_token.get_secret_value()
    if settings.telephony == "simulator":
        if not token:
            raise ConfigurationError(
                "DIALER_TELEPHONY=simulator signs its callbacks like Twilio: set "
                "DIALER_TWILIO_AUTH_TOKEN to any secret, the same in `dialer serve` and "
                "`dialer worker` (export it once in the shell that starts both)"
            )
        return "simulator"
    if settings.telephony == "twilio":
        if not (settings.twilio_account_sid and token):
            raise ConfigurationError(
                "DIALER_TELEPHONY=twilio needs DIALER_TWILIO_ACCOUNT_SID and "
                "DIALER_TWILIO_AUTH_TOKEN"
            )
        return "twilio"
    return "twilio" if settings.twilio_account_sid and token else "none"


def telephony_banner(settings: Settings) -> str | None:
    """The warning a process prints at start when it dials nobody (None when it dials)."""
    if telephony_kind(settings) != "none":
        return None
    return f"WARNING: {NO_TELEPHONY}; every call and text is ended as not_sent"


def build_telephony(settings: Settings, clock: Callable[[], datetime] = system_clock) -> Telephony:
    kind = telephony_kind(settings)
    token = settings.twilio_auth_token.get_secret_value()
    if kind == "simulator":
        return SimulatedTelephony(
            SimulatorSettings(
                account_sid=settings.twilio_account_sid or "AC" + "0" * 32,
                auth_token=token,
                public_base_url=settings.public_base_url,
                our_number=settings.twilio_from_number,
                seed=settings.simulator_seed,
            ),
            clock=clock,
        )
    if kind == "twilio":
        return TwilioTelephony(
            TwilioSettings(
                account_sid=settings.twilio_account_sid,
                auth_token=token,
                public_base_url=settings.public_base_url,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                default_sms_from=settings.twilio_from_number,
                connection_overrides=settings.twilio_connection_overrides,
                # the worker tries a create again itself, on a pacing slot (issue 19)
                retry_creates=False,
            ),
            http_client=HttpxTwilioClient(timeout=settings.twilio_http_timeout_seconds),
        )
    # No Twilio configured: dial nobody, and end every attempt at once as not_sent.
    log.warning(NO_TELEPHONY)
    return UnconfiguredTelephony()


def build_mailer(settings: Settings) -> Mailer | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpMailer(
        SmtpSettings(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=password,
        )
    )


def freeze_start_up_objects() -> None:
    """Move everything alive after start-up (modules, classes, settings: some hundred
    thousand objects that live as long as the process) out of the garbage collector's
    sight (`gc.freeze`). Its full collections then walk only what the work creates: a
    planner deciding a million cases spent a quarter of its CPU re-walking them."""
    gc.collect()
    gc.freeze()


def worker_pool_size(settings: Settings, concurrency: int) -> int:
    """PostgreSQL connections for one worker: a reservation or record batch holds one
    (not a job), and the planner, its read-ahead, the relays and the reconciler one each."""
    return min(settings.worker_db_pool, concurrency + 6)


def reclaim_rules(settings: Settings) -> tuple[timedelta, timedelta]:
    """The reconciler's thresholds from the settings (`dialing_after`, `stuck_after`): a
    `dialing` attempt only after the fence's send window, the HTTP client's whole timeout
    and the margin."""
    dialing_after = dialing_reclaim_after(
        timedelta(seconds=settings.twilio_http_timeout_seconds),
        timedelta(seconds=settings.reclaim_margin_seconds),
    )
    return dialing_after, timedelta(seconds=settings.stuck_attempt_timeout_seconds)


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        batch_size=settings.worker_batch_size,
        batches=settings.worker_batches,
        batch_linger=settings.worker_batch_linger_ms / 1000,
        lease=timedelta(seconds=settings.reserve_lease_seconds),
        from_number=settings.twilio_from_number,
        sender=Sender(
            company_display_name=settings.company_display_name,
            agent_name=settings.agent_display_name,
            callback_number=settings.callback_number or settings.twilio_from_number,
            creditor_name=settings.creditor_name,
            payment_link=settings.payment_link,
        ),
    )


@dataclass
class Runtime:
    """Everything `dialer worker` runs: the consumer, the outbox relay, the planner (for
    running campaigns, under a lease) and the reconciler. Any number of these processes
    may run on any number of hosts; they share only PostgreSQL and RabbitMQ."""

    settings: Settings
    engine: AsyncEngine
    maker: async_sessionmaker[AsyncSession]
    queue: JobQueue
    telephony: Telephony
    mailer: Mailer | None
    clock: Callable[[], datetime] = system_clock
    metrics: Metrics | None = None
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    relay_wake: asyncio.Event = field(default_factory=asyncio.Event)  # jobs just committed

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: AsyncEngine,
        maker: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime] = system_clock,
        metrics: Metrics | None = None,
    ) -> Runtime:
        return cls(
            settings,
            engine,
            maker,
            build_queue(settings, clock, maker),
            build_telephony(settings, clock),
            build_mailer(settings),
            clock,
            metrics,
        )

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.maker,
            self.telephony,
            self.mailer,
            self.clock,
            config=worker_config(self.settings),
            metrics=self.metrics,
        )

    async def run(self, concurrency: int) -> None:
        """Consume until `stop` is set, then drain in-flight jobs and close."""
        if isinstance(self.queue, RabbitJobQueue):
            await self.queue.connect()
        else:  # the in-process queue starts empty: bring back what was waiting
            requeued = await outbox.requeue_waiting(self.maker, self.queue)
            if requeued:
                log.info("requeued %d waiting attempts", requeued)
        await self.queue.consume(self.dispatcher(), concurrency)
        tasks = [
            asyncio.create_task(
                outbox.run_relay(
                    self.maker,
                    self.queue,
                    self.clock,
                    stop=self.stop,
                    wake=self.relay_wake,
                    drains=planner.RELAY_DRAINS if self.engine.dialect.name == "postgresql" else 1,
                ),
                name="outbox-relay",
            ),
            asyncio.create_task(self._plan_loop(), name="planner"),
            asyncio.create_task(self._reconcile_loop(), name="reconciler"),
        ]
        try:
            await self.stop.wait()
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.queue.close()
            await self.telephony.close()

    async def _every(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stop.wait()

    async def _plan_loop(self) -> None:
        while not self.stop.is_set():
            try:
                campaign_id = await lifecycle.claim(self.maker, self.owner, self.clock())
                if campaign_id is not None:
                    report = await planner.plan_campaign(
                        self.maker,
                        campaign_id,
                        self.clock,
                        wake=self.relay_wake,  # the process's one relay publishes
                        owner=self.owner,
                        metrics=self.metrics,
                    )
                    log.info(
                        "planned campaign %s: %d cases, %d attempts",
                        campaign_id,
                        report.cases,
                        report.planned,
                    )
                    continue
            except Exception:
                log.exception("planner failed; retrying")
            await self._every(2.0)

    async def _reconcile_loop(self) -> None:
        while not self.stop.is_set():
            try:
                await self.reconcile_once()
            except Exception:
                log.exception("reconciler failed; retrying")
            await self._every(self.settings.reconcile_interval_seconds)

    async def reconcile_once(self) -> None:
        """The periodic work of every worker process, each step safe to run in many at
        once: the reconciler, silent calls, unmatched callbacks, overdue wrap-ups."""
        dialing_after, stuck_after = reclaim_rules(self.settings)
        await reconciler.reconcile(
            self.maker,
            self.telephony,
            self.clock(),
            dialing_after=dialing_after,
            stuck_after=stuck_after,
        )
        silent = timedelta(seconds=self.settings.silent_call_seconds)
        await lookups.end_silent_calls(
            self.maker, self.telephony, self.clock(), silent_after=silent
        )
        # Callbacks kept as unmatched whose call or message is known by now.
        async with self.maker() as session:
            await reconcile_unmatched(session, self.clock(), metrics=self.metrics)
        # Collectors past their wrap-up limit, the record not filed: away, still owed.
        await agents.send_away_overdue(self.maker, self.clock())
