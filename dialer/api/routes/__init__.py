"""Routers per resource, mounted under /v1."""

from fastapi import APIRouter

from dialer.api.routes import (
    admin,
    cases,
    decisions,
    imports,
    strategies,
    tasks,
)

router = APIRouter()
for module in (admin, cases, imports, decisions, strategies, tasks):
    router.include_router(module.router)
