"""Provider callbacks as events on attempts (architecture invariants 5-7).

Each handler, in one transaction: record the event under its idempotency key (a duplicate
changes nothing), find the attempt (our id from the callback URL first, the provider's
sid second; none: the event is kept as `unmatched` for the reconciler), move the attempt
only through `dialer.domain.attempts.advance` (never backwards, never out of a final
state, never on a SequenceNumber at or below the last applied one), then commit. The
route answers 2xx only after that commit.

Results only get stronger (`stronger`): a keypad promise is not undone by the
`completed` status that follows it, and an answering machine reported after completion
still turns `no_answer` into `voicemail`.
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

from dialer.callbacks.forms import MalformedWebhookError, TwilioForm, mask_number
from dialer.db.models import AttemptRow, InboundMessageRow
from dialer.db.repositories import webhooks as repo
from dialer.domain.attempts import (
    CALL_STATUS,
    FINAL_STATES,
    MESSAGE_STATUS,
    AttemptState,
    advance,
    inferred_by_reconciler,
)
from dialer.observability.metrics import Metrics
from dialer.services.optouts import opt_in, opt_out, settle
from strategy.model import Channel, Result

log = logging.getLogger(__name__)

RESULT_RANK: dict[Result, int] = {
    Result.PENDING: 0,
    Result.FAILED: 1,
    Result.NO_ANSWER: 1,
    Result.BUSY: 1,
    Result.DELIVERED: 1,
    Result.VOICEMAIL: 2,
    Result.THIRD_PARTY: 3,
    Result.RIGHT_PARTY: 3,
    Result.CALLBACK_REQUESTED: 4,
    Result.PROMISE_TO_PAY: 4,
    Result.REFUSAL: 4,
    Result.DISPUTE: 4,
    Result.WRONG_NUMBER: 4,
}

# A call's final status -> its result when nothing stronger is known.
CALL_RESULTS = {
    "busy": Result.BUSY,
    "no-answer": Result.NO_ANSWER,
    "failed": Result.FAILED,
    "canceled": Result.FAILED,
    "completed": Result.NO_ANSWER,  # answered, but nobody confirmed who they are
}
MESSAGE_RESULTS = {
    "delivered": Result.DELIVERED,
    "read": Result.DELIVERED,
    "undelivered": Result.FAILED,
    "failed": Result.FAILED,
    "canceled": Result.FAILED,
}
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


def stronger(current: str, new: Result) -> str:
    """The result to keep: the new one unless the current one says more."""
    try:
        held = Result(current)
    except ValueError:
        return new.value
    return new.value if RESULT_RANK[new] >= RESULT_RANK[held] else held.value


def is_machine(answered_by: str | None) -> bool:
    return bool(answered_by) and (answered_by or "").startswith("machine")


def attempt_ref(form: TwilioForm) -> uuid.UUID | None:
    raw = form.query.get("attempt")
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None  # not one of ours: map by the provider's sid instead


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
        sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        parts = ["sms", sid, form.get("MessageStatus") or form.get("SmsStatus")]
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
    if attempt is None:
        await repo.set_event_status(session, event_id, "unmatched")
        log.warning("webhook %s for unknown %s kept for reconciliation", kind, sid)
        return event_id, None
    if attempt.provider_sid is None:
        attempt.provider_sid = sid  # the create response was lost: the callback tells us
    return event_id, attempt


def _move(attempt: AttemptRow, target: AttemptState, now: datetime) -> bool:
    inferred = inferred_by_reconciler(attempt.state, attempt.error_code)
    new = advance(AttemptState(attempt.state), target, inferred=inferred)
    if new is None:
        return False
    attempt.state = new.value
    attempt.updated_at = now
    if inferred:  # the provider corrected the reconciler's conclusion
        attempt.error_code = None
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


def _required(form: TwilioForm, *names: str) -> list[str]:
    values = [form.get(n) for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if v is None]
    if missing:
        raise MalformedWebhookError(f"missing {', '.join(missing)}")
    return [v or "" for v in values]


async def record_call_status(
    session: AsyncSession, form: TwilioForm, now: datetime, *, metrics: Metrics | None = None
) -> None:
    sid, status = _required(form, "CallSid", "CallStatus")
    if status not in CALL_STATUS:
        raise MalformedWebhookError(f"unknown CallStatus {status!r}")
    seq = form.int_of("SequenceNumber")
    form.int_of("CallDuration")  # checked before anything is written (400 naming it)
    found = await _begin(session, form, kind="voice_status", sid=sid, now=now)
    outcome = None
    if found is not None and found[1] is not None:
        moved = _apply_call_status(found[1], form, status, seq, now)
        outcome = _outcome(found[1], moved)
    await session.commit()
    count_outcome(metrics, outcome)
    count_unmatched(metrics, "voice_status", found)


def _apply_call_status(
    attempt: AttemptRow, form: TwilioForm, status: str, seq: int | None, now: datetime
) -> bool:
    """Apply a call status; True when it moved the attempt."""
    last = attempt.last_sequence_number
    if seq is not None and last is not None and seq <= last:
        return False  # stale: an earlier event arriving late
    if seq is not None:
        attempt.last_sequence_number = seq
    answered_by = form.get("AnsweredBy")
    if answered_by:
        attempt.answered_by = answered_by
    if not _move(attempt, CALL_STATUS[status], now):
        return False
    attempt.provider_status = status
    duration = form.int_of("CallDuration")
    if duration is not None:
        attempt.duration_seconds = duration
    result = call_result(status, attempt.answered_by)
    if result is not None:
        attempt.result = stronger(attempt.result, result)
    return True


def call_result(status: str, answered_by: str | None) -> Result | None:
    """What a call's final status says of its result (None: nothing yet); a completed call
    a machine answered is a voicemail."""
    result = CALL_RESULTS.get(status)
    if result is not None and status == "completed" and is_machine(answered_by):
        return Result.VOICEMAIL
    return result


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
    sid, answered_by = _required(form, "CallSid", "AnsweredBy")
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


async def record_sms_status(
    session: AsyncSession, form: TwilioForm, now: datetime, *, metrics: Metrics | None = None
) -> None:
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise MalformedWebhookError("missing MessageSid or MessageStatus")
    if status not in MESSAGE_STATUS:
        raise MalformedWebhookError(f"unknown MessageStatus {status!r}")
    error = form.get("ErrorCode")
    found = await _begin(session, form, kind="sms_status", sid=sid, now=now)
    outcome = None
    if found is not None and found[1] is not None:
        moved = await _apply_sms_status(session, found[1], status, error, now)
        outcome = _outcome(found[1], moved)
    await session.commit()
    count_outcome(metrics, outcome)
    count_unmatched(metrics, "sms_status", found)


async def _apply_sms_status(
    session: AsyncSession, attempt: AttemptRow, status: str, error: str | None, now: datetime
) -> bool:
    """Apply a message status; True when it moved the attempt."""
    if error:
        attempt.error_code = error
    moved = _move(attempt, MESSAGE_STATUS[status], now)
    if moved:
        attempt.provider_status = status
        result = MESSAGE_RESULTS.get(status)
        if result is not None:
            attempt.result = stronger(attempt.result, result)
    if error == OPTED_OUT_ERROR:
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
        if attempt is None:
            continue
        if attempt.provider_sid is None:
            attempt.provider_sid = event.provider_sid
        form = TwilioForm(dict(event.fields), {}, None)
        status = form.get("CallStatus") or form.get("MessageStatus") or ""
        if event.kind == "voice_status" and status in CALL_STATUS:
            _apply_call_status(attempt, form, status, form.int_of("SequenceNumber"), now)
        elif event.kind == "amd" and form.get("AnsweredBy"):
            _apply_amd(attempt, form.get("AnsweredBy") or "", now)
        elif event.kind == "sms_status" and status in MESSAGE_STATUS:
            await _apply_sms_status(session, attempt, status, form.get("ErrorCode"), now)
        await repo.set_event_status(session, event.id, "resolved")
        applied += 1
        kinds.append(event.kind)
    await session.commit()
    if metrics is not None:  # counted once committed
        for kind in kinds:
            metrics.record_reconciled_event(kind)
    return applied


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
    sid, sender = _required(form, "MessageSid", "From")
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
