"""What the parts of one dispatch worker share: its configuration, database handles,
clock, lease owner and the pacing lead it measures (reserve, fence, send, record)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.dispatch import pacing
from dialer.dispatch.messages import Sender
from dialer.observability.metrics import Metrics

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    from_number: str = "+15005550006"
    sender: Sender = field(default_factory=Sender)
    max_slot_wait: timedelta = timedelta(seconds=2)
    paused_retry: timedelta = timedelta(seconds=30)
    busy_retry: timedelta = timedelta(seconds=2)  # the in-progress limit is reached
    outage_retry: timedelta = timedelta(seconds=1)  # first wait when the database is down
    outage_retry_max: timedelta = timedelta(seconds=30)
    transient_retries: int = 3
    # A refusal that passes soon is waited out (at most this long, this many times) when
    # it stays inside the campaign's window: see `redecide.deferral`.
    max_deferral: timedelta = timedelta(hours=1)
    max_deferrals: int = 3
    transient_delay: timedelta = timedelta(minutes=1)
    # group commit: at most this many jobs in one batch, this many batches at a time; a
    # batch waits at most `batch_linger` seconds for more jobs while another is running
    batch_size: int = 64
    batches: int = 2
    batch_linger: float = 0.010
    record_batches: int = 1  # `sent` records: one batch at a time, the next one gathers
    # The fence: a reservation's lease (the reconciler reclaims it once this has passed);
    # a create the provider certainly did not act on (429, not reached) is tried at most
    # this many times in all, each try on a fresh pacing slot, waiting what it asks for
    # (at most `create_retry_wait`) first.
    lease: timedelta = timedelta(minutes=5)
    create_attempts: int = 4
    create_retry_wait: timedelta = timedelta(seconds=10)


class WorkerContext:
    """One worker's shared state. `serial()` stands in for row locks on SQLite (the
    one-process default); `autocommit` runs the reads and single-statement writes that
    need no transaction without BEGIN/COMMIT (PostgreSQL)."""

    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        config: WorkerConfig,
        sleep: Sleep,
        metrics: Metrics | None,
    ) -> None:
        self.maker = maker
        self.clock = clock
        self.config = config
        self.sleep = sleep
        self.metrics = metrics
        bind = maker.kw.get("bind")
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        self.autocommit: AsyncEngine | None = (
            bind.execution_options(isolation_level="AUTOCOMMIT")
            if bind is not None and self.postgres
            else None
        )
        self.leads = pacing.Leads()  # how long from taking a slot to being ready to dial
        self.late = 0  # dials that came too late for their slot and took another
        self._local = asyncio.Lock()
        # whose lease a reservation carries: this worker, unique across processes
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]

    @contextlib.asynccontextmanager
    async def serial(self) -> AsyncIterator[None]:
        if self.postgres:
            yield
        else:
            async with self._local:
                yield

    def took_slots(self, claimed: datetime) -> None:
        """Fold how long this batch took from claiming its slots to its commit into the lead."""
        self.leads.reserved(self.clock() - claimed)

    def count_refusal(self, rules: list[str]) -> None:
        if self.metrics is not None:
            self.metrics.record_refusals(rules)

    def count_provider_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_provider_error(kind)
