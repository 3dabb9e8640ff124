"""Strategies for supervisors: drafts, validation, diffs, simulation, activation, rollback.

Every version is kept. A document that asks for more than its portfolio's guardrail
profile is rejected when saved (compliance.md), naming every clause it breaks; the engine
applies the profile again at each decision regardless.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.digest import digest
from dialer.core.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    StrategyRejectedError,
    field_path,
)
from dialer.db.models import CaseRow, Portfolio, StrategyRow
from dialer.db.repositories import audit, cases, strategies
from dialer.facts.batch import load_facts
from dialer.facts.strategies import compiled_for as compiled_for  # audit's, until it moves
from dialer.schemas.strategies import InProgressPolicy, StrategyIn
from dialer.services import paging
from dialer.services.portfolios import get_portfolio
from strategy.decision import Decision
from strategy.document import Strategy
from strategy.engine import decide
from strategy.guardrails import get_profile
from strategy.model import Channel
from strategy.presets import PRESET_NAMES, load_preset
from strategy.validation import Violation, validate_strategy


def parse_document(document: dict[str, Any], where: str = "document") -> Strategy:
    try:
        return Strategy.model_validate(document)
    except ValidationError as exc:
        fields = [
            FieldError(f"{where}.{field_path(e['loc'])}".rstrip("."), e["msg"])
            for e in exc.errors()
        ]
        violations: list[dict[str, str | None]] = [
            {"tier": None, "path": f.field, "clause": "schema", "source": "strategy.document",
             "message": f.reason}
            for f in fields
        ]  # fmt: skip
        raise StrategyRejectedError("the strategy document is invalid", violations, fields) from exc


def check(doc: Strategy, portfolio: Portfolio) -> list[Violation]:
    return validate_strategy(doc, get_profile(portfolio.profile))


def _reject_if(violations: list[Violation], teams: dict[str, str] | None, doc: Strategy) -> None:
    fields = [FieldError(f"document.{v.path}", f"{v.clause}: {v.message}") for v in violations]
    found: list[dict[str, str | None]] = [asdict(v) for v in violations]
    tier_ids = {t.id for t in doc.tiers}
    for tier in sorted(set(teams or {}) - tier_ids):
        fields.append(FieldError(f"teams.{tier}", f"no tier {tier!r} in the document"))
        found.append(
            {"tier": tier, "path": f"teams.{tier}", "clause": "teams", "source": "dialer",
             "message": f"no tier {tier!r} in the document"}
        )  # fmt: skip
    if fields:
        raise StrategyRejectedError(
            f"the strategy breaks {len(found)} rule(s) of its portfolio's profile", found, fields
        )


def _snapshot(row: StrategyRow) -> dict[str, Any]:
    return {
        "document": row.document,
        "teams": row.teams,
        "in_progress_policy": row.in_progress_policy,
        "status": row.status,
    }


async def get_strategy(session: AsyncSession, strategy_id: uuid.UUID) -> StrategyRow:
    row = await strategies.get(session, strategy_id)
    if row is None:
        raise NotFoundError(f"no strategy {strategy_id}")
    return row


async def list_strategies(
    session: AsyncSession,
    portfolio: str | None,
    status: str | None,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[StrategyRow], str | None]:
    """A page of versions by (portfolio, name, version) and the next page's cursor."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[StrategyRow]:
        return await strategies.list_for(session, portfolio, status, after=after, limit=n)

    return await paging.page(
        fetch,
        cursor=cursor,
        limit=limit,
        parts=(str, str, int),
        key=lambda r: (r.portfolio, r.name, r.version),
    )


async def create_draft(
    session: AsyncSession, body: StrategyIn, *, actor: str, now: datetime
) -> StrategyRow:
    portfolio = await get_portfolio(session, body.portfolio)
    doc = parse_document(body.document)
    _reject_if(check(doc, portfolio), body.teams, doc)
    version = await strategies.next_version(session, portfolio.name, doc.name)
    document = doc.model_copy(update={"version": version}).model_dump(mode="json")
    row = StrategyRow(
        id=uuid.uuid4(),
        portfolio=portfolio.name,
        name=doc.name,
        version=version,
        status="draft",
        document=document,
        teams=dict(body.teams),
        in_progress_policy=body.in_progress_policy.value,
        digest=digest(document),
        created_by=actor,
        created_at=now,
    )
    await strategies.add(session, row)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="strategy.create",
        entity="strategy",
        entity_id=str(row.id),
        after_digest=digest(_snapshot(row)),
        detail={"portfolio": row.portfolio, "name": row.name, "version": version},
    )
    await session.commit()
    return row


