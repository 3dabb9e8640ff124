"""The call's TwiML, step by step, and what each keypress records.

`answer`: the greeting for the attempt, at the disclosure the worker's decision granted
(recorded on the attempt; none recorded means `none`). `gather`, step `greeting`:
1 = the right party confirmed -> the debtor menu; 2 = someone else -> the third-party
message (nothing about any debt). Step `menu`: 1 = promise to pay (the outstanding amount,
`promise_days` from today), 2 = call me back (`callback_after_minutes`), 3 = put through
to the case's team (<Dial>), 9 = stop these calls on this number. Anything that cannot be
rendered within the granted level ends the call saying nothing more (fail closed).

Agent-mode calls (progressive, predictive): at 1 in the greeting the verified debtor is
put through to a collector (`<Dial>`); with none free the call waits (`<Pause>`, then a
`<Redirect>` to `hold`) and is abandoned only if no collector comes free within 2 s of
the verification (16 CFR 310.4(b)(4)(i); Ofcom): the abandoned-call message plays and
the attempt records it once (`abandoned_at`).

Voicemail: when asynchronous AMD (MachineDetection=DetectMessageEnd) reports the end of
a machine's greeting, `callbacks.record_amd` commits a one-per-attempt claim and
`leave_voicemail` redirects the live call (Telephony.update_call) to `voicemail`'s TwiML:
the limited-content message at the level the decision granted for an answering machine
(none recorded: `none`). The redirect is made once, after the commit, off the webhook's
response; a failure is logged and recorded on the claim (`redirect_failed`), never retried
(a second redirect could leave the message twice).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters import twiml
from adapters.callback_urls import callback_url
from adapters.errors import AdapterError
from adapters.ports import Telephony
from adapters.templates import RoleGroup, role_group
from dialer.callbacks.apply import VOICEMAIL_FAILED, VOICEMAIL_REDIRECTED, VoicemailClaim
from dialer.callbacks.forms import CallRef, Hold, Keypress
from dialer.core.settings import Settings
from dialer.db.models import AgentRow, AttemptRow, CampaignRow, CaseRow, OutcomeRow, PartyRow
from dialer.db.repositories import cases as case_repo
from dialer.db.repositories import history
from dialer.db.repositories import webhooks as repo
from dialer.domain.agents import (
    ABANDON_AFTER_S,
    AGENT_MODES,
    HOLD_PAUSE_S,
    DialingMode,
    parse_endpoint,
)
from dialer.domain.attempts import AttemptState, is_final, is_machine, same_call, stronger
from dialer.observability.metrics import Metrics
from dialer.services import agents
from dialer.services.optouts import opt_out
from dialer.services.outcomes import follow_up
from strategy.model import Channel, Disclosure, PartyRole, Result

log = logging.getLogger(__name__)
GATHER_PATH = "/v1/twilio/voice/gather"
VOICEMAIL_PATH = "/v1/twilio/voice/voicemail"
HOLD_PATH = "/v1/twilio/voice/hold"
HANGUP = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


def gather_url(settings: Settings, attempt_id: uuid.UUID, step: str) -> str:
    """A <Gather>'s action, with the connection overrides every callback URL carries."""
    query = {"attempt": str(attempt_id), "step": step}
    return callback_url(
        settings.public_base_url, GATHER_PATH, query, settings.twilio_connection_overrides
    )


def voicemail_url(settings: Settings, attempt_id: uuid.UUID) -> str:
    query = {"attempt": str(attempt_id)}
    return callback_url(
        settings.public_base_url, VOICEMAIL_PATH, query, settings.twilio_connection_overrides
    )


def hold_url(settings: Settings, attempt_id: uuid.UUID, since: datetime) -> str:
    """Where a waiting call asks again for a collector; `since` (the verification's
    instant) rides in the query, which the request's signature covers."""
    query = {"attempt": str(attempt_id), "since": since.isoformat()}
    return callback_url(
        settings.public_base_url, HOLD_PATH, query, settings.twilio_connection_overrides
    )


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
    session: AsyncSession, call: CallRef
) -> tuple[AttemptRow, CaseRow, PartyRow] | None:
    attempt = await repo.attempt_for_update(session, call.attempt_id, call.sid)
    if attempt is None:
        return None
    if not same_call(attempt.state, attempt.provider_sid, call.sid):
        log.warning("call %s is not attempt %s's call: ignored", call.sid, attempt.id)
        return None
    case = await case_repo.get(session, attempt.case_id)
    if case is None:
        return None
    party = next((p for p in case.parties if p.id == attempt.party_id), None)
    return (attempt, case, party) if party is not None else None


