"""Status callbacks on PostgreSQL in one statement: the event row and the attempt's move,
atomic, in one round trip (Twilio's status callbacks are most of the webhook traffic).

The statement is the one rule, `dialer.domain.attempts.on_status`, generated from its
tables: the states that may move to the event's target (`attempts.sources`, with the
reconciler's corrections), the result ranking (`RESULT_RANK`) and the machine prefix.
`tests/dialer/callbacks/test_status_rule.py` runs it against `on_status` for every
(state, event) pair. Like `dialer.callbacks.apply`, the event is inserted unless its
idempotency key is known (a duplicate changes nothing) and an event naming no known
attempt is kept as `unmatched`. One statement in autocommit is one transaction: the event
is committed before the route answers.

It runs on its own asyncpg pool: SQLAlchemy's pre-ping (a transaction of its own per
checkout) and explicit BEGIN/COMMIT would triple the round trips of the hottest path.
Anything unusual (SQLite, error 21610 that must opt a number out) takes the session path.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from dialer.callbacks.apply import count_outcome, event_key
from dialer.callbacks.forms import TwilioForm, attempt_ref
from dialer.core.settings import Settings
from dialer.domain.attempts import (
    AWAITING_SID,
    FINAL_STATES,
    INFERRED_FAILURE,
    MACHINE_PREFIX,
    RESULT_RANK,
    StatusEvent,
    sources,
)
from dialer.observability.metrics import Metrics
from strategy.model import Result

POOL_SIZE = 10


def _rank(expr: str) -> str:
    whens = " ".join(f"WHEN '{r.value}' THEN {n}" for r, n in RESULT_RANK.items())
    return f"(CASE {expr} {whens} ELSE -1 END)"


# Every value is a parameter:
# $1 key, $2 kind, $3 attempt id, $4 provider sid, $5 received at, $6 fields (json),
# $7 target state, $8 source states, $9 provider status, $10 sequence number,
# $11 duration, $12 answered by, $13 result (null: none), $14 error code,
# $15 source states only a failure the reconciler inferred may leave, $16 its error code,
# $17 the states whose attempt may have a live call with no sid recorded yet
# (`attempts.same_call`: a callback naming an attempt with another call is unmatched)
# A completed call a machine answered is a voicemail (`attempts.call_result`).
_NEW_RESULT = (
    f"(CASE WHEN $2::text = 'voice_status' AND $9::text = 'completed'"
    f" AND COALESCE($12::text, a.answered_by, '') LIKE '{MACHINE_PREFIX}%'"
    f" THEN '{Result.VOICEMAIL.value}' ELSE $13::text END)"
)
STATEMENT = f"""
WITH target AS (
    (SELECT id FROM attempts WHERE id = $3::uuid
       AND $4::text IS NOT NULL
       AND (provider_sid = $4::text OR (provider_sid IS NULL AND state = ANY($17::text[])))
     UNION ALL
     SELECT id FROM attempts WHERE $3::uuid IS NULL AND provider_sid = $4::text)
    LIMIT 1
), ev AS (
    INSERT INTO webhook_events (key, kind, attempt_id, provider_sid, status, received_at, fields)
    SELECT $1::text, $2::text, $3::uuid, $4::text, CASE WHEN EXISTS (SELECT 1 FROM target)
        THEN 'received' ELSE 'unmatched' END, $5::timestamptz, $6::jsonb
    ON CONFLICT (key) DO NOTHING
    RETURNING id, status
), up AS (
    UPDATE attempts AS a SET
        state = $7::text,
        provider_sid = COALESCE(a.provider_sid, $4::text),
        provider_status = $9::text,
        last_sequence_number = COALESCE($10::int, a.last_sequence_number),
        duration_seconds = COALESCE($11::int, a.duration_seconds),
        answered_by = COALESCE($12::text, a.answered_by),
        error_code = COALESCE($14::text, NULLIF(a.error_code, $16::text)),
        result = CASE
            WHEN $13::text IS NULL THEN a.result
            WHEN {_rank("a.result")} <= {_rank(_NEW_RESULT)} THEN {_NEW_RESULT}
            ELSE a.result END,
        updated_at = $5::timestamptz
    FROM target
    WHERE a.id = target.id
      AND EXISTS (SELECT 1 FROM ev)
      AND (a.state = ANY($8::text[]) OR (a.state = ANY($15::text[]) AND a.error_code = $16::text))
      AND ($10::int IS NULL OR a.last_sequence_number IS NULL OR a.last_sequence_number < $10)
    RETURNING a.id, a.channel, a.result
)
SELECT (SELECT id FROM ev) AS event_id, (SELECT status FROM ev) AS event_status,
    (SELECT id FROM up) AS moved,
    (SELECT channel FROM up) AS channel, (SELECT result FROM up) AS result,
    (SELECT t.id FROM target AS t WHERE EXISTS
        (SELECT 1 FROM agents AS g WHERE g.attempt_id = t.id)) AS agent_attempt
"""  # noqa: S608  (built only from this module's constant tables; values are parameters)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (`RESET ALL; UNLISTEN *; ...`): a
    round trip per request for nothing, as this pool only runs `STATEMENT` in autocommit
    and never changes a session setting; there is never a transaction open at release."""


class FastStatusPath:
    """An asyncpg pool for status callbacks on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, settings: Settings) -> FastStatusPath | None:
        if settings.is_sqlite or not settings.database_url.startswith("postgresql"):
            return None
        url = make_url(settings.database_url).set(drivername="postgresql")
        server_settings = (
            {"search_path": settings.database_schema} if settings.database_schema else None
        )
        pool = await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=1,
            max_size=POOL_SIZE,
            server_settings=server_settings,
            reset=_keep_session,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def record(
        self,
        kind: str,
        form: TwilioForm,
        sid: str,
        event: StatusEvent,
        now: datetime,
        *,
        metrics: Metrics | None = None,
    ) -> uuid.UUID | None:
        """A call (`voice_status`) or message (`sms_status`) status: event and move in one
        statement, committed (autocommit) when this returns. Returns the attempt's id
        when a collector holds it (their move is the caller's), else None."""
        attempt: uuid.UUID | None = attempt_ref(form)
        target = event.target
        result = event.result
        args: tuple[Any, ...] = (
            event_key(kind, form),
            kind,
            attempt,
            sid,
            now,
            json.dumps(form.fields),
            target.value,
            list(sources(target)),
            event.status,
            event.sequence_number,
            event.duration,
            event.answered_by,
            None if result is None else result.value,
            event.error_code,
            list(sources(target, inferred=True)),
            INFERRED_FAILURE,
            [state.value for state in AWAITING_SID],
        )
        conn = await self.pool.acquire()
        try:
            row = await conn.fetchrow(STATEMENT, *args)
        except BaseException:
            # Cut short (the webhook's database timeout) or failed: drop the connection
            # rather than hand it back, since a graceful release waits for the server to
            # confirm a cancel, forever while the server is unreachable.
            conn.terminate()
            raise
        finally:
            await self.pool.release(conn)
        # `moved`: this event (not a duplicate: its insert is the update's condition) moved
        # the attempt to `target`, from a state allowed to; committed (autocommit).
        if row is None:
            return None
        if metrics is not None:
            if row["moved"] is not None and target in FINAL_STATES:
                count_outcome(metrics, (row["channel"], row["result"]))
            elif row["event_status"] == "unmatched":  # new, kept for reconciliation
                metrics.record_unmatched_event(kind)
        held: uuid.UUID | None = row["agent_attempt"]
        return held
