"""Repositories hold all SQL. They flush at most; the service function commits."""
