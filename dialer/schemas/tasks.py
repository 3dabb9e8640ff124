from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from dialer.schemas.common import In, Instant, Out


class TaskStatus(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"
    DONE = "done"


class TaskOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    key: str
    action: str
    requires_approval: bool
    reason: str
    status: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    completed_by: str | None
    completed_at: datetime | None


class ApprovalIn(In):
    note: str | None = None


class RefreshIn(In):
    at: Instant | None = None


class RefreshOut(Out):
    cases: int
    tier_changed: int
    reassigned: int
    tasks_created: int
