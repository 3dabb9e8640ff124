"""A collector at the desk: their state, the one rule that moves it, and where calls reach them.

    offline -> available <-> away
    available -> reserved (the dialer holds a call for them) -> on_call -> wrap_up -> available
    reserved -> available (the held call was not answered by a person, or was abandoned)
    wrap_up -> away (the campaign's wrap-up limit passed with the record not filed)
    any state -> offline (logged out, or the desk disconnected: the call in hand is recorded)

Wrap-up is owed from the end of a bridged call (`wrap_up_due_at` set) until its record
(outcome, notes, summary) is filed; while it is owed the agent never becomes `available`
(`owes_wrap_up`), whatever state they pass through meanwhile (away, offline). An agent is
offered a call only while `available`, and `reserved` is taken with a compare-and-set in
the database, so no agent holds two calls. Every move, whoever makes it, is made and
audited by `db.repositories.agents.move`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import phonenumbers


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"  # a dialled call is held for this agent
    ON_CALL = "on_call"  # bridged to a verified party
    WRAP_UP = "wrap_up"  # the call ended; the record is owed
    AWAY = "away"  # logged in, taking no calls


AGENT_MOVES: dict[AgentState, frozenset[AgentState]] = {
    AgentState.OFFLINE: frozenset({AgentState.AVAILABLE, AgentState.AWAY}),
    AgentState.AVAILABLE: frozenset({AgentState.RESERVED, AgentState.AWAY, AgentState.OFFLINE}),
    AgentState.RESERVED: frozenset({AgentState.ON_CALL, AgentState.AVAILABLE, AgentState.OFFLINE}),
    AgentState.ON_CALL: frozenset({AgentState.WRAP_UP, AgentState.OFFLINE}),
    AgentState.WRAP_UP: frozenset({AgentState.AVAILABLE, AgentState.AWAY, AgentState.OFFLINE}),
    AgentState.AWAY: frozenset({AgentState.AVAILABLE, AgentState.OFFLINE}),
}

# 16 CFR 310.4(b)(4)(i) (US TSR) and Ofcom's persistent-misuse policy: a call answered by a
# person is abandoned unless a live agent is connected within 2 seconds of the completed
# greeting. The wait for a collector is bounded by this, and the recorded message plays
# when it passes.
ABANDON_AFTER_S = 2.0
# TwiML <Pause> lengths are whole seconds: a waiting call is asked again after this.
HOLD_PAUSE_S = 1

# The actor the audit log names for the dialer's own moves of an agent (holds, bridges,
# ends of calls, the wrap-up limit); the reconciler's are `reconciler`.
DIALER = "dialer"

# Seconds wrap-up is owed after a call when the campaign sets no limit of its own.
DEFAULT_WRAP_UP_LIMIT_S = 120

# The states an agent may set on themselves (the dialer sets reserved and on_call, and the
# end of a call sets wrap_up).
SELF_SET = frozenset({AgentState.AVAILABLE, AgentState.AWAY, AgentState.OFFLINE})
# Busy with a call: counted as working time, never offered another call.
BUSY = frozenset({AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP})


def may_move(current: AgentState, target: AgentState) -> bool:
    """Whether an agent in `current` may move to `target` (staying put is not a move)."""
    return target in AGENT_MOVES[current]


def owes_wrap_up(wrap_up_due_at: datetime | None) -> bool:
    """Whether the record of the agent's last bridged call is still owed (set when the
    call ends, cleared only by filing it): until it is filed, no next call."""
    return wrap_up_due_at is not None


def cleared_by(current: AgentState, target: AgentState, *, owes: bool) -> dict[str, None]:
    """The columns a move empties besides the state: away or offline leave the campaign;
    offline drops the call in hand (it stays recorded on its attempt), unless its wrap-up
    is owed, which survives going away or offline and must still be filed."""
    cleared: dict[str, None] = {}
    if target in (AgentState.OFFLINE, AgentState.AWAY):
        cleared["campaign_id"] = None
    if target is AgentState.OFFLINE and not owes:
        cleared["attempt_id"] = None
        cleared["wrap_up_due_at"] = None
    return cleared


WRAP_UP_OVERDUE = "wrap-up overdue"


def away_reason(
    state: AgentState, wrap_up_due_at: datetime | None, state_since: datetime
) -> str | None:
    """Why an agent is away, when it is the dialer's business: they went away (the
    dialer moved them, `dispatch.agents.send_away_overdue`) at or after their wrap-up
    limit with the record still not filed. What a supervisor sees beside the state."""
    if state is not AgentState.AWAY or wrap_up_due_at is None:
        return None
    if (wrap_up_due_at.tzinfo is None) != (state_since.tzinfo is None):  # SQLite: naive UTC
        wrap_up_due_at = wrap_up_due_at.replace(tzinfo=state_since.tzinfo)
    return WRAP_UP_OVERDUE if state_since >= wrap_up_due_at else None


class EndpointKind(StrEnum):
    CLIENT = "client"  # a Twilio Voice SDK identity (the browser desk)
    PHONE = "phone"  # an E.164 number
    SIP = "sip"  # a SIP URI


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """Where a bridged call reaches the agent: `client:<identity>`, `+<E.164>` or `sip:..`."""

    kind: EndpointKind
    address: str

    def __str__(self) -> str:
        return f"client:{self.address}" if self.kind is EndpointKind.CLIENT else self.address


_CLIENT = re.compile(r"[A-Za-z0-9_.-]{1,121}")  # Twilio client identities: no spaces
_SIP = re.compile(r"sips?:[^@\s]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?")


class EndpointError(ValueError):
    """The endpoint text is none of the three forms; the message says which forms exist."""


def parse_endpoint(text: str) -> AgentEndpoint:
    """`client:alice`, `+8613800138000` or `sip:alice@pbx.example.com`, else EndpointError."""
    value = text.strip()
    if value.startswith("client:"):
        identity = value.removeprefix("client:")
        if not _CLIENT.fullmatch(identity):
            raise EndpointError("a client identity is 1-121 letters, digits, '_', '.' or '-'")
        return AgentEndpoint(EndpointKind.CLIENT, identity)
    if value.startswith(("sip:", "sips:")):
        if not _SIP.fullmatch(value):
            raise EndpointError("a SIP endpoint looks like sip:user@host[:port]")
        return AgentEndpoint(EndpointKind.SIP, value)
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise EndpointError(
            "an endpoint is client:<identity>, a phone number in E.164 (+8613800138000)"
            " or sip:user@host"
        )
    return AgentEndpoint(
        EndpointKind.PHONE, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    )


def endpoint_for(text: str, agent: str, *, by_supervisor: bool) -> AgentEndpoint:
    """The one check of an agent's endpoint: its form (`parse_endpoint`) and who may set
    it. A client identity is only the agent's own name (`client:<agent>`, the browser
    desk); a phone number or SIP URI takes verified debtors' calls off the desk, so only a
    supervisor or admin sets one for an agent (never the agent). Else EndpointError."""
    parsed = parse_endpoint(text)
    if parsed.kind is EndpointKind.CLIENT and parsed.address != agent:
        raise EndpointError(f"a client endpoint is the agent's own identity: client:{agent}")
    if parsed.kind is not EndpointKind.CLIENT and not by_supervisor:
        raise EndpointError(
            f"an agent sets only its own browser identity (client:{agent}); a phone number"
            " or SIP URI is set by a supervisor (PUT /v1/agents/{name}/endpoint)"
        )
    return parsed


class DialingMode(StrEnum):
    IVR = "ivr"  # the automated flow; no agent
    PREVIEW = "preview"  # the agent sees the case first and starts the call
    PROGRESSIVE = "progressive"  # one call per free agent
    PREDICTIVE = "predictive"  # more calls than free agents, within the abandonment limit


AGENT_MODES = frozenset({DialingMode.PREVIEW, DialingMode.PROGRESSIVE, DialingMode.PREDICTIVE})
