"""The call's TwiML, step by step, and what each keypress records.

`answer`: the greeting for the attempt, at the disclosure the worker's decision granted
(recorded on the attempt; none recorded means `none`). `gather`, step `greeting`:
1 = the right party confirmed -> the debtor menu; 2 = someone else -> the third-party
message (nothing about any debt). Step `menu`: 1 = promise to pay (the outstanding amount,
`promise_days` from today), 2 = call me back (`callback_after_minutes`), 3 = put through
to the case's team (<Dial>), 9 = stop these calls on this number. Anything that cannot be
rendered within the granted level ends the call saying nothing more (fail closed).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from adapters import twiml
from adapters.errors import AdapterError
from adapters.templates import RoleGroup, role_group
from dialer.db.models import AttemptRow, CaseRow, OutcomeRow, PartyRow
from dialer.db.repositories import cases as case_repo
from dialer.db.repositories import history
from dialer.db.repositories import webhooks as repo
from dialer.services.callbacks import attempt_ref, event_key, stronger
from dialer.services.optouts import opt_out
from dialer.services.outcomes import follow_up
from dialer.settings import Settings
from dialer.webhooks.forms import TwilioForm
from strategy.model import Channel, Disclosure, PartyRole, Result

log = logging.getLogger(__name__)
GATHER_PATH = "/v1/twilio/voice/gather"
HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


def gather_url(settings: Settings, attempt_id: uuid.UUID, step: str) -> str:
    query = urlencode({"attempt": str(attempt_id), "step": step})
    return f"{settings.public_base_url.rstrip('/')}{GATHER_PATH}?{query}"


def _disclosure(value: str | None) -> Disclosure:
    try:
        return Disclosure(value) if value else Disclosure.NONE
    except ValueError:
        return Disclosure.NONE


def _script(
    settings: Settings, attempt: AttemptRow, case: CaseRow, party: PartyRow
) -> twiml.VoiceScript:
    outstanding = case.balance if case.balance is not None else case.amount
    values = {
        "first_name": party.name or "",
        "callback_number": settings.callback_number or settings.default_team_number or "",
        "agent_name": settings.agent_display_name,
        "company_display_name": settings.company_display_name,
        "amount": f"{outstanding:.2f}",
        "currency": case.currency,
        "due_date": case.due_date.isoformat(),
        "creditor_name": settings.company_display_name,
    }
    team = settings.team_numbers.get(case.team or "") or settings.default_team_number
    language = "zh" if (case.country or "").upper() == "CN" else settings.voice_language
    return twiml.VoiceScript(
        granted=_disclosure(attempt.disclosure),
        voicemail_granted=_disclosure(attempt.voicemail_disclosure),
        values=values,
        language=language,
        group=role_group(PartyRole(party.role)),
        team_number=team,
    )


async def _load(
    session: AsyncSession, form: TwilioForm
) -> tuple[AttemptRow, CaseRow, PartyRow] | None:
    attempt = await repo.attempt_for_update(session, attempt_ref(form), form.get("CallSid"))
    if attempt is None:
        return None
    case = await case_repo.get(session, attempt.case_id)
    if case is None:
        return None
    party = next((p for p in case.parties if p.id == attempt.party_id), None)
    return (attempt, case, party) if party is not None else None


async def answer(session: AsyncSession, form: TwilioForm, settings: Settings) -> str:
    loaded = await _load(session, form)
    if loaded is None:
        log.warning("TwiML asked for an unknown attempt: hanging up")
        return HANGUP
    attempt, case, party = loaded
    try:
        return twiml.greeting(
            _script(settings, attempt, case, party),
            gather_url(settings, attempt.id, "greeting"),
        )
    except AdapterError as exc:
        log.warning("no greeting within the granted disclosure: %s", exc)
        return HANGUP


async def gather(session: AsyncSession, form: TwilioForm, settings: Settings, now: datetime) -> str:
    """Record the keypress (once) and answer the next step's TwiML."""
    loaded = await _load(session, form)
    if loaded is None:
        return HANGUP
    attempt, case, party = loaded
    step = form.query.get("step", "greeting")
    digits = (form.get("Digits") or "").strip()
    sid = form.get("CallSid") or ""
    key = event_key(form, "gather", sid, step, digits)
    first = await repo.insert_event(
        session,
        key=key,
        kind="gather",
        attempt_id=attempt.id,
        provider_sid=sid,
        status="received",
        received_at=now,
        fields=dict(form.fields),
    )
    script = _script(settings, attempt, case, party)
    try:
        reply, outcome = await _step(session, settings, attempt, case, script, step, digits, now)
    except AdapterError as exc:
        log.warning("keypad step not renderable within the granted disclosure: %s", exc)
        reply, outcome = HANGUP, None
    if first is not None and outcome is not None:
        result, notes = outcome
        attempt.result = stronger(attempt.result, result)
        attempt.updated_at = now
        await history.add_outcome(
            session,
            OutcomeRow(
                id=uuid.uuid4(),
                case_id=case.id,
                attempt_id=attempt.id,
                result=attempt.result,
                promise_amount=attempt.promise_amount,
                promise_date=attempt.promise_date,
                callback_at=attempt.callback_at,
                notes=notes,
                recorded_by="twilio:keypad",
                recorded_at=now,
            ),
        )
        await follow_up(session, case.id, now)
    await session.commit()
    return reply


async def _step(
    session: AsyncSession,
    settings: Settings,
    attempt: AttemptRow,
    case: CaseRow,
    script: twiml.VoiceScript,
    step: str,
    digits: str,
    now: datetime,
) -> tuple[str, tuple[Result, str] | None]:
    if step == "greeting" or script.group is not RoleGroup.DEBTOR:
        if digits == "1":
            menu = twiml.debtor_menu(script, gather_url(settings, attempt.id, "menu"))
            return menu, (Result.RIGHT_PARTY, "keypad: the right party confirmed")
        if digits == "2":
            return twiml.third_party(script), (Result.THIRD_PARTY, "keypad: not the debtor")
        return twiml.closing(script, "no_input"), None
    if digits == "1":
        attempt.promise_amount = case.balance if case.balance is not None else case.amount
        attempt.promise_date = now.date() + timedelta(days=settings.promise_days)
        notes = f"keypad: promise to pay {attempt.promise_amount} by {attempt.promise_date}"
        return twiml.closing(script, "promise_recorded"), (Result.PROMISE_TO_PAY, notes)
    if digits == "2":
        attempt.callback_at = now + timedelta(minutes=settings.callback_after_minutes)
        notes = f"keypad: call back at {attempt.callback_at.isoformat()}"
        return twiml.closing(script, "callback_requested"), (Result.CALLBACK_REQUESTED, notes)
    if digits == "3":
        return twiml.connect_to_team(script), (Result.RIGHT_PARTY, "keypad: put through")
    if digits == "9":
        point = await repo.contact_point(session, attempt.contact_point_id)
        if point is not None:
            await opt_out(
                session, [point], Channel.VOICE, source="keypad 9", actor="twilio:keypad", now=now
            )
        return twiml.closing(script, "opted_out"), (Result.RIGHT_PARTY, "keypad: stop calls")
    return twiml.closing(script, "no_input"), None
