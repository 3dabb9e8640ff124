"""Every setting says what it does in `dialer settings` (issue 17: DIALER_CALLBACK_NUMBER
had no description)."""

from __future__ import annotations

from dialer.core.settings import Settings
from dialer.observability.settings_doc import settings_table


def test_every_setting_has_a_description_in_the_generated_table() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[-2].strip()
        for line in settings_table().splitlines()
        if line.startswith("| `DIALER_")
    }
    assert set(rows) == {f"DIALER_{name.upper()}" for name in Settings.model_fields}
    undescribed = sorted(name for name, meaning in rows.items() if len(meaning) < 15)
    assert undescribed == []
    assert "call back" in rows["DIALER_CALLBACK_NUMBER"]
