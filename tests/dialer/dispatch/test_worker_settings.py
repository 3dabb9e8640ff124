"""The worker's group-commit and pool settings reach the dispatcher (DIALER_WORKER_*)."""

from __future__ import annotations

import gc

import pytest
from pydantic import ValidationError

from adapters.rabbitmq import RabbitJobQueue
from dialer.core.clock import system_clock
from dialer.core.settings import Settings
from dialer.dispatch.runtime import (
    build_queue,
    freeze_start_up_objects,
    worker_config,
    worker_pool_size,
)


def test_batch_settings_reach_the_worker_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_WORKER_BATCH_SIZE", "32")
    monkeypatch.setenv("DIALER_WORKER_BATCHES", "3")
    monkeypatch.setenv("DIALER_WORKER_BATCH_LINGER_MS", "25")
    config = worker_config(Settings())
    assert (config.batch_size, config.batches, config.batch_linger) == (32, 3, 0.025)


def test_defaults_let_a_batch_fill_up_to_its_size() -> None:
    settings = Settings()
    # the prefetch (= concurrency) must not cap a batch below its size
    assert settings.worker_concurrency >= settings.worker_batch_size


@pytest.mark.parametrize(
    ("pool", "concurrency", "expected"),
    [(20, 64, 20), (20, 8, 14), (4, 1, 4), (100, 64, 70)],
)
def test_pool_is_capped_by_the_setting_and_by_what_the_worker_can_use(
    monkeypatch: pytest.MonkeyPatch, pool: int, concurrency: int, expected: int
) -> None:
    monkeypatch.setenv("DIALER_WORKER_DB_POOL", str(pool))
    assert worker_pool_size(Settings(), concurrency) == expected


def test_a_batch_of_zero_is_refused_with_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_WORKER_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="worker_batch_size"):
        Settings()


def test_the_bundle_size_reaches_the_rabbitmq_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALER_QUEUE_URL", "amqp://guest:guest@127.0.0.1:5672/")
    monkeypatch.setenv("DIALER_QUEUE_BUNDLE_SIZE", "25")
    queue = build_queue(Settings(), system_clock, None)
    assert isinstance(queue, RabbitJobQueue) and queue.settings.bundle_size == 25
    assert queue.prefetch(64) == 4  # enough bundles of 25 to fill 64, and one more
    monkeypatch.setenv("DIALER_QUEUE_PREFETCH", "40")
    queue = build_queue(Settings(), system_clock, None)
    assert isinstance(queue, RabbitJobQueue) and queue.prefetch(64) == 40


def test_start_up_objects_are_frozen_out_of_the_collectors_walks() -> None:
    before = gc.get_freeze_count()
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
