"""What the desk sends and sees about a collector."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, computed_field

from dialer.domain.agents import AgentState, away_reason, owes_wrap_up
from dialer.schemas.common import In, Out


class AgentOut(Out):
    name: str
    endpoint: str | None
    state: AgentState
    state_since: datetime
    campaign_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    wrap_up_due_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def wrap_up_owed(self) -> bool:
        """The record of the last bridged call is not filed: no next call until it is."""
        return owes_wrap_up(self.wrap_up_due_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def away_reason(self) -> str | None:
        """`wrap-up overdue`: moved away by the dialer when the wrap-up limit passed."""
        return away_reason(self.state, self.wrap_up_due_at, self.state_since)


class StateIn(In):
    state: AgentState


class EndpointIn(In):
    endpoint: Annotated[str, Field(min_length=1, max_length=255)]


class DisconnectIn(In):
    """The desk going away says nothing more: any field is refused (422 naming it)."""


class PreviewStartIn(In):
    """The preview call the desk offered, started by the agent."""

    attempt_id: uuid.UUID


class PreviewSkipIn(In):
    """The preview call the desk offered, passed on, and why (kept on the case's timeline)."""

    attempt_id: uuid.UUID
    reason: Annotated[str, Field(min_length=3, max_length=500)]


class PreviewChoiceOut(Out):
    attempt_id: uuid.UUID
    state: str
    reason: str | None = None


class VoiceTokenOut(Out):
    """A Twilio Voice SDK access token for the agent's client identity."""

    token: str
    identity: str
    expires_at: datetime


class CampaignAgentsIn(In):
    """The names of the agent keys who take the campaign's calls (empty: the whole floor)."""

    agents: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=500)
    ]


class CampaignAgentsOut(Out):
    campaign_id: uuid.UUID
    agents: list[AgentOut]
