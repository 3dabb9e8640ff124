"""Provider callbacks as events on attempts (architecture invariants 5-7).

Each handler, in one transaction: record the event under its idempotency key (a duplicate
changes nothing), find the attempt (our id from the callback URL first, the provider's
sid second; none: the event is kept as `unmatched` for the reconciler), move the attempt
only through `dialer.domain.attempts.advance` (never backwards, never out of a final
state, never on a SequenceNumber at or below the last applied one), then commit. The
route answers 2xx only after that commit.

What a status does to an attempt is `dialer.domain.attempts.on_status`, the one rule; on
PostgreSQL `dialer.callbacks.fastpath` runs the same rule as one generated statement.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.callbacks.forms import (
    MalformedWebhookError,
    TwilioForm,
    attempt_ref,
    call_status_event,
    mask_number,
    required,
    sms_ids,
    sms_status_event,
)
from dialer.db.models import AttemptRow, InboundMessageRow
from dialer.db.repositories import webhooks as repo
from dialer.domain.attempts import (
    FINAL_STATES,
    AttemptState,
    Held,
    StatusEvent,
    is_machine,
    on_status,
    same_call,
    stronger,
)
from dialer.observability.metrics import Metrics
from dialer.services.optouts import opt_in, opt_out, settle
from strategy.model import Channel, Result

log = logging.getLogger(__name__)

KEY_MAX = 255  # webhook_events.key
OPTED_OUT_ERROR = "21610"  # "Attempt to send to unsubscribed recipient": a permanent opt-out

# Twilio's opt-out words (and newer OPTOUT, REVOKE), with the Chinese 退订 / TD (CBA 2026).
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "退订", "TD"}
)
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# AnsweredBy under MachineDetection=DetectMessageEnd once the machine's greeting is over:
# the moment to leave the voicemail. (machine_start only comes with `Enable`.)
MESSAGE_END = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})
# A `voicemail` claim's status: pending until the redirect's outcome is known.
VOICEMAIL_PENDING = "redirect_pending"
VOICEMAIL_REDIRECTED = "redirected"
VOICEMAIL_FAILED = "redirect_failed"


def event_key(kind: str, form: TwilioForm) -> str:
    """The one deduplication key of every callback we record: the event's identity, made
    only of fields the X-Twilio-Signature covers, so a replayed request is the same event.

    - `voice_status`: CallSid, CallStatus and SequenceNumber;
    - `amd`: CallSid and AnsweredBy;
    - `sms_status`: MessageSid and MessageStatus;
    - `gather`: CallSid, the step (our query string) and Digits;
    - `sms_inbound`: MessageSid (one message, whatever it says).

    Twilio's `I-Twilio-Idempotency-Token` header is not signed: anyone replaying a captured
    request can send a fresh one, so it never decides (and, since a fresh token would make
    any key containing it new, it is not part of the key either)."""
    if kind == "voice_status":
        seq = form.int_of("SequenceNumber")
        parts = ["call", form.get("CallSid"), form.get("CallStatus"), _text(seq)]
    elif kind == "amd":
        parts = ["amd", form.get("CallSid"), form.get("AnsweredBy")]
    elif kind == "sms_status":
        parts = ["sms", *sms_ids(form)]
    elif kind == "gather":
        step = form.query.get("step", "greeting")
        parts = ["gather", form.get("CallSid"), step, (form.get("Digits") or "").strip()]
    elif kind == "sms_inbound":
        parts = ["inbound", form.get("MessageSid")]
    else:
        raise ValueError(f"no deduplication key for {kind!r} callbacks")
    key = "|".join(p or "" for p in parts)
    if len(key) > KEY_MAX:  # the column's width: a long identity is kept whole, as a digest
        key = f"{parts[0]}|sha256|{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


async def _begin(
    session: AsyncSession,
    form: TwilioForm,
    *,
    kind: str,
    sid: str,
    now: datetime,
) -> tuple[int, AttemptRow | None] | None:
    """Record the event under `event_key`: None for a duplicate (absorbed), else the new
    event's id and the attempt it names (None: unknown, the event is kept as `unmatched`)."""
    attempt_id = attempt_ref(form)
    fields: dict[str, Any] = dict(form.fields)
    event_id = await repo.insert_event(
        session,
        key=event_key(kind, form),
        kind=kind,
        attempt_id=attempt_id,
        provider_sid=sid,
        status="received",
        received_at=now,
        fields=fields,
    )
    if event_id is None:
        return None  # a duplicate: absorbed
    attempt = await repo.attempt_for_update(session, attempt_id, sid)
    if attempt is None or not same_call(attempt.state, attempt.provider_sid, sid):
        await repo.set_event_status(session, event_id, "unmatched")
        log.warning("webhook %s for unknown %s kept for reconciliation", kind, sid)
        return event_id, None
    if attempt.provider_sid is None:
        attempt.provider_sid = sid  # the create's answer is not in yet: the callback says it
    return event_id, attempt


