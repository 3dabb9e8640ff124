"""The RabbitMQ job queue (production): `RabbitJobQueue` and its `RabbitSettings`.

Modules: `queue` (connection, publishing, consuming), `consumer` (how each message is
settled), `messages` (the wire format: single jobs and bundles), `topology` (exchanges and
queues), `dead_letters` (browse and replay). Measurements: `docs/performance.md`.
"""

from adapters.rabbitmq.messages import (
    BUNDLE_CONTENT_TYPE,
    JOB_CONTENT_TYPE,
    RETRIES_HEADER,
    Item,
    pick_delay_bucket,
)
from adapters.rabbitmq.queue import RabbitJobQueue
from adapters.rabbitmq.settings import DEFAULT_DELAY_BUCKETS, RabbitSettings

__all__ = [
    "BUNDLE_CONTENT_TYPE",
    "DEFAULT_DELAY_BUCKETS",
    "JOB_CONTENT_TYPE",
    "RETRIES_HEADER",
    "Item",
    "RabbitJobQueue",
    "RabbitSettings",
    "pick_delay_bucket",
]
