"""Persistence: SQLAlchemy models, the engine factory, repositories (all SQL lives here)."""
