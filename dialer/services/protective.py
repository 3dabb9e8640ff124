"""Protective facts only tighten (architecture invariant 8).

A protective fact is a case flag (cease, dispute, bankruptcy, deceased, attorney,
do-not-call), a party's refusal, or a contact point's opt-out, do-not-call or consent
revocation. Every path that writes one (API create and update, CSV/JSONL import, opt-outs)
passes the stored and the incoming facts through `merge`, the one rule: the incoming
facts are added, the stored ones are kept. What an input tried to clear is refused (API,
403) or reported (import, "kept: cease, recorded ... by ..."). Only a supervisor clears a
fact, through `clearing.clear`, with a reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import FieldError, ForbiddenError
from dialer.db.models import ProtectiveFactRow
from dialer.db.repositories import cases
from dialer.db.repositories import protective as facts_repo
from dialer.facts.convert import CaseRows
from strategy.model import CaseFlag

# Every case flag restricts contact (compliance.md "Always"; 15 USC 1692c(a)(2) for attorney).
CASE_FACTS = frozenset(f.value for f in CaseFlag)
REFUSED = "refused_contact"  # NIFA convention art. 18; 15 USC 1692c(c)
DO_NOT_CALL = "do_not_call"
OPTED_OUT = "opted_out:"  # + channel; 12 CFR 1006.6(e)
CONSENT_REVOKED = "consent_revoked:"  # + channel; FCC 24-18
CLEAR_PATH = "POST /v1/cases/{case_id}/protective-facts/clear"


@dataclass(frozen=True, slots=True)
class Merged:
    facts: frozenset[str]  # what is stored after the write
    added: frozenset[str]  # new facts, to be recorded with their recorder
    kept: frozenset[str]  # stored facts the input left out: kept, and refused or reported


def merge(stored: Iterable[str], incoming: Iterable[str]) -> Merged:
    """The one rule for every write path: incoming facts are added, none is removed."""
    before, given = frozenset(stored), frozenset(incoming)
    return Merged(before | given, given - before, before - given)


def party_facts(refused_contact: bool) -> frozenset[str]:
    return frozenset({REFUSED}) if refused_contact else frozenset()


def point_facts(opted_out: Iterable[str], do_not_call: bool) -> frozenset[str]:
    out = {f"{OPTED_OUT}{c}" for c in opted_out}
    return frozenset(out | {DO_NOT_CALL}) if do_not_call else frozenset(out)


def channels(facts: Iterable[str], prefix: str) -> list[str]:
    """The channels named by facts of one kind: {"opted_out:sms"} -> ["sms"]."""
    return sorted(f.removeprefix(prefix) for f in facts if f.startswith(prefix))


@dataclass(frozen=True, slots=True)
class Subject:
    """What a fact is about: a case, a party or a contact point of one case."""

    entity: str  # case / party / contact_point
    entity_id: uuid.UUID
    case_id: uuid.UUID


def _provenance_rows(
    subject: Subject, facts: Iterable[str], *, actor: str, source: str, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "entity_id": subject.entity_id,
            "fact": fact,
            "entity": subject.entity,
            "case_id": subject.case_id,
            "recorded_at": now,
            "recorded_by": actor[:128],
            "source": source[:128],
        }
        for fact in sorted(facts)
    ]


async def hold(session: AsyncSession, case_id: uuid.UUID) -> None:
    """Lock a case before reading the facts a write will merge (see `lock_cases`)."""
    await facts_repo.lock_cases(session, [case_id])


async def record(
    session: AsyncSession,
    subject: Subject,
    facts: Iterable[str],
    *,
    actor: str,
    source: str,
    now: datetime,
) -> None:
    """Note who recorded new facts (a fact recorded before keeps its first recorder)."""
    await facts_repo.record(
        session, _provenance_rows(subject, facts, actor=actor, source=source, now=now)
    )


def recorded(row: ProtectiveFactRow | None) -> str:
    if row is None:
        return "recorded earlier; who recorded it was not kept"
    return f"recorded {row.recorded_at:%Y-%m-%d %H:%M} UTC by {row.recorded_by} ({row.source})"


def named(fact: str) -> str:
    for prefix in (OPTED_OUT, CONSENT_REVOKED):
        if fact.startswith(prefix):
            return f"{prefix.rstrip(':')} {fact.removeprefix(prefix)}"
    return fact


def field_of(entity: str, fact: str) -> str:
    """The field of the API documents that holds a fact."""
    if entity == "case":
        return "flags"
    if entity == "party":
        return REFUSED
    if fact == DO_NOT_CALL:
        return DO_NOT_CALL
    return "consent" if fact.startswith(CONSENT_REVOKED) else "opted_out"


async def revocations(session: AsyncSession, point_id: uuid.UUID) -> frozenset[str]:
    """The consent revocations recorded for a contact point (`consent_revoked:voice`)."""
    return frozenset(await facts_repo.facts_of(session, point_id, CONSENT_REVOKED))


async def refuse_clearing(
    session: AsyncSession, subject: Subject, kept: Iterable[str], field: str | None = None
) -> None:
    """Raise the 403 for an update that would clear protective facts, naming each with
    who recorded it and the one way to clear it."""
    names = sorted(kept)
    if not names:
        return
    found = await facts_repo.provenance(session, [(subject.entity_id, f) for f in names])
    described = "; ".join(
        f"{named(f)} ({recorded(found.get((subject.entity_id, f)))})" for f in names
    )
    path = CLEAR_PATH.format(case_id=subject.case_id)
    raise ForbiddenError(
        f"{described}: a protective fact is never removed by an update or an import; "
        f"only a supervisor clears one, with {path} and a reason",
        [
            FieldError(field or field_of(subject.entity, f), f"may add {named(f)}, not remove it")
            for f in names
        ],
    )


def facts_of_rows(rows: CaseRows) -> list[tuple[Subject, frozenset[str]]]:
    """Every protective fact in one case document's rows, with what it is about."""
    out: list[tuple[Subject, frozenset[str]]] = []
    if rows.case:
        cid = rows.case["id"]
        out.append((Subject("case", cid, cid), frozenset(rows.case.get("flags", ()))))
    for p in rows.parties:
        out.append((Subject("party", p["id"], p["case_id"]), party_facts(p["refused_contact"])))
    for cp in rows.contact_points:
        facts = point_facts(cp["opted_out"], cp["do_not_call"])
        out.append((Subject("contact_point", cp["id"], cp["case_id"]), facts))
    return out


