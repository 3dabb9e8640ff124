from __future__ import annotations

import pytest

from dialer.api.app import create_app
from dialer.core.errors import SchemaOutOfDateError
from dialer.db.engine import build_engine
from dialer.db.migrate import schema_is_current, upgrade_to_head
from tests.databases import Database
from tests.dialer.support import settings_for


async def test_service_refuses_to_start_on_an_unmigrated_database(database: Database) -> None:
    app = create_app(settings_for(database))
    with pytest.raises(SchemaOutOfDateError, match="run `dialer migrate`"):
        async with app.router.lifespan_context(app):
            pass


async def test_migrate_brings_an_empty_database_to_head_and_is_idempotent(
    database: Database,
) -> None:
    engine = build_engine(settings_for(database))
    try:
        assert (await schema_is_current(engine))[0] is False
        await upgrade_to_head(engine)
        await upgrade_to_head(engine)
        current, found, heads = await schema_is_current(engine)
        assert current and found == heads
    finally:
        await engine.dispose()
    app = create_app(settings_for(database))
    async with app.router.lifespan_context(app):
        assert app.state.sessionmaker is not None
