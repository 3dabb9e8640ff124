from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from dialer.core.auth import Role
from dialer.schemas.common import In, Out, ProfileName, ZoneName


class PortfolioIn(In):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
    profile: ProfileName
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    timezone: ZoneName = "UTC"


class PortfolioProfileIn(In):
    profile: ProfileName
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        default=None,
        description="why; required unless the new profile tightens the current one",
    )


class PortfolioOut(Out):
    name: str
    profile: str
    country: str
    timezone: str
    active_strategy_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class KeyIn(In):
    role: Role
    name: Annotated[str, Field(min_length=1, max_length=128)]


class KeyOut(Out):
    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="shown once; only its hash is stored")


class AuditOut(Out):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before_digest: str | None
    after_digest: str | None
    detail: dict[str, object]
