"""docs/compliance.md, generated from the rules the engine applies: every guardrail
profile's clauses with their sources (`strategy.guardrails.PROFILES`), the readings chosen
where a rule's text is ambiguous (`strategy.guardrails.READINGS`), and the holiday notices
shipped (`strategy.calendar.NOTICES`). A test keeps the committed file current.

    python -m strategy.compliance_doc --write docs/compliance.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from strategy.calendar import NOTICES
from strategy.guardrails import PROFILES, READINGS, clauses

_HEADER = """# Compliance: the rules the engine applies

Generated from `strategy/guardrails.py` and `strategy/calendar.py` by
`python -m strategy.compliance_doc --write docs/compliance.md`; edit those files, not this
one (a test fails when it is out of date). The design-level summary of the law is in the
shared `compliance.md`; this file is what the code enforces, clause by clause."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    out = [_HEADER, "", "## Guardrail profiles", ""]
    for profile in PROFILES.values():
        tightens = f" It tightens `{profile.tightens}`." if profile.tightens else ""
        out += [
            f"### `{profile.name}` ({profile.version}): {profile.description}",
            "",
            f"Contact starts only within {profile.window} in the party's local time;"
            f" records are kept {profile.record_retention_years} years.{tightens}",
            "",
            "| clause | rule | source |",
            "|---|---|---|",
        ]
        out += [f"| `{c.id}` | {_cell(c.text)} | {_cell(c.source)} |" for c in clauses(profile)]
        out.append("")
    out += [
        "## Readings chosen where the text is ambiguous",
        "",
        "| rule | the text | reading applied | why | source | code |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| `{r.rule}` | {_cell(r.text)} | {_cell(r.reading)} | {_cell(r.why)}"
        f" | {_cell(r.source)} | {_cell(r.code)} |"
        for r in READINGS
    ]
    out += ["", "## Statutory holiday schedules shipped", ""]
    for country, by_year in NOTICES.items():
        for year, notice in sorted(by_year.items()):
            out += [
                f"### {country} {year}: {notice.title} ({notice.number},"
                f" {notice.published.isoformat()})",
                "",
                "| break | first day | last day | days |",
                "|---|---|---|---|",
            ]
            out += [
                f"| {name} | {first.isoformat()} | {last.isoformat()} | {(last - first).days + 1} |"
                for name, first, last in notice.breaks
            ]
            workdays = ", ".join(d.isoformat() for d in notice.workdays) or "none"
            out += ["", f"Make-up working days (调休上班): {workdays}.", ""]
        out += [
            f"A {country} year not listed here is decided on the `holidays` library's"
            " statutory list, each decision carrying the warning"
            " `calendar.no_published_schedule` (metric `dialer_decision_warnings_total`).",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        Path(argv[1]).write_text(render(), encoding="utf-8")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
