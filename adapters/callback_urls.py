"""The URLs we hand Twilio for its callbacks, with Twilio's webhook connection overrides.

By default Twilio retries a webhook only when it cannot connect, so a status callback
answered 5xx is lost for good. Connection overrides (twilio.com/docs/usage/webhooks/
webhooks-connection-overrides) ask it to retry; they ride in the URL's fragment, and every
URL we hand Twilio (TwiML, status, AMD, <Gather> actions, voicemail redirect) carries it.
A fragment never reaches the service (RFC 3986 3.5) and Twilio signs the URL without it,
so `dialer.callbacks.signature` checks that URL and the one with our own constant fragment.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

# Retry on a 5xx and on a connect timeout, up to 5 times, within Twilio's 15 s budget; a
# 2 s connect timeout leaves room for the retries.
DEFAULT_CONNECTION_OVERRIDES = "ct=2000&rc=5&rp=ct,5xx&tt=15000"

_MILLISECONDS = {"ct": (100, 10_000), "rt": (100, 15_000), "tt": (100, 15_000)}
_RETRY_POLICIES = frozenset({"4xx", "5xx", "ct", "rt", "all"})
_KEYS = frozenset({*_MILLISECONDS, "rc", "rp", "e", "sni"})


def check_overrides(value: str) -> str:
    """The connection overrides as the fragment to append (without `#`), checked against
    Twilio's keys and bounds; "" for none. Raises ValueError naming what is wrong."""
    text = value.strip().removeprefix("#")
    if not text:
        return ""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise ValueError(f"connection overrides {text!r} are not key=value&...: {exc}") from exc
    seen: set[str] = set()
    for key, raw in pairs:
        if key not in _KEYS:
            raise ValueError(f"unknown connection override {key!r} (known: {sorted(_KEYS)})")
        if key in seen:
            raise ValueError(f"connection override {key!r} given twice")
        seen.add(key)
        if key in _MILLISECONDS or key == "rc":
            low, high = _MILLISECONDS.get(key, (0, 5))
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ValueError(f"connection override {key}={raw!r}: {low}..{high}")
        elif key == "rp":
            unknown = set(raw.split(",")) - _RETRY_POLICIES
            if unknown:
                raise ValueError(f"connection override rp: unknown policy {sorted(unknown)}")
        elif not raw:
            raise ValueError(f"connection override {key!r} has no value")
    return text


def callback_url(
    base_url: str, path: str, query: Mapping[str, str] | None = None, overrides: str = ""
) -> str:
    """`base_url` + `path`, our query (covered by the signature), then the overrides."""
    url = base_url.rstrip("/") + path
    if query:
        url += "?" + urlencode(dict(query))
    return f"{url}#{overrides}" if overrides else url
