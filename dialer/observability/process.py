"""Observability of a process without the HTTP API: what `dialer worker` starts with."""

from __future__ import annotations

from dialer.core.settings import Settings
from dialer.observability.logging import configure_logging
from dialer.observability.metrics import Metrics


def start_worker_observability(settings: Settings) -> Metrics:
    """Masked JSON logs on stderr, and Prometheus metrics served on
    `DIALER_WORKER_METRICS_PORT` (0: not served; the container's health probe reads them).
    Returns the `Metrics` to hand to whatever the worker records with."""
    configure_logging(settings)
    metrics = Metrics()
    if settings.worker_metrics_port:
        metrics.serve(settings.worker_metrics_port)
    return metrics
