"""Generated operator documentation, so it cannot drift from the code: the table of
`DIALER_*` variables (from `Settings` and the comments above its fields) and the guardrail
profiles (from `strategy.guardrails.PROFILES`).

    dialer settings                                                      # print the table
    python -m dialer.observability.settings_doc --write README.md docs/operations.md

`--write` refreshes the generated blocks; tests fail when a copy is stale.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from dialer.core.settings import Settings
from strategy.guardrails import PROFILES, Clause, GuardrailProfile, clauses

START = "<!-- settings-table:start (generated: dialer settings) -->"
END = "<!-- settings-table:end -->"
PROFILES_START = "<!-- profiles-table:start (generated: dialer.observability.settings_doc) -->"
PROFILES_END = "<!-- profiles-table:end -->"
_FIELD = re.compile(r"^    (\w+)\s*:")
_COMMENT = re.compile(r"^    #\s?(.*)$")
_SECTION = re.compile(r"^-+\s*(.*?)\s*-+$")


def _comments() -> dict[str, tuple[str, str]]:
    """field name -> (section, comment lines above it) from the source of `Settings`."""
    found: dict[str, tuple[str, str]] = {}
    section, pending = "", list[str]()
    for line in inspect.getsource(Settings).splitlines():
        if comment := _COMMENT.match(line):
            text = comment.group(1).strip()
            if heading := _SECTION.match(text):
                section, pending = heading.group(1), []
            else:
                pending.append(text)
        elif field := _FIELD.match(line):
            found[field.group(1)] = (section, " ".join(pending))
            pending = []
        elif not line.strip():
            pending = []
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " / ".join(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " / ".join(_type_name(a) for a in args) + " (optional)"
    if origin is dict:
        return "JSON object"
    if annotation is SecretStr:
        return "secret"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.annotation is SecretStr:
        return "(empty)"
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_table() -> str:
    comments = _comments()
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    current = ""
    for name, info in Settings.model_fields.items():
        section, comment = comments.get(name, ("", ""))
        if section != current:
            lines.append(f"| **{_cell(section)}** | | | |")
            current = section
        row = (
            f"`DIALER_{name.upper()}`",
            _type_name(info.annotation),
            _default(info),
            info.description or comment,
        )
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def _clauses(profile: GuardrailProfile) -> list[Clause]:
    return clauses(profile)


def profiles_table() -> str:
    """One section per guardrail profile: its window and every clause with its source."""
    out: list[str] = []
    for profile in PROFILES.values():
        out += [
            f"#### `{profile.name}` ({profile.version}): {profile.description}",
            "",
            f"Contact starts only within {profile.window} in the party's local time;"
            f" records are kept {profile.record_retention_years} years.",
            "",
            "| clause | rule | source |",
            "|---|---|---|",
        ]
        out += [f"| `{c.id}` | {_cell(c.text)} | {_cell(c.source)} |" for c in _clauses(profile)]
        out.append("")
    return "\n".join(out).rstrip()


_BLOCKS = ((START, END, settings_table), (PROFILES_START, PROFILES_END, profiles_table))


def replace_block(document: str, start_marker: str, end_marker: str, body: str) -> str:
    """`document` with the text between the markers replaced by `body`."""
    start = document.index(start_marker) + len(start_marker)
    end = document.index(end_marker)
    return document[:start] + "\n" + body + "\n" + document[end:]


def block_in(document: str, start_marker: str = START, end_marker: str = END) -> str:
    start = document.index(start_marker) + len(start_marker)
    return document[start : document.index(end_marker)].strip()


def refresh(document: str) -> str:
    """Every generated block the document holds, regenerated."""
    for start, end, generate in _BLOCKS:
        if start in document:
            document = replace_block(document, start, end, generate())
    return document


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--write":
        for name in argv[1:]:
            path = Path(name)
            path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(settings_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
