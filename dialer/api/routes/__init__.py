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
# Next: the decision endpoint, the one a user waits on most; each route passed costs about
# 6 us of FastAPI's matching, and it came fortieth. Its two paths (`/cases/{id}/decision`,
# `/decisions/preview`) are matched by no other route, so the order changes no answer.
for module in (decisions, admin, agents, attempts, cases, imports, strategies, tasks, timeline):
    router.include_router(module.router)