@dataclass(frozen=True, slots=True)
class Kept:
    """A stored fact an upserted row left out: kept, and reported."""

    entity_id: uuid.UUID
    case_id: uuid.UUID
    external_ref: str
    field: str
    fact: str
    recorded: str

    @property
    def message(self) -> str:
        return f"kept: {named(self.fact)}, {self.recorded}"


@dataclass(frozen=True, slots=True)
class Upserted:
    kept: list[Kept]  # stored facts the rows left out
    existing: int  # how many of the cases were stored before (the others were created)


async def upsert(
    session: AsyncSession,
    docs: Sequence[CaseRows],
    *,
    actor: str,
    source: str,
    now: datetime,
    include_case: bool = True,
) -> Upserted:
    """Upsert whole cases (an import, an API create) keeping every stored protective fact:
    each row's facts become the merge of the stored and the given ones, new facts are
    recorded with their recorder, and what a row left out is returned as `Kept`. A
    re-import never moves `dispute_resolved_at` either: resolving a dispute is a
    supervisor's clearing."""
    ids = [d.case["id"] if d.case else d.parties[0]["case_id"] for d in docs if d.case or d.parties]
    stored = await facts_repo.stored_for_upsert(session, ids)
    kept: list[tuple[Subject, str, str, str]] = []  # subject, external ref, field, fact
    added: list[dict[str, Any]] = []
    for doc in docs:
        ref = str(doc.case.get("external_ref", ""))
        existing = stored.cases.get(doc.case["id"]) if doc.case else None
        if existing is not None:
            given = doc.case.get("dispute_resolved_at")
            if given is not None and (existing[1] is None or given > existing[1]):
                kept.append((Subject("case", doc.case["id"], doc.case["id"]), ref,
                             "dispute_resolved_at", CaseFlag.DISPUTE.value))  # fmt: skip
            doc.case["dispute_resolved_at"] = existing[1]
        for subject, facts in facts_of_rows(doc):
            if subject.entity == "case":
                before = frozenset(existing[0]) if existing is not None else None
            elif subject.entity == "party":
                refused = stored.parties.get(subject.entity_id)
                before = None if refused is None else party_facts(refused)
            else:
                point = stored.points.get(subject.entity_id)
                before = None if point is None else point_facts(*point)
            m = merge(before or (), facts)
            _write_back(doc, subject, m.facts)
            kept += [(subject, ref, field_of(subject.entity, f), f) for f in sorted(m.kept)]
            added += _provenance_rows(subject, m.added, actor=actor, source=source, now=now)
    await cases.upsert(session, docs, include_case=include_case)
    await facts_repo.record(session, added)
    found = await facts_repo.provenance(session, [(s.entity_id, f) for s, _, _, f in kept])
    return Upserted(
        [
            Kept(s.entity_id, s.case_id, ref, fld, f, recorded(found.get((s.entity_id, f))))
            for s, ref, fld, f in kept
        ],
        len(stored.cases),
    )


def _write_back(doc: CaseRows, subject: Subject, facts: frozenset[str]) -> None:
    """Put merged facts back into the row dict the upsert writes."""
    if subject.entity == "case":
        doc.case["flags"] = sorted(facts)
        return
    if subject.entity == "party":
        for p in doc.parties:
            if p["id"] == subject.entity_id:
                p["refused_contact"] = REFUSED in facts
        return
    for cp in doc.contact_points:
        if cp["id"] == subject.entity_id:
            cp["opted_out"] = channels(facts, OPTED_OUT)
            cp["do_not_call"] = DO_NOT_CALL in facts
