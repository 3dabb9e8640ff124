"""Structured logs: one JSON object per line on stderr, personal data masked.

`configure_logging(settings)` is called by the process entry points (`dialer serve`,
`dialer worker`), never at import time and never by `create_app`, so tests and embedding
applications keep their own logging. Every record passes `RedactingFilter` before any
formatter sees it: the message, its arguments, every extra field and the exception text
are masked (`dialer.observability.redact`), and extra fields named like secrets are dropped.

    log.info("call placed", extra={"attempt_id": a.id, "to": "+8613812345678"})
    -> {"ts": "...", "level": "info", "logger": "dialer.dispatch.worker",
        "message": "call placed", "attempt_id": "...", "to": "+86*********78"}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from dialer.core.settings import LogFormat, Settings
from dialer.observability.redact import is_secret_name, mask_text, mask_value

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_MARK = "_dialer_handler"
# Extra fields that repeat the message for terminals (uvicorn's ANSI-coloured copy).
_NOISE = frozenset({"color_message"})


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class RedactingFilter(logging.Filter):
    """Masks phone numbers, e-mail local parts and secrets in place, and drops extra fields
    named like secrets. Attached to our handler, so it sees records of every logger."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_dialer_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        for name, value in extra_fields(record).items():
            if is_secret_name(name):
                delattr(record, name)
            else:
                setattr(record, name, mask_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        record._dialer_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...extra fields, "exc"?, "stack"?}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in extra_fields(record).items():
            if not name.startswith("_") and name not in entry and name not in _NOISE:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of the call (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def build_handler(fmt: LogFormat = "json", stream: TextIO | None = None) -> logging.Handler:
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def install(
    level: str | int = "INFO", fmt: LogFormat = "json", stream: TextIO | None = None
) -> None:
    """Route every logger to one redacting handler on the root logger; idempotent."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(build_handler(fmt, stream))
    root.setLevel(level if isinstance(level, int) else level.upper())
    # uvicorn's loggers propagate to the root once `dialer serve` passes log_config=None;
    # drop handlers anything else may have given them so no line is written unmasked.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Every /readyz reads the schema revision, and alembic says so at INFO each time;
    # httpx logs every request at INFO (each provider call and simulated callback): the
    # service logs what those requests meant instead.
    for chatty in ("alembic.runtime.migration", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def configure_logging(settings: Settings) -> None:
    """Install JSON (or plain text, for a terminal) logging at `settings.log_level`."""
    install(settings.log_level, settings.log_format)