def _apply_status(attempt: AttemptRow, event: StatusEvent, now: datetime) -> bool:
    """Apply a provider status through the one rule (`attempts.on_status`); True when it
    moved the attempt."""
    held = Held(
        AttemptState(attempt.state),
        attempt.error_code,
        attempt.last_sequence_number,
        attempt.answered_by,
        attempt.result,
        attempt.duration_seconds,
    )
    moved = on_status(held, event)
    if moved is None:
        return False
    attempt.state = moved.state.value
    attempt.provider_status = moved.provider_status
    attempt.last_sequence_number = moved.last_sequence_number
    attempt.duration_seconds = moved.duration_seconds
    attempt.answered_by = moved.answered_by
    attempt.error_code = moved.error_code
    attempt.result = moved.result
    attempt.updated_at = now
    return True


def _outcome(attempt: AttemptRow, moved: bool) -> tuple[str, str] | None:
    """(channel, result) when this event moved the attempt into a final state."""
    if moved and AttemptState(attempt.state) in FINAL_STATES:
        return attempt.channel, attempt.result
    return None


def count_unmatched(metrics: Metrics | None, kind: str, found: tuple[int, Any] | None) -> None:
    """`dialer_webhook_events_unmatched_total`, after the commit that kept the event."""
    if metrics is not None and found is not None and found[1] is None:
        metrics.record_unmatched_event(kind)


def count_outcome(metrics: Metrics | None, outcome: tuple[str, str] | None) -> None:
    """`dialer_attempts_total`, once per attempt: only the event that moved it into a
    final state (a duplicate or a stale event moves nothing) counts, after its commit."""
    if metrics is not None and outcome is not None:
        metrics.record_attempt(*outcome)


async def record_status(
    session: AsyncSession,
    kind: str,
    form: TwilioForm,
    sid: str,
    event: StatusEvent,
    now: datetime,
    *,
    metrics: Metrics | None = None,
) -> None:
    """A call (`voice_status`) or message (`sms_status`) status callback, committed."""
    found = await _begin(session, form, kind=kind, sid=sid, now=now)
    outcome = None
    if found is not None and found[1] is not None:
        moved = await _apply(session, found[1], event, now)
        outcome = _outcome(found[1], moved)
    await session.commit()
    count_outcome(metrics, outcome)
    count_unmatched(metrics, kind, found)


async def record_call_status(
    session: AsyncSession, form: TwilioForm, now: datetime, *, metrics: Metrics | None = None
) -> None:
    sid, event = call_status_event(form)
    await record_status(session, "voice_status", form, sid, event, now, metrics=metrics)


def call_is_over(form: TwilioForm) -> bool:
    """A call status callback reporting the call's end (completed, busy, no answer...):
    a collector holding the call is then freed or owes wrap-up."""
    _, event = call_status_event(form)
    return event.target in FINAL_STATES


async def record_sms_status(
    session: AsyncSession, form: TwilioForm, now: datetime, *, metrics: Metrics | None = None
) -> None:
    sid, event = sms_status_event(form)
    await record_status(session, "sms_status", form, sid, event, now, metrics=metrics)


async def _apply(
    session: AsyncSession, attempt: AttemptRow, event: StatusEvent, now: datetime
) -> bool:
    """Apply a status event; error 21610 also opts the message's number out of SMS."""
    moved = _apply_status(attempt, event, now)
    if event.error_code == OPTED_OUT_ERROR:
        point = await repo.contact_point(session, attempt.contact_point_id)
        if point is not None:
            await opt_out(
                session,
                [point],
                Channel.SMS,
                source=f"twilio error {OPTED_OUT_ERROR}",
                actor="twilio:sms-status",
                now=now,
            )
    return moved


@dataclass(frozen=True, slots=True)
class VoicemailClaim:
    """This AMD callback is the one that may leave the voicemail on the live call `sid`:
    its claim (a `voicemail` event, one per attempt) is committed with the callback."""

    attempt_id: uuid.UUID
    sid: str
    claim_id: int


async def record_amd(
    session: AsyncSession, form: TwilioForm, now: datetime, *, metrics: Metrics | None = None
) -> VoicemailClaim | None:
    """Asynchronous answering-machine detection: who answered; never moves the state.

    When the machine's greeting has ended (`MESSAGE_END`: DetectMessageEnd heard the beep,
    silence or the end of the greeting) on a call still live, and no voicemail was claimed
    for the attempt yet, the claim is recorded in the same transaction and returned: the
    caller redirects the call after the commit (`voice_flow.leave_voicemail`). A duplicate
    or a second AMD callback finds the claim taken and gets None."""
    sid, answered_by = required(form, "CallSid", "AnsweredBy")
    found = await _begin(session, form, kind="amd", sid=sid, now=now)
    claim = None
    if found is not None and found[1] is not None:
        attempt = found[1]
        _apply_amd(attempt, answered_by, now)
        if answered_by in MESSAGE_END and AttemptState(attempt.state) not in FINAL_STATES:
            claim_id = await repo.insert_event(
                session,
                key=f"voicemail|{attempt.id}",
                kind="voicemail",
                attempt_id=attempt.id,
                provider_sid=sid,
                status=VOICEMAIL_PENDING,
                received_at=now,
                fields={"AnsweredBy": answered_by},
            )
            if claim_id is not None:
                claim = VoicemailClaim(attempt.id, sid, claim_id)
    await session.commit()
    count_unmatched(metrics, "amd", found)
    return claim


