"""/healthz says the process serves; /readyz says whether the database, the schema and the
queue are usable, and names what is not without revealing where it is."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.inprocess import InProcessJobQueue
from adapters.rabbitmq import RabbitJobQueue, RabbitSettings
from dialer.api.app import create_app
from dialer.api.routes.health import check_queue
from tests.broker import RABBIT_URL, probe
from tests.databases import Database
from tests.dialer.support import Api, settings_for


class Connection:
    def __init__(self, connected: bool) -> None:
        self.connected = connected

    def is_connected(self) -> bool:
        return self.connected

    async def close(self) -> None:
        return None


class Broken(Connection):
    def is_connected(self) -> bool:
        raise RuntimeError("amqp://guest:guest@rabbit.internal:5672/ exploded")


@pytest.fixture
def swap_queue(api: Api) -> Iterator[Callable[[object], None]]:
    """Put a stand-in queue on the app for one test, then give the app its own back."""
    original = getattr(api.app.state, "queue", None)

    def swap(queue: object) -> None:
        api.app.state.queue = queue

    yield swap
    api.app.state.queue = original


async def test_healthz_is_ok_while_the_process_serves(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readyz_is_ready_with_a_reachable_current_database(api: Api) -> None:
    r = await api.client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == body["checks"]["schema"] == "ok"
    assert set(body["checks"].values()) == {"ok"}  # the in-process queue, if the app has one


async def test_readyz_is_503_naming_the_database_when_it_is_unreachable(api: Api) -> None:
    url = "sqlite+aiosqlite:////nonexistent-dir/secret-host/dialer.db"
    api.app.state.engine = create_async_engine(url)
    try:
        r = await api.client.get("/readyz")
    finally:
        await api.app.state.engine.dispose()
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "not_ready"
    assert error["fields"] == [{"field": "database", "reason": "unreachable"}]
    assert "secret-host" not in r.text and "sqlite" not in r.text


async def test_readyz_is_503_when_the_schema_is_behind_the_code(api: Api, tmp_path: Path) -> None:
    api.app.state.engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        r = await api.client.get("/readyz")
    finally:
        await api.app.state.engine.dispose()
    assert r.status_code == 503
    assert r.json()["error"]["fields"] == [
        {"field": "schema", "reason": "not at the latest migration"}
    ]


async def test_readyz_reports_a_disconnected_queue(
    api: Api, swap_queue: Callable[[object], None]
) -> None:
    swap_queue(Connection(False))
    r = await api.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"]["fields"] == [{"field": "queue", "reason": "not connected"}]
    assert r.json()["error"]["message"] == "not ready: queue"
    swap_queue(Connection(True))
    r = await api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "schema": "ok", "queue": "ok"}


async def test_readyz_does_not_leak_a_queue_error(
    api: Api, swap_queue: Callable[[object], None]
) -> None:
    swap_queue(Broken(False))
    r = await api.client.get("/readyz")
    assert r.status_code == 503
    assert "guest" not in r.text and "rabbit.internal" not in r.text


async def test_healthz_stays_ok_when_dependencies_are_down(
    api: Api, swap_queue: Callable[[object], None]
) -> None:
    swap_queue(Connection(False))
    assert (await api.client.get("/healthz")).status_code == 200


def test_an_in_process_queue_is_always_ready() -> None:
    check = check_queue(InProcessJobQueue())
    assert check is not None and check.ok
    assert check_queue(None) is None


@pytest.mark.rabbitmq
async def test_a_rabbitmq_queue_is_ready_while_connected_and_not_after_close() -> None:
    if not await probe():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("RabbitMQ is not reachable (CI=true: RabbitMQ tests are mandatory)")
        pytest.skip("RabbitMQ is not reachable")
    queue = RabbitJobQueue(RabbitSettings(url=RABBIT_URL, namespace=f"t{uuid.uuid4().hex[:8]}"))
    await queue.connect()
    try:
        check = check_queue(queue)
        assert check is not None and check.ok
    finally:
        await queue.close()
        await queue.delete_topology()
    check = check_queue(queue)
    assert check is not None and not check.ok


@pytest.mark.rabbitmq
async def test_an_api_with_rabbitmq_connects_at_start_and_is_ready(migrated: Database) -> None:
    if not await probe():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("RabbitMQ is not reachable (CI=true: RabbitMQ tests are mandatory)")
        pytest.skip("RabbitMQ is not reachable")
    settings = settings_for(
        migrated, queue_url=RABBIT_URL, queue_namespace=f"t{uuid.uuid4().hex[:8]}"
    )
    app = create_app(settings)
    queue = app.state.queue
    assert isinstance(queue, RabbitJobQueue)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.get("/readyz")
                assert r.status_code == 200, r.text
                assert r.json()["checks"]["queue"] == "ok"
        assert not queue.is_connected()
    finally:
        await queue.delete_topology()
