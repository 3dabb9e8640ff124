"""The compliance audit: replay every dispatched attempt against the rules that allowed it.

For each attempt that reached a reservation (or a provider), the audit rebuilds what the
worker knew at the reservation instant T (`as_of`) and asks `strategy.engine.decide`
again, with the strategy version and guardrail profile recorded on the attempt
(`checks`). The attempt's (party, contact point, channel) must be among the allowed
actions, and the disclosure it recorded no more than the one granted. Independently of
the engine it also checks: at most one provider id per attempt, nothing dialled after a
recorded opt-out of that contact point and channel, the dial instant inside the allowed
action's window, and no task that needs an approval completed without one.

What cannot be reconstructed: fields changed without an audit entry (a bulk import that
re-upserts a case) are taken as they are now, and an attempt's result as it stood between
two of its callbacks is unknown (only "final" and "pending" are tried). Both can only make
the replay stricter than the worker was, never more lenient about an opt-out, a cap or a
window recorded before T.

Memory is bounded: cases are read in keyset batches (`loader`) with everything the audit
needs for them, and only violations (capped at `max_violations`) are kept (`report`).
"""

from dialer.services.audit.checks import MAX_TIE_GROUP, audit
from dialer.services.audit.report import RULES, AuditReport, Violation, rule_of

__all__ = ["MAX_TIE_GROUP", "RULES", "AuditReport", "Violation", "audit", "rule_of"]
