"""What the desk sends and sees about a collector."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from dialer.domain.agents import AgentState
from dialer.schemas.common import In, Out


class AgentOut(Out):
    name: str
    endpoint: str | None
    state: AgentState
    state_since: datetime
    campaign_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    wrap_up_due_at: datetime | None


class StateIn(In):
    state: AgentState


class EndpointIn(In):
    endpoint: Annotated[str, Field(min_length=1, max_length=255)]
