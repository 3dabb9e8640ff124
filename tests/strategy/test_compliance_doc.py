"""docs/compliance.md is generated from strategy/guardrails.py and strategy/calendar.py:
the committed file must be what the code enforces now."""

from __future__ import annotations

from pathlib import Path

from strategy.calendar import NOTICES
from strategy.compliance_doc import render
from strategy.guardrails import PROFILES, READINGS, clauses

DOC = Path(__file__).resolve().parents[2] / "docs" / "compliance.md"
FIX = "run: python -m strategy.compliance_doc --write docs/compliance.md"


def test_committed_compliance_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), FIX


def test_every_clause_reading_and_notice_is_in_the_doc() -> None:
    text = render()
    for profile in PROFILES.values():
        for clause in clauses(profile):
            assert f"`{clause.id}`" in text and clause.source in text
    for reading in READINGS:
        assert f"`{reading.rule}`" in text
    for by_year in NOTICES.values():
        for notice in by_year.values():
            assert notice.number in text and notice.title in text
