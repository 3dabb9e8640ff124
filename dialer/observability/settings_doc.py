"""The configuration table: every `DIALER_*` variable with its type, default and meaning,
generated from `Settings` (meanings are the comments above each field, or its description).

    dialer settings                                         # print the table
    python -m dialer.observability.settings_doc --write README.md   # refresh it in place

The README keeps the table between the markers below; a test fails when it is stale.
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

from dialer.settings import Settings

START = "<!-- settings-table:start (generated: dialer settings) -->"
END = "<!-- settings-table:end -->"
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


def replace_table(document: str, table: str) -> str:
    """`document` with the text between the markers replaced by `table`."""
    start, end = document.index(START) + len(START), document.index(END)
    return document[:start] + "\n" + table + "\n" + document[end:]


def table_in(document: str) -> str:
    start, end = document.index(START) + len(START), document.index(END)
    return document[start:end].strip()


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(replace_table(path.read_text(encoding="utf-8"), settings_table()))
        return 0
    print(settings_table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
