"""Readable renderings for terminals: a decision (the demo, operators), a morning's summary."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from demo.rule_words import plain_words
from strategy.decision import Decision
from strategy.model import Case

if TYPE_CHECKING:
    from demo.morning import MorningReport


def _who(case: Case) -> dict[str, str]:
    names: dict[str, str] = {}
    for party in case.parties:
        for cp in party.contact_points:
            label = party.name or party.role.value
            names[cp.id] = f"{label} ({party.role.value}) {cp.value}"
    return names


def _when(at: datetime | None, zone: str) -> str:
    if at is None:
        return "-"
    return at.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M %Z")


def render_decision(decision: Decision, case: Case, zone: str = "UTC") -> RenderableType:
    """Allowed actions, then every refusal with its reasons and next-allowed time."""
    who = _who(case)
    head = Text.assemble(
        (f"case {decision.case_id}", "bold"),
        f"  {case.amount} {case.currency}, due {case.due_date}",
        f"  at {_when(decision.at, zone)}",
        f"\n{decision.strategy} v{decision.strategy_version} under {decision.profile};",
        f" tier {decision.tier or '-'}, {decision.days_past_due} days past due",
    )
    allowed = Table(title="allowed now", title_justify="left", expand=True)
    for column in ("contact", "channel", "disclosure", "template", "window"):
        allowed.add_column(column)
    for a in decision.allowed:
        allowed.add_row(
            who.get(a.contact_point_id, a.contact_point_id),
            str(a.channel),
            str(a.disclosure),
            a.template_key,
            f"{_when(a.window_start, zone)} - {_when(a.window_end, zone)}",
        )
    if not decision.allowed:
        allowed.add_row("[dim]nobody[/dim]", "", "", "", "")
    refused = Table(title="refused", title_justify="left", expand=True)
    for column in ("contact", "channel", "rule: reason", "next allowed"):
        refused.add_column(column)
    for r in decision.refused:
        refused.add_row(
            who.get(r.candidate.contact_point_id, r.candidate.contact_point_id),
            str(r.candidate.channel),
            "\n".join(f"[bold]{x.rule}[/bold]: {x.message}" for x in r.reasons),
            _when(r.next_allowed, zone),
        )
    parts: list[RenderableType] = [head, allowed]
    if decision.refused:
        parts.append(refused)
    if decision.case_reasons:
        parts.append(
            Text(
                "whole case blocked: "
                + "; ".join(f"{r.rule}: {r.message}" for r in decision.case_reasons),
                style="red",
            )
        )
    if decision.tasks:
        parts.append(
            Text(
                "tasks: "
                + "; ".join(
                    f"{t.action}{' (needs approval)' if t.requires_approval else ''}"
                    for t in decision.tasks
                ),
                style="yellow",
            )
        )
    return Panel(Group(*parts), expand=True)


def _refusals(report: MorningReport) -> Table:
    """Refusals by rule, in words, split where they happened: at planning a case was not
    planned (no attempt exists); at dispatch a planned attempt was refused (the attempts
    table's `refused` rows). One case or attempt refused for several rules counts under
    each, so the footer gives the attempts themselves, which match the attempts table."""
    table = Table(
        title="refusals by rule (a case or attempt refused for several rules counts under each)",
        title_justify="left",
    )
    table.add_column("rule", no_wrap=True)
    table.add_column("what it means", ratio=1)
    table.add_column("at planning (cases)", justify="right")
    table.add_column("at dispatch (attempts)", justify="right")
    rules = sorted(
        set(report.planning_refusals) | set(report.dispatch_refusals),
        key=lambda r: (-report.planning_refusals[r] - report.dispatch_refusals[r], r),
    )
    for rule in rules:
        table.add_row(
            rule,
            plain_words(rule),
            str(report.planning_refusals[rule] or ""),
            str(report.dispatch_refusals[rule] or ""),
        )
    refused = {
        ch: n for (ch, outcome), n in sorted(report.attempts.items()) if outcome == "refused"
    }
    words = ", ".join(f"{ch} {n}" for ch, n in refused.items()) or "none"
    table.add_row(
        "[bold]attempts refused at dispatch[/bold]",
        f"as in the attempts table: {words}",
        "",
        f"[bold]{sum(refused.values())}[/bold]",
    )
    return table


def render_morning(report: MorningReport) -> RenderableType:
    """The demo's summary: attempts by channel and outcome, refusals by rule, promises to
    pay, escalation tasks created."""
    attempts = Table(title="attempts by channel and outcome", title_justify="left")
    for column in ("channel", "outcome", "attempts"):
        attempts.add_column(column, justify="right" if column == "attempts" else "left")
    for (channel, outcome), n in sorted(report.attempts.items()):
        attempts.add_row(channel, outcome, str(n))
    attempts.add_row("[bold]all[/bold]", "", f"[bold]{sum(report.attempts.values())}[/bold]")
    refusals = _refusals(report)
    tasks = Table(title="escalation tasks created", title_justify="left")
    tasks.add_column("action")
    tasks.add_column("tasks", justify="right")
    for action, n in report.tasks.most_common():
        tasks.add_row(action, str(n))
    promised = ", ".join(f"{amount:,} {cur}" for cur, amount in sorted(report.promised.items()))
    lines = Text.assemble(
        ("promises to pay: ", "bold"),
        f"{report.promises}" + (f" ({promised})" if promised else ""),
        ("\nescalation tasks: ", "bold"),
        str(sum(report.tasks.values())),
        ("\nleft non-final: ", "bold"),
        (str(report.not_final), "red" if report.not_final else "green"),
        (f"   finished by the reconciler: {report.swept}" if report.swept else ""),
        (f"\nsimulator calls cut short: {', '.join(report.stragglers)}", "red")
        if report.stragglers
        else "",
    )
    return Group(attempts, refusals, tasks, lines)
