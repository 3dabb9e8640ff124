"""Alembic migrations, configured in code by `dialer.db.migrate` (no alembic.ini needed)."""
