"""The decide gate at dispatch time: a queued job's attempt, decided again on fresh facts
under its case's lock (an opt-out, a payment or a twin worker's call may have landed
since planning). What it comes to is a `Redecision`, written with its batch's others."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.errors import DisclosureError, RetryLater, TemplateError
from adapters.templates import TemplateRegistry
from dialer.dispatch import pacing
from dialer.dispatch.context import WorkerContext
from dialer.dispatch.messages import MessageFacts, Rendered, language_for, render_for
from dialer.dispatch.planner import StrategyCache
from dialer.dispatch.sql import DISPATCHABLE
from dialer.domain.attempts import AttemptState
from dialer.domain.windows import LocalWindow
from dialer.facts.batch import PORTFOLIO_COLUMNS, CaseFacts
from strategy.decision import AllowedAction, Decision, Reason, Refusal
from strategy.engine import decide
from strategy.model import Channel, Party


@dataclass(frozen=True, slots=True)
class Reservation:
    """A reserved attempt, ready to be fenced and sent: what the engine granted."""

    attempt_id: uuid.UUID
    channel: Channel
    to: str
    rendered: Rendered
    slot: pacing.Slot | None
    campaign: uuid.UUID | None = None
    cps: float = 0.0
    # the channel's consent was on the contact point at the decision: its revocation since
    # then stops the fence
    consented: bool = False
    # answering-machine detection on the call (`predictive.MACHINE_DETECTION` per mode)
    machine_detection: bool = True


class Verdict(enum.Enum):
    """What a job's attempt becomes."""

    HANDLED = "handled"  # no longer dispatchable (a redelivery): nothing to write
    WAIT = "wait"  # its campaign is paused or a draft: retried later, nothing written
    CANCEL = "cancel"  # its campaign was cancelled
    REFUSE = "refuse"  # the engine says no
    DEFER = "defer"  # the engine says no until soon, inside the campaign's window
    FAIL = "fail"  # the words would say more than granted: failed closed
    RESERVE = "reserve"  # granted: reserved, then fenced and sent


WRITES_NOTHING = frozenset({Verdict.HANDLED, Verdict.WAIT})


@dataclass(slots=True)
class Redecision:
    verdict: Verdict
    state: str = ""  # the attempt's state when it was read
    values: dict[str, Any] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    retry: RetryLater | None = None
    until: datetime | None = None
    why: str = ""
    error: str = ""
    reservation: Reservation | None = None
    campaign: uuid.UUID | None = None
    max_in_progress: int | None = None
    # its campaign is a preview one: an agent started it at the desk and is held for it
    preview: bool = False


