"""What the worker knew at an instant T, rebuilt from the rows and the audit log.

- history: the contacts of the case reserved strictly before T, and payments strictly
  before T. Attempts reserved in the same instant as T (a frozen clock, or microsecond
  ties) are accepted if *some* serial order of them passes (`checks.MAX_TIE_GROUP`).
- outcomes: a prior attempt's result may have landed after T (a webhook, an agent's
  record). When a prior attempt was updated after T, the replay also tries it as
  `pending`; the attempt passes if either reading passes.
- the case: today's row, with every audited change made after T undone from the audit
  log (case, party and contact point updates keep their `before` values; opt-outs and
  opt-ins their instants), an opt-out set by a provider error (Twilio 21610) undone if
  it came after T, parties and contact points created after T left out.

Rows become the engine's `Case` and `Attempt` through the one facts reader
(`dialer.facts.rows`, and `dialer.facts.as_of.rewind` for the case at T); what stays here
is the audit's own question: which readings of the history the worker may have seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from dialer.db.models import AttemptRow
from dialer.facts import rows
from dialer.facts.as_of import rewind
from dialer.services.audit.loader import CaseData
from strategy.model import Attempt, Case, History, Result


# --- history as of T ---------------------------------------------------------------------
def _as_attempt(a: AttemptRow, *, pending: bool = False) -> Attempt:
    """The contact as the reader converts it; `pending`: as it stood before its result."""
    attempt = rows.attempt([getattr(a, c.key) for c in rows.ATTEMPT_COLUMNS])
    if not pending:
        return attempt
    return replace(
        attempt, result=Result.PENDING, promise_amount=None, promise_date=None, callback_at=None
    )


def went_first(order: Sequence[AttemptRow], a: AttemptRow) -> Sequence[AttemptRow]:
    ids = [o.id for o in order]
    return order[: ids.index(a.id)] if a.id in ids else ()


def histories(
    a: AttemptRow, d: CaseData, when: datetime, first: Sequence[AttemptRow]
) -> Iterable[History]:
    """The readings of the history the worker may have seen at `when`: contacts strictly
    before it (results as now, and as pending where they landed after `when`), then the
    ones recorded in the same instant that went first."""
    payments = tuple(p for p in d.payments if p[0] < when)
    before = [o for o in d.contacts if o.id != a.id and o.at < when]
    late = {o.id for o in before if o.updated_at is not None and o.updated_at > when}
    tied = [_as_attempt(o) for o in first]
    for pending in [False, True] if late else [False]:
        base = [_as_attempt(o, pending=pending and o.id in late) for o in before]
        yield History(attempts=(*base, *tied), payments=payments)


# --- the case as of T --------------------------------------------------------------------
def case_as_of(d: CaseData, when: datetime) -> Case:
    """The case as it stood at `when`, by the facts reader's rule (`dialer.facts.as_of`)."""
    return rewind(d.case, d.changes, d.provider_opt_outs, when)
