"""Readable renderings of a decision for terminals (the demo, operators)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from strategy.decision import Decision
from strategy.model import Case


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
