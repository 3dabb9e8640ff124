"""Routers per resource, mounted under /v1."""

from fastapi import APIRouter

from dialer.api.routes import (
    admin,
    agents,
    attempts,
    cases,
    decisions,
    imports,
    strategies,
    tasks,
    timeline,
)
from dialer.api.routes import twilio as twilio_webhooks

router = APIRouter()
# First: Twilio's callbacks are most of the traffic and routes are matched in order.
# They authenticate by signature, not by API key.
router.include_router(twilio_webhooks.router)
for module in (admin, agents, attempts, cases, imports, decisions, strategies, tasks, timeline):
    router.include_router(module.router)
