"""Routers per resource, mounted under /v1."""

from fastapi import APIRouter

from dialer.api.routes import (
    admin,
    cases,
    decisions,
    imports,
    strategies,
    tasks,
    timeline,
)
from dialer.webhooks import routes as twilio_webhooks

router = APIRouter()
for module in (admin, cases, imports, decisions, strategies, tasks, timeline):
    router.include_router(module.router)
router.include_router(twilio_webhooks.router)  # signature-authenticated, not by API key
