"""Operations: structured masked logs, Prometheus metrics, health and readiness."""

from dialer.observability.logging import configure_logging
from dialer.observability.metrics import Metrics

__all__ = ["Metrics", "configure_logging"]
