"""Where the test RabbitMQ is, and whether it is reachable (probed once per run)."""

from __future__ import annotations

import asyncio
import os

import pytest

RABBIT_HOST = os.environ.get("DIALER_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("DIALER_TEST_RABBIT_PORT", "5672"))
RABBIT_URL = os.environ.get(
    "DIALER_TEST_RABBIT_URL", f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/"
)
_reachable: list[bool] = []  # memo: [] unknown


async def probe() -> bool:
    """Whether the broker accepts a TCP connection (memoised for the run)."""
    if not _reachable:
        try:
            async with asyncio.timeout(3):
                _, writer = await asyncio.open_connection(RABBIT_HOST, RABBIT_PORT)
            writer.close()
            await writer.wait_closed()
            _reachable.append(True)
        except (OSError, TimeoutError):
            _reachable.append(False)
    return _reachable[0]


async def require_rabbit() -> str:
    """The broker URL; skips when RabbitMQ is unreachable, fails instead under CI=true."""
    if not await probe():
        message = f"RabbitMQ is not reachable at {RABBIT_HOST}:{RABBIT_PORT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: RabbitMQ tests are mandatory)")
        pytest.skip(message)
    return RABBIT_URL
