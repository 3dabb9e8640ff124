"""The shipped strategy presets: YAML documents inside this package, loaded by name.

`consumer-loan` is the source's consumer ladder narrowed to `cn-consumer`;
`us-consumer-loan` the same ladder narrowed to `us-consumer`; `b2b-receivables` is its
B2B cadence under `commercial`. Each validates against
`strategy.document.Strategy` (and the committed `presets/strategy.schema.json`).
"""

from __future__ import annotations

from importlib import resources

import yaml

from strategy.document import Strategy

PRESET_NAMES: tuple[str, ...] = ("consumer-loan", "us-consumer-loan", "b2b-receivables")
SCHEMA_FILE = "strategy.schema.json"


def load_preset(name: str) -> Strategy:
    """The named preset as a validated strategy document."""
    if name not in PRESET_NAMES:
        known = ", ".join(PRESET_NAMES)
        raise KeyError(f"unknown strategy preset {name!r} (known: {known})")
    text = resources.files("strategy").joinpath("presets", f"{name}.yaml").read_text("utf-8")
    return Strategy.model_validate(yaml.safe_load(text))
