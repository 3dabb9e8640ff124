"""How jobs travel on RabbitMQ: one job a message, or a bundle of several.

A single job is `Job.to_json` (`application/json`), its retry count in a header. A bundle
is `{"v": 1, "jobs": [job document, ...], "retries": [n, ...]?}`
(`application/vnd.dialer.job-bundle+json`): fewer, larger messages cost the client and
the broker far less per job. Consumers read both formats.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from adapters.ports import DeadLetter, Job

RETRIES_HEADER = "x-dialer-retries"
REPLAYS_HEADER = "x-dialer-replays"
# Deliveries of a job in earlier messages (a bundle) before this single-job message; the
# handler then sees the job as redelivered, and the delivery limit counts them.
DELIVERIES_HEADER = "x-dialer-deliveries"
# Why a worker sent a message straight to the dead letters ("rejected", "delivery_limit").
REASON_HEADER = "x-dialer-dead-reason"
BUNDLE_HEADER = "x-dialer-bundle"  # jobs in a bundle (informative)
JOB_CONTENT_TYPE = "application/json"  # one job: `Job.to_json`
BUNDLE_CONTENT_TYPE = "application/vnd.dialer.job-bundle+json"
BUNDLE_FORMAT_VERSION = 1
REJECTED, DELIVERY_LIMIT = "rejected", "delivery_limit"
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Item:
    """A job on its way to a queue: its `RetryLater` count, and deliveries of it in earlier
    messages (a bundle) that the broker's delivery count of its next message will miss."""

    job: Job
    retries: int = 0
    prior: int = 0


def pick_delay_bucket(wait: timedelta, buckets: Sequence[int]) -> int:
    """The longest bucket not longer than `wait`, else the shortest: never early."""
    seconds = wait.total_seconds()
    fitting = [b for b in sorted(buckets) if b <= seconds]
    return fitting[-1] if fitting else min(buckets)


def group(
    items: Sequence[Item], now: datetime, buckets: Sequence[int], size: int
) -> list[tuple[int, list[Item]]]:
    """Items grouped by destination (0: due now; n: the n-second delay bucket that the
    job's own wait picks, so no job of a bundle is early), each group cut into parts of
    at most `size` jobs, as even as can be (101: 51 + 50)."""
    groups: dict[int, list[Item]] = {}
    for item in items:
        wait = item.job.not_before - now
        key = pick_delay_bucket(wait, buckets) if wait > _ZERO else 0
        groups.setdefault(key, []).append(item)
    out: list[tuple[int, list[Item]]] = []
    for key, members in groups.items():
        count = -(-len(members) // size)
        share = -(-len(members) // count)
        out += [(key, members[i : i + share]) for i in range(0, len(members), share)]
    return out


def encode(
    items: Sequence[Item], timestamp: datetime, extra_headers: HeadersType | None = None
) -> Message:
    """One job in the single-job format (its retries and earlier deliveries in headers),
    or a bundle of several (their retries in the body)."""
    if len(items) == 1:
        item = items[0]
        headers: HeadersType = {RETRIES_HEADER: item.retries}
        if item.prior:
            headers[DELIVERIES_HEADER] = item.prior
        if extra_headers:
            headers.update(extra_headers)
        return Message(
            item.job.to_json(),
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=item.job.attempt_id,
            content_type=JOB_CONTENT_TYPE,
            headers=headers,
            timestamp=timestamp,
        )
    document: dict[str, Any] = {
        "v": BUNDLE_FORMAT_VERSION,
        "jobs": [item.job.to_document() for item in items],
    }
    if any(item.retries for item in items):
        document["retries"] = [item.retries for item in items]
    return Message(
        json.dumps(document, separators=(",", ":"), sort_keys=True).encode(),
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=f"bundle-{uuid.uuid4().hex}",
        content_type=BUNDLE_CONTENT_TYPE,
        headers={BUNDLE_HEADER: len(items), **(extra_headers or {})},
        timestamp=timestamp,
    )


def parse_bundle(body: bytes) -> list[Item]:
    """A bundle's jobs; `ValueError` for anything malformed."""
    try:
        data = json.loads(body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed bundle: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != BUNDLE_FORMAT_VERSION:
        raise ValueError(f"unsupported bundle format: {data!r:.200}")
    documents = data.get("jobs")
    if not isinstance(documents, list) or not documents:
        raise ValueError("a bundle holds a non-empty list of jobs")
    retries = data.get("retries") or [0] * len(documents)
    if not isinstance(retries, list) or len(retries) != len(documents):
        raise ValueError("a bundle's retries must match its jobs")
    try:
        return [
            Item(Job.from_document(doc), r if isinstance(r, int) else 0)
            for doc, r in zip(documents, retries, strict=True)
        ]
    except ValueError:
        raise
    except Exception as exc:  # a job document of the wrong shape, whatever it trips on
        raise ValueError(f"malformed job in a bundle: {exc!r}") from exc


def int_header(headers: HeadersType, name: str) -> int:
    value = headers.get(name)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str | bytes) and value.strip().isdigit():
        return int(value)
    return 0


def dead_letters_of(message: AbstractIncomingMessage) -> list[DeadLetter]:
    """A dead letter per job: one for a single-job message, one per job of a bundle."""
    reason, died_at = _death(message)
    if message.content_type == BUNDLE_CONTENT_TYPE:
        try:
            items = parse_bundle(message.body)
        except ValueError:
            items = []
        if items:
            return [
                DeadLetter(
                    message_id=item.job.attempt_id,
                    job=item.job,
                    reason=reason,
                    died_at=died_at,
                    raw=item.job.to_json(),
                )
                for item in items
            ]
    try:
        job: Job | None = Job.from_json(message.body)
    except ValueError:
        job = None
    if job is None and reason == "unknown":
        reason = "malformed"
    return [
        DeadLetter(
            message_id=message.message_id or (job.attempt_id if job else ""),
            job=job,
            reason=reason,
            died_at=died_at,
            raw=message.body,
        )
    ]


def _death(message: AbstractIncomingMessage) -> tuple[str, datetime | None]:
    """Why and when the message died: the broker's latest `x-death`, or a worker's own
    reason header (it buried the message itself)."""
    headers = message.headers or {}
    reason, died_at = "unknown", None
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        latest = deaths[0]  # RabbitMQ puts the most recent death first
        reason = str(latest.get("reason", reason))
        when = latest.get("time")
        if isinstance(when, datetime):
            died_at = when
    own = headers.get(REASON_HEADER)
    if isinstance(own, bytes | str):
        reason = own.decode() if isinstance(own, bytes) else own
        died_at = message.timestamp
    if died_at is not None and died_at.tzinfo is None:
        died_at = died_at.replace(tzinfo=UTC)
    return reason, died_at
