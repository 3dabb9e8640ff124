"""Our exceptions: what a vendor failure means for the caller, never the vendor's type.

The worker decides on the class alone:
- `TransientError`: the provider certainly did nothing; retrying is safe.
- `AmbiguousError`: the provider may have acted (a 5xx or a read timeout on a create);
  never retry blindly: the attempt goes to `unknown` and a reconciler looks it up.
- `PermanentError`: retrying cannot help; `kind` says what to record on the contact point.
Job handlers raise `RetryLater` or `PermanentJobError` to steer the queue.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class AdapterError(Exception):
    """Root of every error an adapter raises."""


class TransientError(AdapterError):
    """Nothing happened at the provider (429, connection refused before sending)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AmbiguousError(AdapterError):
    """The request may have been acted on; do not repeat it until it has been looked up."""


class PermanentErrorKind(StrEnum):
    INVALID_NUMBER = "invalid_number"
    OPTED_OUT = "opted_out"
    BLOCKED = "blocked"
    AUTH = "auth"
    OTHER = "other"


class PermanentError(AdapterError):
    """The provider refused for good; `kind` tells the caller what to record."""

    def __init__(self, message: str, *, kind: PermanentErrorKind, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


class NotConfiguredError(AdapterError):
    """No provider is configured for this channel: nothing was sent, and nothing can be
    until an operator configures one (the attempt is final and was never a contact)."""


class NotFoundError(AdapterError):
    """A looked-up resource (call, message) does not exist at the provider."""


class QueueError(AdapterError):
    """The broker did not confirm a publish or could not be reached.

    Some jobs of the batch may have been published: publishing again is safe because
    consumers act at most once per attempt id.
    """


class DisclosureError(AdapterError):
    """A template would say more than the decision granted; nothing is rendered."""


class TemplateError(AdapterError):
    """A template is missing, malformed, or lacks a field it needs."""


class RetryLater(Exception):
    """Raised by a job handler: run this job again after `delay`."""

    def __init__(self, delay: timedelta, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay}")
        self.delay = delay
        self.reason = reason


class PermanentJobError(Exception):
    """Raised by a job handler: this job can never succeed; dead-letter it now."""
