"""The RabbitMQ queue's settings (from `dialer.settings`: `DIALER_QUEUE_*`)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DELAY_BUCKETS = (1, 5, 30, 120, 600, 3600)


@dataclass(frozen=True, slots=True)
class RabbitSettings:
    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    namespace: str = "dialer"
    delivery_limit: int = 5
    delay_buckets: tuple[int, ...] = DEFAULT_DELAY_BUCKETS  # seconds
    heartbeat: int = 30
    reconnect_interval: float = 2.0
    connect_attempts: int = 8  # first connection only; afterwards the robust connection
    connect_max_wait: float = 15.0  # retries for ever
    connect_backoff: float = 0.5  # first wait; doubles up to connect_max_wait
    publish_timeout: float = 15.0  # per batch; a robust publish can hang while reconnecting
    publish_batch: int = 200  # messages whose confirms are awaited together
    bundle_size: int = 100  # jobs a message at most; 1: one job a message (the old format)
    prefetch: int | None = None  # messages a consumer holds; None: see `prefetch()`
    shutdown_grace: float = 30.0