async def create_from_preset(
    session: AsyncSession, *, portfolio: str, preset: str, actor: str, now: datetime
) -> StrategyRow:
    if preset not in PRESET_NAMES:
        raise NotFoundError(f"no preset {preset!r} (known: {', '.join(PRESET_NAMES)})")
    document = load_preset(preset).model_dump(mode="json")
    return await create_draft(
        session, StrategyIn(portfolio=portfolio, document=document), actor=actor, now=now
    )


async def validate_stored(session: AsyncSession, strategy_id: uuid.UUID) -> str:
    """Re-check a stored version against its portfolio's current profile (raises on any)."""
    row = await get_strategy(session, strategy_id)
    portfolio = await get_portfolio(session, row.portfolio)
    doc = parse_document(row.document)
    _reject_if(check(doc, portfolio), row.teams, doc)
    return portfolio.profile


async def validate_document(
    session: AsyncSession, portfolio_name: str, document: dict[str, Any]
) -> str:
    portfolio = await get_portfolio(session, portfolio_name)
    doc = parse_document(document)
    _reject_if(check(doc, portfolio), None, doc)
    return portfolio.profile


def diff_values(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-level differences between two JSON values; lists of tiers match by id."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append({"path": sub, "before": None, "after": after[key]})
            elif key not in after:
                out.append({"path": sub, "before": before[key], "after": None})
            else:
                out.extend(diff_values(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list):
        scalars = all(not isinstance(x, dict | list) for x in before + after)
        if scalars and sorted(map(str, before)) == sorted(map(str, after)):
            return []  # sets (channels, roles) serialise in no fixed order
        if all(isinstance(x, dict) and "id" in x for x in before + after):
            b = {x["id"]: x for x in before}
            a = {x["id"]: x for x in after}
            return diff_values(b, a, path)
        if len(before) == len(after):
            out = []
            for i, (x, y) in enumerate(zip(before, after, strict=True)):
                out.extend(diff_values(x, y, f"{path}[{i}]"))
            return out
    return [] if before == after else [{"path": path, "before": before, "after": after}]


async def diff(session: AsyncSession, strategy_id: uuid.UUID, against: uuid.UUID) -> dict[str, Any]:
    old = await get_strategy(session, against)
    new = await get_strategy(session, strategy_id)
    skip = {"version"}
    before = {k: v for k, v in old.document.items() if k not in skip}
    after = {k: v for k, v in new.document.items() if k not in skip}
    changes = diff_values(before, after, "document")
    changes += diff_values(old.teams, new.teams, "teams")
    if old.in_progress_policy != new.in_progress_policy:
        changes.append(
            {"path": "in_progress_policy", "before": old.in_progress_policy,
             "after": new.in_progress_policy}
        )  # fmt: skip
    return {
        "from_id": old.id,
        "from_version": old.version,
        "to_id": new.id,
        "to_version": new.version,
        "changes": changes,
    }


async def _make_active(
    session: AsyncSession, row: StrategyRow, *, action: str, actor: str, now: datetime
) -> StrategyRow:
    portfolio = await get_portfolio(session, row.portfolio)
    doc = parse_document(row.document)
    _reject_if(check(doc, portfolio), row.teams, doc)
    previous = await strategies.active_for(session, portfolio.name)
    for old in previous:
        old.status = "retired"
    old_id = portfolio.active_strategy_id
    row.status = "active"
    row.activated_at = now
    row.activated_by = actor
    portfolio.active_strategy_id = row.id
    portfolio.updated_at = now
    await session.flush()
    if row.in_progress_policy == InProgressPolicy.REEVALUATE:
        pinned = await cases.set_pins(
            session, portfolio.name, None, only_unpinned_with_attempts=False, now=now
        )
    elif old_id is not None:
        # Cases already worked on finish on the version they began on.
        pinned = await cases.set_pins(
            session, portfolio.name, old_id, only_unpinned_with_attempts=True, now=now
        )
    else:
        pinned = 0
    await audit.append(
        session,
        at=now,
        actor=actor,
        action=action,
        entity="strategy",
        entity_id=str(row.id),
        before_digest=digest({"active": str(old_id) if old_id else None}),
        after_digest=digest({"active": str(row.id)}),
        detail={
            "portfolio": portfolio.name,
            "version": row.version,
            "previous": str(old_id) if old_id else None,
            "in_progress_policy": row.in_progress_policy,
            "cases_repinned": pinned,
        },
    )
    await session.commit()
    return row


async def activate(
    session: AsyncSession, strategy_id: uuid.UUID, *, actor: str, now: datetime
) -> StrategyRow:
    row = await get_strategy(session, strategy_id)
    if row.status != "draft":
        raise ConflictError(
            f"only a draft can be activated (this version is {row.status});"
            " use rollback for a retired version"
        )
    return await _make_active(session, row, action="strategy.activate", actor=actor, now=now)


async def rollback(
    session: AsyncSession, strategy_id: uuid.UUID, *, actor: str, now: datetime
) -> StrategyRow:
    row = await get_strategy(session, strategy_id)
    if row.status != "retired":
        raise ConflictError(f"only a retired version can be rolled back to (this is {row.status})")
    return await _make_active(session, row, action="strategy.rollback", actor=actor, now=now)


def _candidate_key(party: str, cp: str, channel: str) -> str:
    return f"{party}/{cp}/{channel}"


def _allowed_keys(d: Decision) -> set[str]:
    return {_candidate_key(a.party_id, a.contact_point_id, a.channel) for a in d.allowed}


def _diff(old: Decision | None, new: Decision) -> tuple[list[str], list[str]] | None:
    """The candidates the draft newly allows and newly refuses, or None when the case's
    decision (its allowed candidates and its tier) does not change."""
    before = _allowed_keys(old) if old else set()
    after = _allowed_keys(new)
    gained, lost = sorted(after - before), sorted(before - after)
    if gained or lost or (old is not None and old.tier != new.tier):
        return gained, lost
    return None


def _change_entry(
    row: CaseRow, old: Decision | None, new: Decision, gained: list[str], lost: list[str]
) -> dict[str, Any]:
    """One changed case of the simulation, each newly refused candidate with its rules."""
    refused = []
    for key in lost:
        _party, cp, channel = key.split("/")
        refusal = new.refusal_for(cp, Channel(channel))
        rules = list(refusal.rules) if refusal else [r.rule for r in new.case_reasons]
        refused.append({"candidate": key, "rules": rules})
    return {
        "case_id": row.id,
        "external_ref": row.external_ref,
        "tier_before": old.tier if old else None,
        "tier_after": new.tier,
        "newly_allowed": gained,
        "newly_refused": refused,
    }


async def simulate(
    session: AsyncSession, strategy_id: uuid.UUID, *, at: datetime, limit: int
) -> dict[str, Any]:
    draft = await get_strategy(session, strategy_id)
    portfolio = await get_portfolio(session, draft.portfolio)
    active = (
        await strategies.get(session, portfolio.active_strategy_id)
        if portfolio.active_strategy_id
        else None
    )
    new_cs = compiled_for(draft, portfolio.profile)
    old_cs = compiled_for(active, portfolio.profile) if active else None
    tiers_old: Counter[str] = Counter()
    tiers_new: Counter[str] = Counter()
    changes: list[dict[str, Any]] = []
    changed = total = 0
    async for batch in cases.stream_open(session, portfolio.name):
        facts = await load_facts(session, [c.id for c in batch], at)
        for row in batch:
            total += 1
            case, hist = facts[row.id].case, facts[row.id].history
            new = decide(case, hist, at, new_cs)
            tiers_new[new.tier or "none"] += 1
            old = decide(case, hist, at, old_cs) if old_cs else None
            if old is not None:
                tiers_old[old.tier or "none"] += 1
            diff = _diff(old, new)
            if diff is not None:
                changed += 1
                if len(changes) < limit:
                    changes.append(_change_entry(row, old, new, *diff))
        session.expunge_all()
    return {
        "at": at,
        "portfolio": portfolio.name,
        "draft_id": draft.id,
        "active_id": active.id if active else None,
        "cases": total,
        "tiers_active": dict(sorted(tiers_old.items())),
        "tiers_draft": dict(sorted(tiers_new.items())),
        "changed_cases": changed,
        "changes": changes,
        "truncated": changed > len(changes),
    }
