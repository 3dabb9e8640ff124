"""Decisions: the engine's answer for a stored case, or for a what-if given whole."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.auth import Role
from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.core.settings import Settings
from dialer.db.models import Portfolio, StrategyRow
from dialer.facts.convert import case_from_document
from dialer.facts.reader import load_case
from dialer.facts.strategies import compiled_for, compiled_version
from dialer.schemas.decisions import PreviewIn
from dialer.services.normalise import normalise_case
from dialer.services.portfolios import get_portfolio
from dialer.services.strategies import get_strategy, parse_document
from strategy.decision import Decision
from strategy.document import Strategy
from strategy.engine import decide
from strategy.guardrails import PROFILES, get_profile, may_decide_under
from strategy.model import Attempt, Case, History, RecordedUnreachable


async def decide_stored(session: AsyncSession, case_id: uuid.UUID, at: datetime) -> Decision:
    """The engine's decision for a stored case at `at`, on the version it is pinned to
    (finishing on an old version), else its portfolio's active one."""
    stored = await load_case(session, case_id, at)
    if stored is None:
        raise NotFoundError(f"no case {case_id}")
    cs = None
    if stored.version_id is not None and stored.version_digest is not None:
        cs = await compiled_version(
            session, stored.version_id, stored.version_digest, stored.profile
        )
    if cs is None:
        raise ConflictError(
            f"portfolio {stored.facts.case.portfolio!r} has no active strategy: activate one"
        )
    return decide(stored.facts.case, stored.facts.history, at, cs)


async def preview(
    session: AsyncSession, body: PreviewIn, settings: Settings, *, role: Role = Role.AGENT
) -> Decision:
    """Decide for a case given whole; reads stored strategies at most, writes nothing.
    The strategy is decided under its own profile or its portfolio's; only an admin may
    ask for another, and only one that tightens those (`guardrails.may_decide_under`)."""
    portfolio = await get_portfolio(session, body.portfolio) if body.portfolio else None
    stored: StrategyRow | None = None
    if body.strategy is not None:
        strategy = parse_document(body.strategy, where="strategy")
    else:
        stored = (
            await get_strategy(session, body.strategy_id)
            if body.strategy_id
            else await _active(session, portfolio)
        )
        strategy = parse_document(stored.document)
    profile_name = body.profile or (portfolio.profile if portfolio else strategy.profile)
    if profile_name not in PROFILES:
        raise ValidationFailedError(
            f"unknown guardrail profile {profile_name!r}",
            [FieldError("profile", f"known: {', '.join(sorted(PROFILES))}")],
        )
    _check_profile(profile_name, strategy.profile, portfolio, role)
    case = _preview_case(body, portfolio, strategy, settings)
    hist = _preview_history(body)
    if stored is not None:  # a stored version: compiled once per process (profile checked)
        return decide(case, hist, body.at, compiled_for(stored, profile_name))
    return decide(
        case,
        hist,
        body.at,
        strategy,
        get_profile(profile_name),
        portfolio_profile=portfolio.profile if portfolio else None,
    )


def _preview_case(
    body: PreviewIn, portfolio: Portfolio | None, strategy: Strategy, settings: Settings
) -> Case:
    """The case given whole, normalised, with any what-if recorded unreachability on it."""
    # Local numbers are read in the portfolio's region, else the strategy's holiday country.
    region = (
        portfolio.country if portfolio else strategy.holiday_country or settings.default_country
    )
    try:
        doc = normalise_case(body.case, region)
    except ValidationFailedError as exc:
        fields = [FieldError(f"case.{f.field}", f.reason) for f in exc.fields]
        raise ValidationFailedError(exc.message, fields) from exc
    case = case_from_document(
        doc, case_id=doc.external_ref, portfolio=portfolio.name if portfolio else "preview"
    )
    found = body.recorded_unreachable
    if found is not None:  # a what-if: bounded only by its own order
        if found.until <= found.since:
            raise ValidationFailedError(
                "a recorded unreachability ends after it starts",
                [FieldError("recorded_unreachable.until", "must be after since")],
            )
        case = replace(
            case,
            recorded_unreachable=RecordedUnreachable(found.since, found.until, found.source),
        )
    return case


def _preview_history(body: PreviewIn) -> History:
    return History(
        attempts=tuple(
            Attempt(
                at=a.at,
                channel=a.channel,
                party_id=a.party_id,
                contact_point_id=a.contact_point_id,
                result=a.result,
                id=f"attempt-{i}",
                promise_amount=a.promise_amount,
                promise_date=a.promise_date,
                callback_at=a.callback_at,
            )
            for i, a in enumerate(body.history.attempts)
        ),
        payments=tuple((p.at, p.amount) for p in body.history.payments),
    )


def _check_profile(
    profile_name: str, strategy_profile: str, portfolio: Portfolio | None, role: Role
) -> None:
    """A profile other than the strategy's own (or its portfolio's) is the admin's alone
    (profiles are chosen per portfolio by an administrator, compliance.md), and only one
    that tightens them: a looser one would preview contacts the law forbids here."""
    own = list(dict.fromkeys(n for n in (strategy_profile, portfolio and portfolio.profile) if n))
    if profile_name in own:
        return
    names = " or ".join(repr(n) for n in own)
    if role is not Role.ADMIN:
        raise ValidationFailedError(
            f"the strategy is decided under {names}; only an admin may preview it under"
            f" another profile such as {profile_name!r}",
            [FieldError("profile", f"only an admin may ask for a profile other than {names}")],
        )
    portfolio_profile = portfolio.profile if portfolio else None
    if not may_decide_under(get_profile(profile_name), strategy_profile, portfolio_profile):
        raise ValidationFailedError(
            f"{profile_name!r} does not tighten {names}: a strategy may be previewed only"
            " under a stricter profile",
            [FieldError("profile", f"{profile_name!r} is not stricter than {names}")],
        )


async def _active(session: AsyncSession, portfolio: Portfolio | None) -> StrategyRow:
    if portfolio is None or portfolio.active_strategy_id is None:
        raise ConflictError("the portfolio has no active strategy: give a strategy")
    return await get_strategy(session, portfolio.active_strategy_id)
