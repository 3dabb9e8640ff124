"""The facts the engine decides on: a case, its parties and contact points, its history.

Plain frozen dataclasses, standard library only. The engine never mutates them; the
service builds them from its database rows, tests and the preview API from literals.
All datetimes are timezone-aware instants; dates are calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Channel(StrEnum):
    """How a contact is made. Fax is deliberately absent: the source forbids it."""

    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


CHANNELS_BY_KIND: dict[ContactKind, tuple[Channel, ...]] = {
    ContactKind.PHONE: (Channel.VOICE, Channel.SMS),
    ContactKind.EMAIL: (Channel.EMAIL,),
}


class PartyRole(StrEnum):
    DEBTOR = "debtor"
    GUARANTOR = "guarantor"
    CO_BORROWER = "co_borrower"
    THIRD_PARTY = "third_party"
    ATTORNEY = "attorney"


# Parties who owe or answer for the debt themselves (GB/T 45251-2025: "debt-related").
DEBT_RELATED_ROLES = frozenset({PartyRole.DEBTOR, PartyRole.GUARANTOR, PartyRole.CO_BORROWER})


class Disclosure(StrEnum):
    """What may be said: nothing about any debt, who is calling and for whom, or the debt."""

    NONE = "none"
    IDENTITY = "identity"
    FULL = "full"

    @property
    def rank(self) -> int:
        return _DISCLOSURE_RANK[self]

    @staticmethod
    def lowest(*levels: Disclosure) -> Disclosure:
        return min(levels, key=_DISCLOSURE_RANK.__getitem__)


_DISCLOSURE_RANK = {Disclosure.NONE: 0, Disclosure.IDENTITY: 1, Disclosure.FULL: 2}


class Validity(StrEnum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    WRONG_NUMBER = "wrong_number"
    INVALID = "invalid"


class CaseStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    CLOSED = "closed"
    SUSPENDED = "suspended"


class Stage(StrEnum):
    """B2B receivables stages; consumer loans stay in `collection`."""

    BILL_CONFIRMATION = "bill_confirmation"
    PAYMENT = "payment"
    COLLECTION = "collection"


class CaseFlag(StrEnum):
    DISPUTE = "dispute"
    CEASE = "cease"
    BANKRUPTCY = "bankruptcy"
    DECEASED = "deceased"
    ATTORNEY = "attorney"
    DO_NOT_CALL = "do_not_call"


class Result(StrEnum):
    """An attempt's outcome as history sees it. `pending` is reserved or in flight."""

    PENDING = "pending"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    DELIVERED = "delivered"
    RIGHT_PARTY = "right_party"
    THIRD_PARTY = "third_party"
    PROMISE_TO_PAY = "promise_to_pay"
    CALLBACK_REQUESTED = "callback_requested"
    REFUSAL = "refusal"
    WRONG_NUMBER = "wrong_number"
    DISPUTE = "dispute"


# A conversation with a person who answered (counts against conversation caps and starts
# the quiet period when it was the right party).
CONVERSATION_RESULTS = frozenset(
    {
        Result.RIGHT_PARTY,
        Result.THIRD_PARTY,
        Result.PROMISE_TO_PAY,
        Result.CALLBACK_REQUESTED,
        Result.REFUSAL,
        Result.DISPUTE,
    }
)
# Results that show the party on the line was the one we wanted (right-party contact).
RIGHT_PARTY_RESULTS = frozenset(
    {Result.RIGHT_PARTY, Result.PROMISE_TO_PAY, Result.DISPUTE, Result.CALLBACK_REQUESTED}
)


@dataclass(frozen=True, slots=True)
class ContactPoint:
    id: str
    kind: ContactKind
    value: str  # E.164 for phones, an address for email
    consent: frozenset[Channel] = frozenset()  # prior express consent (TCPA) per channel
    opted_out: frozenset[Channel] = frozenset()  # STOP, 退订, keypad 9, cease per channel
    validity: Validity = Validity.UNVERIFIED
    timezone: str | None = None  # IANA zone if known
    do_not_call: bool = False
    mobile: bool | None = None  # None: derive from the number
    # The number's candidate zones as `phonenumbers` places them, when the caller stored
    # them (the dialer does at import). Given, they and `mobile` are taken as the number's
    # facts (mobile None then means unknown); None: derive both from the number here.
    zones: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    role: PartyRole
    name: str = ""
    relation: str | None = None  # for third parties: reference, relative, colleague, ...
    knows_of_debt: bool = False
    refused_contact: bool = False
    timezone: str | None = None
    title: str | None = None  # salutation for B2B email ("Ms.", "Finance Director")
    contact_points: tuple[ContactPoint, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordedUnreachable:
    """A recorded fact: the debtor could not be reached from `since` until `until` (its
    expiry), as found by `source` ("skip-trace", an agent's search). The engine treats the
    debtor as unreachable while since <= now < until, whatever today's attempts say."""

    since: datetime
    until: datetime
    source: str


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    amount: Decimal
    currency: str
    due_date: date
    balance: Decimal | None = None  # None: the full amount is outstanding
    stage: Stage = Stage.COLLECTION
    stage_started_on: date | None = None
    status: CaseStatus = CaseStatus.OPEN
    flags: frozenset[CaseFlag] = frozenset()
    parties: tuple[Party, ...] = ()
    portfolio: str = "default"
    dispute_resolved_at: datetime | None = None
    recorded_unreachable: RecordedUnreachable | None = None

    @property
    def outstanding(self) -> Decimal:
        return self.amount if self.balance is None else self.balance


@dataclass(frozen=True, slots=True)
class Attempt:
    """One past (or reserved) contact attempt and, once known, its outcome."""

    at: datetime
    channel: Channel
    party_id: str
    contact_point_id: str
    result: Result = Result.PENDING
    id: str = ""
    promise_amount: Decimal | None = None
    promise_date: date | None = None
    callback_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class History:
    attempts: tuple[Attempt, ...] = ()
    # Payments received, as (instant, amount): a payment after a promise keeps it.
    payments: tuple[tuple[datetime, Decimal], ...] = field(default=())


class DecisionInputError(ValueError):
    """The facts handed to the engine contradict themselves: deciding on them would be
    silently wrong, so the engine refuses (the API answers 422). `field` names the input,
    e.g. "history.attempts[2].party_id"."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownReference(DecisionInputError):
    """An attempt names a party or contact point that is not in the case, or a contact
    point of another party: counted as anyone's, it would lift a cap or a rule."""


class ProfileMismatch(DecisionInputError):
    """A strategy decided under a guardrail profile that is neither its own nor one that
    declares itself a tightening of it (`GuardrailProfile.tightens`)."""
