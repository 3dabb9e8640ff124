"""Portfolios: an admin chooses each one's guardrail profile; nobody else can change it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.digest import digest
from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import Portfolio
from dialer.db.repositories import audit, portfolios
from dialer.services import paging
from strategy.guardrails import PROFILES, may_decide_under


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise ValidationFailedError(f"unknown guardrail profile {profile!r} (known: {known})")


def _snapshot(row: Portfolio) -> dict[str, str]:
    return {"name": row.name, "profile": row.profile, "country": row.country, "tz": row.timezone}


async def create_portfolio(
    session: AsyncSession,
    *,
    name: str,
    profile: str,
    country: str,
    timezone: str,
    actor: str,
    now: datetime,
) -> Portfolio:
    _check_profile(profile)
    if await portfolios.get(session, name) is not None:
        raise ConflictError(f"portfolio {name!r} already exists")
    row = Portfolio(
        name=name,
        profile=profile,
        country=country,
        timezone=timezone,
        created_at=now,
        updated_at=now,
    )
    await portfolios.add(session, row)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="portfolio.create",
        entity="portfolio",
        entity_id=name,
        after_digest=digest(_snapshot(row)),
        detail=_snapshot(row),
    )
    await session.commit()
    return row


async def get_portfolio(session: AsyncSession, name: str) -> Portfolio:
    row = await portfolios.get(session, name)
    if row is None:
        raise NotFoundError(f"no portfolio {name!r}")
    return row


async def list_portfolios(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Portfolio], str | None]:
    """A page of portfolios by name and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[Portfolio]:
        return await portfolios.page(session, after=after, limit=n)

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=(str,), key=lambda r: (r.name,)
    )


async def set_profile(
    session: AsyncSession,
    name: str,
    *,
    profile: str,
    reason: str | None = None,
    actor: str,
    now: datetime,
) -> Portfolio:
    """Admin only (enforced at the route). A profile that tightens the current one (its
    `tightens` chain reaches it) needs no more; any other change may loosen the law's
    ceilings for every case of the portfolio at once, so it is an explicit, reasoned,
    audited action (`reason`, as clearing a protective fact is), never a silent one."""
    _check_profile(profile)
    row = await get_portfolio(session, name)
    tightening = may_decide_under(PROFILES[profile], row.profile)
    if not tightening and not (reason and reason.strip()):
        raise ValidationFailedError(
            f"{profile!r} does not tighten {row.profile!r}: it may allow what {row.profile!r}"
            " forbids, so say why",
            [FieldError("reason", f"required to change {row.profile} to {profile}")],
        )
    before = _snapshot(row)
    row.profile = profile
    row.updated_at = now
    detail: dict[str, object] = {"from": before["profile"], "to": profile}
    if not tightening:
        detail.update(loosens=True, reason=(reason or "").strip())
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="portfolio.set_profile",
        entity="portfolio",
        entity_id=name,
        before_digest=digest(before),
        after_digest=digest(_snapshot(row)),
        detail=detail,
    )
    await session.commit()
    return row
