"""Digests of what changed, for the audit log: sha256 of canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