async def answer(session: AsyncSession, call: CallRef, settings: Settings) -> str:
    loaded = await _load(session, call)
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


async def gather(
    session: AsyncSession,
    press: Keypress,
    key: str,
    fields: Mapping[str, str],
    settings: Settings,
    now: datetime,
) -> str:
    """Record the keypress (once, under its event `key`, with the callback's `fields`) and
    answer the next step's TwiML."""
    loaded = await _load(session, press.call)
    if loaded is None:
        return HANGUP
    attempt, case, party = loaded
    step, digits = press.step, press.digits
    first = await repo.insert_event(
        session,
        key=key,
        kind="gather",
        attempt_id=attempt.id,
        provider_sid=press.call.sid or "",
        status="received",
        received_at=now,
        fields=dict(fields),
    )
    script = _script(settings, attempt, case, party)
    try:
        reply, outcome = await _step(session, settings, attempt, case, script, step, digits, now)
    except AdapterError as exc:
        log.warning("keypad step not renderable within the granted disclosure: %s", exc)
        reply, outcome = HANGUP, None
    if first is None:
        # The same keypress again (Twilio's retry, or a replay of the signed request): the
        # same TwiML, and nothing it did the first time (promise, callback time, opt-out)
        # is done again.
        await session.rollback()
        return reply
    if outcome is not None:
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
        if digits == "1" and script.group is RoleGroup.DEBTOR:
            mode = await _agent_mode(session, attempt)
            if mode is not None:
                return await _to_collector(session, settings, attempt, script, mode, now)
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


async def _agent_mode(session: AsyncSession, attempt: AttemptRow) -> DialingMode | None:
    """The campaign's mode when it puts a collector on the line (None: the keypad flow)."""
    if attempt.campaign_id is None:
        return None
    campaign = await session.get(CampaignRow, attempt.campaign_id)
    mode = DialingMode(campaign.mode) if campaign is not None else DialingMode.IVR
    return mode if mode in AGENT_MODES else None


async def _to_collector(
    session: AsyncSession,
    settings: Settings,
    attempt: AttemptRow,
    script: twiml.VoiceScript,
    mode: DialingMode,
    now: datetime,
) -> tuple[str, tuple[Result, str] | None]:
    """The right party confirmed on an agent-mode call: `<Dial>` to the collector held or
    free now (on_call); with none free, the call waits for one (`hold`), up to the 2 s
    the abandonment rule allows."""
    agent = await agents.take_for_answer(session, attempt, mode, now)
    if agent is None or agent.endpoint is None:
        notes = "keypad: the right party confirmed; waiting for a collector"
        return _wait_or_abandon(settings, attempt, script, now, now), (Result.RIGHT_PARTY, notes)
    notes = f"keypad: the right party confirmed; put through to {agent.name}"
    return _bridge(script, agent), (Result.RIGHT_PARTY, notes)


def _bridge(script: twiml.VoiceScript, agent: AgentRow) -> str:
    assert agent.endpoint is not None
    endpoint = parse_endpoint(agent.endpoint)
    return twiml.bridge(script, endpoint.kind.value, endpoint.address)


def _wait_or_abandon(
    settings: Settings,
    attempt: AttemptRow,
    script: twiml.VoiceScript,
    since: datetime,
    now: datetime,
) -> str:
    """No collector free yet: wait `HOLD_PAUSE_S` and ask again if that still ends
    within `ABANDON_AFTER_S` of the verification (`since`); else the call is abandoned
    now: the message naming the caller and a call-back number plays, and the attempt
    records it (`abandoned_at`, once per call; it counts as an attempt for every cap)."""
    if (now - since).total_seconds() + HOLD_PAUSE_S < ABANDON_AFTER_S:
        return twiml.hold(HOLD_PAUSE_S, hold_url(settings, attempt.id, since))
    if attempt.abandoned_at is None:
        attempt.abandoned_at = now
        attempt.updated_at = now
    return twiml.abandoned(script)


