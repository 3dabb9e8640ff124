"""The ports: small abstract classes the service talks to, and the values they carry.

Nothing here names a vendor. Each port has a production adapter (RabbitMQ, Twilio, SMTP),
an embedded default where one makes sense (the in-process queue), and fakes in
`adapters.fakes` that record what they were asked.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JOB_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Job:
    """One planned contact attempt to carry out no earlier than `not_before`."""

    attempt_id: str
    case_id: str
    campaign_id: str | None
    not_before: datetime  # timezone-aware
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.not_before.tzinfo is None:
            raise ValueError("Job.not_before must be timezone-aware")

    def to_document(self) -> dict[str, Any]:
        """The job's JSON document as a dict (what `to_json` writes)."""
        return {
            "v": JOB_FORMAT_VERSION,
            "attempt_id": self.attempt_id,
            "case_id": self.case_id,
            "campaign_id": self.campaign_id,
            "not_before": self.not_before.isoformat(),
            "payload": self.payload,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Job:
        """Parse a job; raises `ValueError` on anything malformed or of an unknown version."""
        try:
            data = json.loads(raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"malformed job: {exc}") from exc
        return cls.from_document(data)

    @classmethod
    def from_document(cls, data: Any) -> Job:
        """A job from its parsed JSON document; `ValueError` as `from_json`."""
        try:
            if not isinstance(data, dict) or data.get("v") != JOB_FORMAT_VERSION:
                raise ValueError(f"unsupported job format: {data!r:.200}")
            payload = data.get("payload") or {}
            if not isinstance(payload, dict):
                raise ValueError("job payload must be an object")
            return cls(
                attempt_id=str(data["attempt_id"]),
                case_id=str(data["case_id"]),
                campaign_id=None if data.get("campaign_id") is None else str(data["campaign_id"]),
                not_before=datetime.fromisoformat(data["not_before"]),
                payload=payload,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed job: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Delivery:
    """A job as handed to a handler. `redelivered` is set when an earlier delivery of this
    message may have reached a handler that did not acknowledge it (a crash, a dropped
    connection): the handler must then check whether the attempt was already carried out."""

    job: Job
    redelivered: bool = False
    delivery_count: int = 1  # deliveries of this message so far, this one included
    retries: int = 0  # times a handler asked for `RetryLater` on this job


# A handler returns to acknowledge, raises `RetryLater` to run again later,
# `PermanentJobError` to dead-letter at once; any other exception redelivers the job
# until the delivery limit sends it to the dead letters.
JobHandler = Callable[[Delivery], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str  # the attempt id for well-formed jobs
    job: Job | None  # None when the body could not be parsed
    reason: str  # "rejected", "delivery_limit", "expired", "malformed", ...
    died_at: datetime | None = None
    raw: bytes = b""


class JobQueue(ABC):
    @abstractmethod
    async def publish(self, jobs: Sequence[Job]) -> None:
        """Enqueue jobs; returns once the queue has accepted all of them (broker confirms).
        Raises `QueueError` otherwise; republishing is safe."""

    @abstractmethod
    async def consume(self, handler: JobHandler, concurrency: int) -> None:
        """Start handing due jobs to `handler`, at most `concurrency` at a time; returns once
        consuming has started. `close()` stops it."""

    @abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest dead letters, without removing them."""

    @abstractmethod
    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters back to the work queue (all when `message_ids` is None);
        returns how many were moved."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming, let running handlers finish, release connections."""


# --- telephony ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """The provider's handle on what we asked for: a call or message SID, a Message-ID."""

    provider: str
    id: str
    status: str | None = None


@dataclass(frozen=True, slots=True)
class CallRequest:
    attempt_id: str
    to: str  # E.164
    from_number: str  # E.164, a number we own
    ring_timeout_seconds: int | None = None
    time_limit_seconds: int | None = None
    # `time.monotonic()` after which the request must not leave (the dispatch fence's send
    # window): the adapter raises `TransientError` instead. None: no deadline.
    send_by: float | None = None
    # Answering-machine detection: the automated flow needs it; a call for a collector
    # skips it (its silence after "hello" would abandon live answers).
    machine_detection: bool = True


@dataclass(frozen=True, slots=True)
class SmsRequest:
    attempt_id: str
    to: str  # E.164
    body: str  # rendered, opt-out text included where required
    from_number: str | None = None  # None: the adapter's messaging service or default number
    send_by: float | None = None  # as `CallRequest.send_by`


@dataclass(frozen=True, slots=True)
class CallInfo:
    sid: str
    status: str  # queued, ringing, in-progress, completed, busy, failed, no-answer, canceled
    to: str
    from_number: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    duration_seconds: int | None = None
    answered_by: str | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    sid: str
    status: str  # queued, sending, sent, delivered, undelivered, failed, ...
    to: str
    error_code: int | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None  # None while the provider still holds it (queued)


class Telephony(ABC):
    @abstractmethod
    async def place_call(self, request: CallRequest) -> ProviderRef: ...

    @abstractmethod
    async def send_sms(self, request: SmsRequest) -> ProviderRef: ...

    @abstractmethod
    async def fetch_call(self, sid: str) -> CallInfo: ...

    @abstractmethod
    async def fetch_message(self, sid: str) -> MessageInfo: ...

    @abstractmethod
    async def find_calls(self, to: str, after: datetime) -> list[CallInfo]:
        """Calls to `to` created at or after `after`, newest first: for the reconciler of
        attempts left `unknown` by an ambiguous create."""

    @abstractmethod
    async def find_messages(self, to: str, after: datetime) -> list[MessageInfo]:
        """Messages to `to` created at or after `after`, newest first: for the reconciler
        of texts left `unknown` or `reserved` without a provider id (was it ever sent?)."""

    async def update_call(self, sid: str, twiml_url: str) -> None:
        """Redirect a live call: the provider fetches its next TwiML from `twiml_url` (POST)
        and stops whatever the call was playing (e.g. the greeting, to leave a voicemail
        once answering-machine detection heard the beep). At most once per request: a
        failure that may have acted is an `AmbiguousError`, never retried here.

        Concrete with a refusing default so existing implementations keep working; every
        real telephony overrides it."""
        raise NotImplementedError(f"{type(self).__name__} cannot update a live call")

    async def close(self) -> None:
        """Release connections; nothing to release by default."""
        return None


# --- email -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailMessage:
    attempt_id: str
    to: str
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(ABC):
    @abstractmethod
    async def send(self, message: EmailMessage) -> ProviderRef:
        """Hand the message to the mail server; the ProviderRef id is our Message-ID."""
