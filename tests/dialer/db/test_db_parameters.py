"""SQL parameters (debtors' names and numbers) never reach an error's text, nor the SQL
that DIALER_DATABASE_ECHO logs; the echo warns when it is on. Both databases."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from dialer.db.engine import build_engine
from tests.databases import Database
from tests.dialer.support import settings_for


async def test_an_sql_error_carries_no_parameters(database: Database) -> None:
    """A traceback or error log must not carry a debtor's name from a statement."""
    engine = build_engine(settings_for(database))
    try:
        async with engine.connect() as conn:
            with pytest.raises(Exception) as raised:
                await conn.execute(
                    text("INSERT INTO no_such_table (name) VALUES (:name)"), {"name": "Wang Fang"}
                )
        assert "Wang Fang" not in str(raised.value)
        assert "hidden" in str(raised.value)
    finally:
        await engine.dispose()


async def test_database_echo_warns_and_never_prints_a_phone_number(
    database: Database, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    engine = build_engine(settings_for(database, database_echo=True))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT :phone AS phone"), {"phone": "+8613800138000"})
    finally:
        await engine.dispose()
        logging.getLogger("sqlalchemy.engine.Engine").setLevel(logging.WARNING)
    assert any(
        r.levelno == logging.WARNING and "DIALER_DATABASE_ECHO" in r.getMessage()
        for r in caplog.records
    )
    assert any("SELECT" in r.getMessage() for r in caplog.records)  # it does echo
    out = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for where in (out.out, out.err, logged):
        assert "13800138000" not in where
