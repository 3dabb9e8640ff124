"""Operations: structured masked logs, Prometheus metrics, health and readiness."""

from dialer.observability.logging import configure_logging
from dialer.observability.metrics import Metrics
from dialer.observability.process import start_worker_observability

__all__ = ["Metrics", "configure_logging", "start_worker_observability"]
