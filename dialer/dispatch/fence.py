"""The timing rules of the dispatch fence (issue 19), in one place.

A worker moves its reserved attempt to `dialing` with a compare-and-set on its lease
immediately before the provider call (`dialer.dispatch.worker`), and starts the request
only within `SEND_WINDOW` of that fence (else it fences again). So:
- a `reserved` attempt whose lease has run out was never dialled and never will be;
- a `dialing` attempt can reach the provider only until its fence + `SEND_WINDOW` + the
  HTTP client's whole timeout; the reconciler looks one up only after that and a margin
  (`dialing_reclaim_after`);
- an opt-out committed after a fence can meet a create only from a fence of the last
  `SEND_WINDOW`: the STOP's answer waits for those (`dialer.services.optouts.settle`).
"""

from __future__ import annotations

from datetime import timedelta

SEND_WINDOW = timedelta(seconds=1)
MIN_MARGIN = timedelta(seconds=1)
# A request started within the send window reaches the provider within this (a pooled
# keep-alive connection); the STOP's answer waits at most SEND_WINDOW + SETTLE_MARGIN.
SETTLE_MARGIN = timedelta(milliseconds=500)


def dialing_reclaim_after(http_timeout: timedelta, margin: timedelta) -> timedelta:
    """How long after its fence a `dialing` attempt may be looked up and reclaimed: the
    send window, the HTTP client's whole timeout, and a margin of at least `MIN_MARGIN`."""
    return SEND_WINDOW + http_timeout + max(margin, MIN_MARGIN)