async def hold(session: AsyncSession, wait: Hold, settings: Settings, now: datetime) -> str:
    """A verified person waiting for a collector asks again (16 CFR 310.4(b)(4)(i):
    abandoned unless connected within 2 s of the greeting): put through to a collector
    free now, else wait once more or play the abandoned-call message. Committed before
    the TwiML is returned; a repeated request (a retry) gets the same answer and counts
    nothing twice."""
    loaded = await _load(session, wait.call)
    if loaded is None:
        return HANGUP
    attempt, case, party = loaded
    script = _script(settings, attempt, case, party)
    try:
        if attempt.abandoned_at is not None:
            return twiml.abandoned(script)
        bridged = await agents.bridged_to(session, attempt.id)
        if bridged is not None and bridged.endpoint is not None:
            return _bridge(script, bridged)
        mode = await _agent_mode(session, attempt)
        if mode is None or is_final(AttemptState(attempt.state)):
            return HANGUP
        agent = None
        if (now - wait.since).total_seconds() <= ABANDON_AFTER_S:
            agent = await agents.take_for_answer(session, attempt, mode, now)
        if agent is not None and agent.endpoint is not None:
            reply = _bridge(script, agent)
            notes = f"put through to {agent.name} after a wait"
        else:
            reply = _wait_or_abandon(settings, attempt, script, wait.since, now)
            notes = "abandoned: no collector free within 2 s" if attempt.abandoned_at else ""
    except AdapterError as exc:
        log.warning("hold step not renderable within the granted disclosure: %s", exc)
        await session.rollback()
        return HANGUP
    if notes:
        await history.add_outcome(
            session,
            OutcomeRow(
                id=uuid.uuid4(),
                case_id=case.id,
                attempt_id=attempt.id,
                result=attempt.result,
                notes=notes,
                recorded_by="dialer",
                recorded_at=now,
            ),
        )
    await session.commit()
    return reply


async def voicemail(session: AsyncSession, call: CallRef, settings: Settings) -> str:
    """The TwiML a redirected call fetches once the machine's greeting is over: the
    limited-content message at the attempt's voicemail level (`twiml.voicemail`: never
    above the level granted for the party either). Fails closed: an unknown attempt, an
    attempt no machine was reported on, or a message that cannot be rendered within the
    granted level hangs up saying nothing."""
    loaded = await _load(session, call)
    if loaded is None:
        log.warning("voicemail TwiML asked for an unknown attempt: hanging up")
        return HANGUP
    attempt, case, party = loaded
    if not is_machine(attempt.answered_by):
        log.warning("voicemail TwiML asked for attempt %s, no machine reported", attempt.id)
        return HANGUP
    try:
        return twiml.voicemail(_script(settings, attempt, case, party))
    except AdapterError as exc:
        log.warning("no voicemail within the granted disclosure: %s", exc)
        return HANGUP


async def leave_voicemail(
    sessions: async_sessionmaker[AsyncSession],
    telephony: Telephony,
    claim: VoicemailClaim,
    settings: Settings,
    *,
    metrics: Metrics | None = None,
) -> bool:
    """Redirect the live call to the voicemail TwiML, once; record the outcome on the claim
    (`redirected` / `redirect_failed`). Never raises and never retries. True when sent."""
    try:
        await telephony.update_call(claim.sid, voicemail_url(settings, claim.attempt_id))
    except Exception as exc:  # whatever failed is recorded, never retried
        log.warning(
            "voicemail not left on attempt %s (call %s): %s: %s",
            claim.attempt_id,
            claim.sid,
            type(exc).__name__,
            exc,
        )
        sent, status = False, VOICEMAIL_FAILED
    else:
        sent, status = True, VOICEMAIL_REDIRECTED
    try:
        async with sessions() as session:
            await repo.set_event_status(session, claim.claim_id, status)
            await session.commit()
    except Exception:
        log.exception("voicemail redirect of attempt %s not recorded", claim.attempt_id)
    if metrics is not None:
        metrics.record_voicemail_redirect("redirected" if sent else "failed")
    return sent
