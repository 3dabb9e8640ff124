"""CLI fixtures: a SQLite database file named by the environment, no queue configured."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The database file the CLI under test uses (not created: `dialer migrate` makes it)."""
    db = tmp_path / "cli.db"
    monkeypatch.setenv("DIALER_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.delenv("DIALER_QUEUE_URL", raising=False)
    monkeypatch.delenv("DIALER_RABBITMQ_URL", raising=False)
    return db