class Gate:
    """Decides jobs again (`redecide`), with the worker's compiled strategies."""

    def __init__(self, ctx: WorkerContext, templates: TemplateRegistry) -> None:
        self.ctx = ctx
        self.templates = templates
        self.strategies = StrategyCache()

    async def redecide(
        self,
        session: AsyncSession,
        attempt: Any,
        facts: CaseFacts | None,
        case_row: Any,
        now: datetime,
        *,
        may_defer: bool,
    ) -> Redecision:
        """Decide one job's attempt again on fresh facts: what it becomes."""
        if AttemptState(attempt.state) not in DISPATCHABLE:
            return Redecision(Verdict.HANDLED)
        if attempt.status == "cancelled":
            return Redecision(Verdict.CANCEL)
        if attempt.status in ("paused", "draft"):
            retry = RetryLater(self.ctx.config.paused_retry, f"campaign {attempt.status}")
            return Redecision(Verdict.WAIT, retry=retry)
        strategy_id, profile, country = (
            case_row[PORTFOLIO_COLUMNS] if case_row else (None, None, None)
        )
        version_id = (facts.strategy_version_id or strategy_id) if facts else None
        found = (
            await self.strategies.get(session, version_id, profile)
            if version_id and profile
            else None
        )
        if facts is None or found is None or profile is None:
            gone = facts is None or profile is None
            rule = "case.gone" if gone else "strategy.none_active"
            why = "the case is gone" if gone else "the portfolio has no active strategy"
            values = {"refusal": {"reasons": [{"rule": rule, "message": why}]}}
            return Redecision(Verdict.REFUSE, values=values, rules=[rule])
        strategy_row, cs = found
        decision = decide(facts.case, facts.history, now, cs)
        if decision.warnings and self.ctx.metrics is not None:
            self.ctx.metrics.record_decision_warnings(w.rule for w in decision.warnings)
        cp_id = str(attempt.contact_point_id)
        action = decision.allowed_for(cp_id, Channel(attempt.channel))
        if action is None:
            return self._refused(decision, attempt, strategy_row.id, now, may_defer=may_defer)
        return self._granted(decision, action, attempt, facts, strategy_row.id, country)

    def _refused(
        self,
        decision: Decision,
        attempt: Any,
        strategy_version_id: uuid.UUID,
        now: datetime,
        *,
        may_defer: bool,
    ) -> Redecision:
        cp_id = str(attempt.contact_point_id)
        refusal = decision.refusal_for(cp_id, Channel(attempt.channel))
        until = self.deferral(decision, refusal, attempt, cp_id, now) if may_defer else None
        if until is not None and refusal is not None:
            return Redecision(Verdict.DEFER, until=until, why=", ".join(refusal.rules))
        reasons: list[Reason] = [*decision.case_reasons, *(refusal.reasons if refusal else ())]
        docs = [
            {
                "rule": r.rule,
                "message": r.message,
                "next_allowed": r.next_allowed.isoformat() if r.next_allowed else None,
                "source": r.source,
            }
            for r in reasons
        ] or [{"rule": "candidate.gone", "message": "no longer a candidate"}]
        values = {
            "refusal": {"reasons": docs},
            "profile": decision.profile,
            "strategy_version_id": strategy_version_id,
        }
        return Redecision(Verdict.REFUSE, values=values, rules=[str(d["rule"]) for d in docs])

    def _granted(
        self,
        decision: Decision,
        action: AllowedAction,
        attempt: Any,
        facts: CaseFacts,
        strategy_version_id: uuid.UUID,
        country: str | None,
    ) -> Redecision:
        """Render the words at the granted disclosure; a template that would say more
        fails the attempt closed (invariant 4)."""
        channel = Channel(attempt.channel)
        party = next(p for p in facts.case.parties if p.id == action.party_id)
        point = next(c for c in party.contact_points if c.id == str(attempt.contact_point_id))
        values = {
            "strategy_version_id": strategy_version_id,
            "profile": decision.profile,
            "allowed_by": action.allowed_by,
            "disclosure": action.disclosure.value,
            "voicemail_disclosure": action.voicemail_disclosure.value,
            "template_key": action.template_key,
            "append_opt_out": action.append_opt_out,
        }
        try:
            rendered = render_for(
                self.templates,
                _message(channel, party, facts, country, decision.days_past_due),
                action.disclosure,
                action.voicemail_disclosure,
                append_opt_out=action.append_opt_out,
                sender=self.ctx.config.sender,
            )
        except (DisclosureError, TemplateError) as exc:
            code = "disclosure" if isinstance(exc, DisclosureError) else "template"
            return Redecision(Verdict.FAIL, values=values, why=code, error=str(exc)[:2000])
        reservation = Reservation(
            attempt.id,
            channel,
            point.value,
            rendered,
            None,
            attempt.campaign,
            attempt.pacing_cps,
            consented=channel in point.consent,
        )
        return Redecision(
            Verdict.RESERVE,
            values=values,
            reservation=reservation,
            campaign=attempt.campaign,
            max_in_progress=attempt.max_in_progress,
        )

    def deferral(
        self,
        decision: Decision,
        refusal: Refusal | None,
        attempt: Any,
        cp_id: str,
        now: datetime,
    ) -> datetime | None:
        """When a refused campaign attempt may wait instead: no case-level reason, the
        engine names the instant every reason passes, it comes within `max_deferral`, and
        it is still inside the campaign's local window today in the point's zones."""
        if refusal is None or refusal.next_allowed is None or decision.case_reasons:
            return None
        if attempt.campaign is None or attempt.window is None:
            return None
        until = refusal.next_allowed
        if until <= now or until - now > self.ctx.config.max_deferral:
            return None
        zones = decision.extra.get("zones", {}).get(cp_id)
        if not zones:
            return None
        bounds = LocalWindow.parse(attempt.window).today(zones, now)
        if bounds is None or not bounds[0] <= until < bounds[1]:
            return None
        return until


def _message(
    channel: Channel, party: Party, facts: CaseFacts, country: str | None, days_past_due: int
) -> MessageFacts:
    """What the words may be rendered from."""
    return MessageFacts(
        channel=channel,
        role=party.role,
        name=party.name,
        title=party.title,
        language=language_for(country),
        amount=facts.case.outstanding,
        currency=facts.case.currency,
        due_date=facts.case.due_date,
        days_past_due=days_past_due,
    )
