"""One error root: every expected failure is a `DialerError` subclass that carries its HTTP
status and code, so the API turns it into the one error shape and never into a 500."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path with indexes: parties[0].contact_points[1].value
    reason: str


def field_path(loc: Sequence[int | str]) -> str:
    """("body", "parties", 0, "contact_points", 1, "value") -> parties[0].contact_points[1].value"""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


class DialerError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        fields: list[FieldError] | None = None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.extra = extra or {}  # more members of the error body, e.g. an import's counts


class UnauthorizedError(DialerError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(DialerError):
    status_code = 403
    code = "forbidden"


class NotFoundError(DialerError):
    status_code = 404
    code = "not_found"


class ConflictError(DialerError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(DialerError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(DialerError):
    status_code = 415
    code = "unsupported_media_type"


class ValidationFailedError(DialerError):
    status_code = 422
    code = "validation_failed"


class StrategyRejectedError(ValidationFailedError):
    """A strategy document breaks its schema or its portfolio's guardrail profile."""

    code = "strategy_rejected"

    def __init__(
        self, message: str, violations: list[dict[str, str | None]], fields: list[FieldError]
    ) -> None:
        super().__init__(message, fields)
        self.violations = violations


class ConfigurationError(DialerError):
    """The settings cannot work together (the simulator without a signing token): the
    process refuses to start and says which setting to fix, in one line."""

    status_code = 500
    code = "misconfigured"


class NotConfiguredError(DialerError):
    """A feature this deployment has not been given the settings for (the browser desk's
    voice token without a Twilio API key): 503, naming the settings to set."""

    status_code = 503
    code = "not_configured"


class SchemaOutOfDateError(Exception):
    """The database is not at the latest migration: the service refuses to start."""
