"""The operator documentation follows the code: the README's configuration table is
`dialer settings`, docs/operations.md's guardrail tables are `strategy.guardrails`, and no
document names a `DIALER_*` variable that does not exist.

Stale? `python -m dialer.observability.settings_doc --write README.md docs/operations.md`
"""

from __future__ import annotations

import re
from dataclasses import astuple
from pathlib import Path

from typer.testing import CliRunner

from adapters.twilio import WebhookPaths
from dialer.cli.main import app as cli_app
from dialer.core.settings import Settings
from dialer.observability.settings_doc import (
    PROFILES_END,
    PROFILES_START,
    block_in,
    profiles_table,
    refresh,
    settings_table,
)
from strategy.guardrails import PROFILES

ROOT = Path(__file__).parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")
OPERATIONS = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
FIX = "run: python -m dialer.observability.settings_doc --write README.md docs/operations.md"


def test_readme_configuration_table_is_current() -> None:
    assert block_in(README) == settings_table(), FIX


def test_the_table_lists_every_setting_once() -> None:
    rows = re.findall(r"^\| `(DIALER_\w+)` \|", settings_table(), flags=re.MULTILINE)
    assert rows == [f"DIALER_{name.upper()}" for name in Settings.model_fields]


def test_dialer_settings_prints_the_table() -> None:
    result = CliRunner().invoke(cli_app, ["settings"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == settings_table()


def test_secrets_show_no_default() -> None:
    row = next(
        ln for ln in settings_table().splitlines() if ln.startswith("| `DIALER_TWILIO_AUTH_TOKEN`")
    )
    assert "| secret | (empty) |" in row


def test_operations_guardrail_tables_are_current() -> None:
    assert block_in(OPERATIONS, PROFILES_START, PROFILES_END) == profiles_table(), FIX


def test_every_profile_and_clause_source_is_documented() -> None:
    for profile in PROFILES.values():
        assert f"`{profile.name}`" in OPERATIONS
        assert f"`{profile.name}`" in README
        assert profile.window_clause.source in OPERATIONS
        for cap in profile.caps:
            assert cap.clause.source in OPERATIONS


def test_refresh_leaves_current_documents_unchanged() -> None:
    assert refresh(README) == README
    assert refresh(OPERATIONS) == OPERATIONS


def test_documents_name_only_real_settings() -> None:
    known = {f"DIALER_{name.upper()}" for name in Settings.model_fields}
    for text in (README, OPERATIONS):
        named = set(re.findall(r"\bDIALER_[A-Z0-9_]+\b", text)) - {"DIALER_"}
        assert named <= known, sorted(named - known)


def test_twilio_setup_names_the_webhook_paths_the_adapter_uses() -> None:
    for path in (*astuple(WebhookPaths()), "/v1/twilio/sms/inbound"):
        assert path in OPERATIONS, path
    assert "/v1/twilio/sms/inbound" in README
