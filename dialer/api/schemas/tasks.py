from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime

from dialer.api.schemas.common import In, Out


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
    at: AwareDatetime | None = None


class RefreshOut(Out):
    cases: int
    tier_changed: int
    reassigned: int
    tasks_created: int