def _apply_amd(attempt: AttemptRow, answered_by: str, now: datetime) -> None:
    attempt.answered_by = answered_by
    if is_machine(answered_by):
        # Voicemail outranks what `completed` alone implies, never a conversation.
        attempt.result = stronger(attempt.result, Result.VOICEMAIL)
    attempt.updated_at = now


async def reconcile_unmatched(
    session: AsyncSession,
    now: datetime,
    *,
    older_than: timedelta = timedelta(0),
    limit: int = 200,
    metrics: Metrics | None = None,
) -> int:
    """Apply the events kept as `unmatched` whose call or message is known by now (an
    attempt recorded the provider's sid after its callback came); they become `resolved`.
    Returns how many were applied; the others stay for a later pass or an operator."""
    applied = 0
    kinds: list[str] = []
    for event in await repo.unmatched_events(session, before=now - older_than, limit=limit):
        attempt = await repo.attempt_for_update(session, event.attempt_id, event.provider_sid)
        if attempt is None or not same_call(
            attempt.state, attempt.provider_sid, event.provider_sid
        ):
            continue
        if attempt.provider_sid is None:
            attempt.provider_sid = event.provider_sid
        form = TwilioForm(dict(event.fields), {}, None)
        if event.kind == "amd" and form.get("AnsweredBy"):
            _apply_amd(attempt, form.get("AnsweredBy") or "", now)
        elif event.kind in STATUS_EVENTS:
            status = _stored_status(event.kind, form)
            if status is not None:
                await _apply(session, attempt, status, now)
        await repo.set_event_status(session, event.id, "resolved")
        applied += 1
        kinds.append(event.kind)
    await session.commit()
    if metrics is not None:  # counted once committed
        for kind in kinds:
            metrics.record_reconciled_event(kind)
    return applied


STATUS_EVENTS = {"voice_status": call_status_event, "sms_status": sms_status_event}


def _stored_status(kind: str, form: TwilioForm) -> StatusEvent | None:
    """The status event of a kept callback (its fields were checked when it came)."""
    try:
        return STATUS_EVENTS[kind](form)[1]
    except MalformedWebhookError:
        return None


def classify(body: str) -> str:
    """stop, start, help or text: the whole message must be the keyword."""
    word = body.strip().strip(".!?。！？ ").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "text"


async def record_inbound_sms(
    session: AsyncSession,
    form: TwilioForm,
    now: datetime,
    *,
    clock: Callable[[], datetime] | None = None,
) -> str:
    """Keep the message on every case the sender's number belongs to; act on keywords.
    Returns the message's kind. An opt-out is stamped once its contact points are locked
    (read from `clock`, else `now`): every fence that passed before it has committed by
    then, every later one waits for this commit and sees it (issue 19)."""
    sid, sender = required(form, "MessageSid", "From")
    to = form.get("To") or ""
    body = form.fields.get("Body", "")
    event_id = await repo.insert_event(
        session,
        key=event_key("sms_inbound", form),
        kind="sms_inbound",
        attempt_id=None,
        provider_sid=sid,
        status="received",
        received_at=now,
        fields=dict(form.fields),
    )
    kind = classify(body)
    if event_id is None:
        await session.commit()
        return kind
    points = await repo.phone_points(session, sender)
    source = f"inbound sms {sid}"
    if kind == "stop":
        stamp = clock() if clock is not None else now
        await opt_out(
            session, points, Channel.SMS, source=source, actor="twilio:inbound", now=stamp
        )
    elif kind == "start":
        await opt_in(session, points, Channel.SMS, source=source, actor="twilio:inbound", now=now)
    seen: set[uuid.UUID] = set()
    rows = []
    for point in points:
        if point.case_id in seen:
            continue
        seen.add(point.case_id)
        rows.append(_inbound(point.case_id, point.id, sid, sender, to, body, kind, now))
    if not rows:
        rows.append(_inbound(None, None, sid, sender, to, body, kind, now))
    await repo.add_inbound(session, rows)
    await session.commit()
    if kind == "stop":  # answered only once no create can follow (issue 19)
        await settle(session, [p.id for p in points], Channel.SMS, now)
    log.info("inbound sms %s from %s: %s on %d case(s)", sid, mask_number(sender), kind, len(seen))
    return kind


def _inbound(
    case_id: uuid.UUID | None,
    cp_id: uuid.UUID | None,
    sid: str,
    sender: str,
    to: str,
    body: str,
    kind: str,
    now: datetime,
) -> InboundMessageRow:
    return InboundMessageRow(
        id=uuid.uuid4(),
        case_id=case_id,
        contact_point_id=cp_id,
        provider_sid=sid,
        from_number=sender[:32],
        to_number=to[:32],
        body=body,
        kind=kind,
        received_at=now,
    )
