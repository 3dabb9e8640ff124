"""Cases, parties and contact points: create, read, update, list; assignment by hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailedError
from dialer.db.models import CaseRow, ContactPointRow, PartyRow, Portfolio
from dialer.db.repositories import audit, cases, portfolios, strategies
from dialer.facts.convert import case_id_for, case_rows, contact_point_id_for, number_facts
from dialer.schemas.cases import (
    AssignmentIn,
    CaseIn,
    CasePatch,
    ContactPointIn,
    ContactPointPatch,
    PartyIn,
    PartyPatch,
)
from dialer.services import paging, protective
from dialer.services.changes import record_change
from dialer.services.keys import refuse_unknown_agents
from dialer.services.normalise import e164, normalise_case
from strategy.model import CaseFlag, ContactKind


async def portfolio_for(session: AsyncSession, name: str | None, field: str) -> Portfolio:
    if not name:
        raise ValidationFailedError(
            "a portfolio is required", [FieldError(field, "name the case's portfolio")]
        )
    row = await portfolios.get(session, name)
    if row is None:
        raise ValidationFailedError(
            f"unknown portfolio {name!r}", [FieldError(field, f"no portfolio {name!r}")]
        )
    return row


async def create_case(session: AsyncSession, doc: CaseIn, *, actor: str, now: datetime) -> CaseRow:
    portfolio = await portfolio_for(session, doc.portfolio, "portfolio")
    doc = normalise_case(doc, portfolio.country)
    if await cases.exists(session, case_id_for(portfolio.name, doc.external_ref)):
        raise ConflictError(
            f"case {doc.external_ref!r} already exists in portfolio {portfolio.name!r}",
            [FieldError("external_ref", "already used in this portfolio")],
        )
    rows = case_rows(doc, portfolio.name, now)
    await protective.upsert(session, [rows], actor=actor, source="api", now=now)
    await audit.append(
        session,
        at=now,
        actor=actor,
        action="case.create",
        entity="case",
        entity_id=str(rows.case["id"]),
        detail={"portfolio": portfolio.name, "external_ref": doc.external_ref},
    )
    await session.commit()
    return await get_case(session, rows.case["id"])


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> CaseRow:
    row = await cases.get(session, case_id)
    if row is None:
        raise NotFoundError(f"no case {case_id}")
    return row


async def list_cases(
    session: AsyncSession, *, cursor: str | None, limit: int, **filters: str | None
) -> tuple[list[CaseRow], str | None]:
    """A page of cases by id (`dialer.services.paging`); every filter given must hold."""

    async def fetch(after: paging.Key | None, n: int) -> Sequence[CaseRow]:
        return await cases.page(session, after=after[0] if after else None, limit=n, **filters)

    return await paging.page(
        fetch, cursor=cursor, limit=limit, parts=(uuid.UUID,), key=lambda r: (r.id,)
    )


def _apply(row: Any, changes: dict[str, Any]) -> dict[str, Any]:
    before = {k: getattr(row, k) for k in changes}
    for key, value in changes.items():
        setattr(row, key, value)
    return before


async def _change_case(
    session: AsyncSession,
    row: CaseRow,
    changes: dict[str, Any],
    action: str,
    *,
    actor: str,
    now: datetime,
) -> CaseRow:
    """Apply changes to a case row, audit them, commit, and read the case back."""
    before = _apply(row, changes)
    row.updated_at = now
    await record_change(
        session,
        actor=actor,
        now=now,
        action=action,
        entity="case",
        entity_id=row.id,
        before=before,
        after=changes,
    )
    await session.commit()
    return await get_case(session, row.id)


async def update_case(
    session: AsyncSession, case_id: uuid.UUID, patch: CasePatch, *, actor: str, now: datetime
) -> CaseRow:
    """Change a case. Flags are protective: a patch may add one, never remove one, and
    may not resolve a dispute (a supervisor's clearing, `clearing.clear`). Which role
    may change the book's money and status is checked where roles are (`api.deps`)."""
    await protective.hold(session, case_id)
    row = await get_case(session, case_id)
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    for key in ("stage", "status"):
        if changes.get(key) is not None:
            changes[key] = str(changes[key])
    _no_nulls(changes, ("amount", "currency", "due_date", "stage", "status", "flags"))
    subject = protective.Subject("case", row.id, row.id)
    added: frozenset[str] = frozenset()
    if "flags" in changes:
        merged = protective.merge(row.flags, (str(f) for f in changes["flags"]))
        await protective.refuse_clearing(session, subject, merged.kept)
        changes["flags"], added = sorted(merged.facts), merged.added
    resolved = changes.get("dispute_resolved_at")
    if resolved is not None and (
        row.dispute_resolved_at is None or resolved > row.dispute_resolved_at
    ):
        await protective.refuse_clearing(
            session, subject, {CaseFlag.DISPUTE.value}, "dispute_resolved_at"
        )
    await protective.record(session, subject, added, actor=actor, source="api", now=now)
    return await _change_case(session, row, changes, "case.update", actor=actor, now=now)


def _no_nulls(changes: dict[str, Any], keys: tuple[str, ...]) -> None:
    """A patch may change these fields, not null them (the columns hold a value)."""
    nulled = [key for key in keys if key in changes and changes[key] is None]
    if nulled:
        raise ValidationFailedError(
            f"{', '.join(nulled)} cannot be null",
            [FieldError(key, "may be changed, not removed") for key in nulled],
        )


async def add_party(
    session: AsyncSession, case_id: uuid.UUID, party: PartyIn, *, actor: str, now: datetime
) -> CaseRow:
    row = await get_case(session, case_id)
    portfolio = await portfolio_for(session, row.portfolio, "portfolio")
    key = party.ref or f"#{len(row.parties)}"
    if any(p.key == key for p in row.parties):
        raise ConflictError(f"party {key!r} already exists", [FieldError("ref", "already used")])
    # Normalise through the case path so field names match the create-case API.
    probe = CaseIn(
        external_ref=row.external_ref,
        amount=row.amount,
        currency=row.currency,
        due_date=row.due_date,
        country=row.country,
        parties=[party.model_copy(update={"ref": key})],
    )
    try:
        normalised = normalise_case(probe, portfolio.country)
    except ValidationFailedError as exc:
        fields = [FieldError(f.field.removeprefix("parties[0]."), f.reason) for f in exc.fields]
        raise ValidationFailedError(exc.message, fields) from exc
    rows = case_rows(normalised, row.portfolio, now)
    rows.parties[0]["position"] = len(row.parties)
    rows.case = {}
    await protective.upsert(session, [rows], actor=actor, source="api", now=now, include_case=False)
    await record_change(  # under the new party's id: what an "as of" view leaves out
        session,
        actor=actor,
        now=now,
        action="party.create",
        entity="party",
        entity_id=rows.parties[0]["id"],
        before={},
        after={"party": key},
        detail={"case": str(case_id)},
    )
    await session.commit()
    return await get_case(session, case_id)


async def _party(session: AsyncSession, case_id: uuid.UUID, party_id: uuid.UUID) -> PartyRow:
    party = await cases.get_party(session, party_id)
    if party is None or party.case_id != case_id:
        raise NotFoundError(f"no party {party_id} in case {case_id}")
    return party


async def update_party(
    session: AsyncSession,
    case_id: uuid.UUID,
    party_id: uuid.UUID,
    patch: PartyPatch,
    *,
    actor: str,
    now: datetime,
) -> CaseRow:
    await protective.hold(session, case_id)
    party = await _party(session, case_id, party_id)
    await session.refresh(party)
    changes = patch.model_dump(exclude_unset=True)
    _no_nulls(changes, ("name", "knows_of_debt", "refused_contact"))
    if "refused_contact" in changes:
        # A refusal stops all further contact with that person (NIFA art. 18; 15 USC 1692c(c)).
        subject = protective.Subject("party", party.id, case_id)
        merged = protective.merge(
            protective.party_facts(party.refused_contact),
            protective.party_facts(changes["refused_contact"]),
        )
        await protective.refuse_clearing(session, subject, merged.kept)
        changes["refused_contact"] = protective.REFUSED in merged.facts
        await protective.record(session, subject, merged.added, actor=actor, source="api", now=now)
    before = _apply(party, changes)
    await record_change(
        session,
        actor=actor,
        now=now,
        action="party.update",
        entity="party",
        entity_id=party_id,
        before=before,
        after=changes,
    )
    await session.commit()
    return await get_case(session, case_id)


def _point_value(point: ContactPointIn, country: str) -> str:
    """The contact point's value as stored: a phone number in E.164 (read in `country`),
    an email address as given."""
    value = point.value.strip()
    if point.kind == ContactKind.PHONE:
        normalised = e164(value, country)
        if normalised is None:
            raise ValidationFailedError(
                "invalid phone number", [FieldError("value", f"{value!r} is not a valid number")]
            )
        return normalised
    if "@" not in value:
        raise ValidationFailedError(
            "invalid email address", [FieldError("value", f"{value!r} is not an email address")]
        )
    return value


async def add_contact_point(
    session: AsyncSession,
    case_id: uuid.UUID,
    party_id: uuid.UUID,
    point: ContactPointIn,
    *,
    actor: str,
    now: datetime,
) -> CaseRow:
    case = await get_case(session, case_id)
    party = await _party(session, case_id, party_id)
    portfolio = await portfolio_for(session, case.portfolio, "portfolio")
    value = _point_value(point, case.country or portfolio.country)
    if any(cp.kind == point.kind and cp.value == value for cp in party.contact_points):
        raise ConflictError(f"{value} is already a contact point of this party")
    number_zones, number_mobile = number_facts(point.kind.value, value)
    row = ContactPointRow(
        id=contact_point_id_for(party.id, point.kind.value, value),
        party_id=party.id,
        case_id=case_id,
        position=len(party.contact_points),
        kind=point.kind.value,
        value=value,
        consent=sorted(c.value for c in point.consent),
        opted_out=sorted(c.value for c in point.opted_out),
        validity=point.validity.value,
        timezone=point.timezone,
        do_not_call=point.do_not_call,
        mobile=point.mobile,
        number_zones=number_zones,
        number_mobile=number_mobile,
    )
    session.add(row)
    await session.flush()
    await protective.record(
        session,
        protective.Subject("contact_point", row.id, case_id),
        protective.point_facts(row.opted_out, row.do_not_call),
        actor=actor,
        source="api",
        now=now,
    )
    await record_change(
        session,
        actor=actor,
        now=now,
        action="contact_point.create",
        entity="contact_point",
        entity_id=row.id,
        before={},
        after={"value": value},
        detail={"party": str(party_id)},
    )
    await session.commit()
    return await get_case(session, case_id)


async def update_contact_point(
    session: AsyncSession, cp_id: uuid.UUID, patch: ContactPointPatch, *, actor: str, now: datetime
) -> ContactPointRow:
    row = await cases.get_contact_point(session, cp_id)
    if row is None:
        raise NotFoundError(f"no contact point {cp_id}")
    await protective.hold(session, row.case_id)
    await session.refresh(row)
    changes = patch.model_dump(exclude_unset=True)
    _no_nulls(changes, ("validity", "do_not_call"))
    for key in ("consent", "opted_out"):
        if key in changes:
            changes[key] = sorted(str(c) for c in changes[key] or ())
    # Opt-outs (12 CFR 1006.6(e)), do-not-call and consent revocations (FCC 24-18) only
    # grow: a consent revoked here is recorded as a fact and cannot be granted again.
    subject = protective.Subject("contact_point", row.id, row.case_id)
    revoked = await protective.revocations(session, row.id)
    consent = changes.get("consent", row.consent)
    revoking = {f"{protective.CONSENT_REVOKED}{c}" for c in set(row.consent) - set(consent)}
    revoking |= {f for f in revoked if f.removeprefix(protective.CONSENT_REVOKED) not in consent}
    merged = protective.merge(
        protective.point_facts(row.opted_out, row.do_not_call) | revoked,
        protective.point_facts(
            changes.get("opted_out", row.opted_out), changes.get("do_not_call", row.do_not_call)
        )
        | revoking,
    )
    await protective.refuse_clearing(session, subject, merged.kept)
    if "opted_out" in changes:
        changes["opted_out"] = protective.channels(merged.facts, protective.OPTED_OUT)
    await protective.record(session, subject, merged.added, actor=actor, source="api", now=now)
    if "validity" in changes and changes["validity"] is not None:
        changes["validity"] = str(changes["validity"])
    before = _apply(row, changes)
    await record_change(
        session,
        actor=actor,
        now=now,
        action="contact_point.update",
        entity="contact_point",
        entity_id=cp_id,
        before=before,
        after=changes,
    )
    await session.commit()
    return row


async def assign(
    session: AsyncSession, case_id: uuid.UUID, body: AssignmentIn, *, actor: str, now: datetime
) -> CaseRow:
    """Hand a case to a team and/or an agent: an agent is the name of an active agent key,
    a team one that the strategy governing the case maps a tier to (its `teams`), the same
    teams `assignment.refresh` moves cases to; anything else is 422 naming the field."""
    row = await get_case(session, case_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("agent") is not None:
        await refuse_unknown_agents(session, [changes["agent"]], "agent")
    if changes.get("team") is not None:
        await _refuse_unknown_team(session, row, changes["team"])
    return await _change_case(session, row, changes, "case.assign", actor=actor, now=now)


async def _refuse_unknown_team(session: AsyncSession, row: CaseRow, team: str) -> None:
    version_id = row.strategy_version_id
    if version_id is None:
        portfolio = await portfolios.get(session, row.portfolio)
        version_id = portfolio.active_strategy_id if portfolio else None
    version = await strategies.get(session, version_id) if version_id else None
    teams = sorted(set((version.teams if version else {}).values()))
    if team not in teams:
        if version is None:
            reason = "no strategy governs this case, so it has no teams"
        elif not teams:
            reason = "the strategy governing this case defines no teams"
        else:
            reason = f"not a team of the strategy governing this case ({', '.join(teams)})"
        raise ValidationFailedError(
            f"unknown team {team!r}", [FieldError("team", f"{team!r}: {reason}")]
        )
