"""`X-Twilio-Signature`: HMAC-SHA1 (base64) of the URL Twilio requested followed by the
POST fields sorted by name, each as name+value (architecture invariant 5).

The URL is the one Twilio used, not the one this process sees: behind a TLS-terminating
proxy the scheme, host and port differ. It is rebuilt from the configured public base URL
plus the raw path and the raw query string, unchanged (re-encoding either would break the
signature). Like `twilio.request_validator.RequestValidator`, the URL is tried as given and
with its default port added or removed, and a repeated field's values are taken sorted and
without repeats. This costs one or two `hmac` digests (a few microseconds), against
`RequestValidator.validate`'s two digests plus URL parsing on every request.

Our callback URLs end in Twilio's connection overrides (`#rc=...`, see
`adapters.callback_urls`). A fragment never reaches the server, so the URL rebuilt here has
none: the URL Twilio requested and signs. A signature over that URL with our configured
fragment appended is accepted too (our own constant: it admits nothing an attacker could
choose), should Twilio sign the URL as it was handed.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable
from hashlib import sha1
from urllib.parse import SplitResult, urlsplit

SIGNATURE_HEADER = "x-twilio-signature"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def public_url(base_url: str, raw_path: bytes, raw_query: bytes) -> str:
    """The URL Twilio requested: configured base (scheme, host, optional path prefix)
    followed by the raw path and query exactly as they arrived."""
    url = base_url.rstrip("/") + raw_path.decode("latin-1")
    if raw_query:
        url += "?" + raw_query.decode("latin-1")
    return url


def signing_payload(url: str, fields: Iterable[tuple[str, str]]) -> str:
    """The string Twilio signs: the URL, then name+value for each field by name, the
    values of a repeated name sorted and de-duplicated (as twilio-python does)."""
    by_name: dict[str, set[str]] = {}
    for name, value in fields:
        by_name.setdefault(name, set()).add(value)
    parts = [url]
    for name in sorted(by_name):
        for value in sorted(by_name[name]):
            parts.append(name)
            parts.append(value)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, fields: Iterable[tuple[str, str]]) -> str:
    payload = signing_payload(url, fields).encode()
    return base64.b64encode(hmac.new(auth_token.encode(), payload, sha1).digest()).decode()


def _port_variant(url: str) -> str | None:
    """The same URL with its default port removed, or added when it has none."""
    parts: SplitResult = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    if parts.port is not None:
        netloc = userinfo + host.rsplit(":", 1)[0]
    else:
        netloc = f"{userinfo}{host}:{default}"
    return parts._replace(netloc=netloc).geturl()


def is_valid(
    auth_token: str,
    url: str,
    fields: Iterable[tuple[str, str]],
    signature: str | None,
    fragment: str = "",
) -> bool:
    """True when `signature` signs the URL (or its port variant) and the fields; with a
    `fragment` (our connection overrides), also the same URLs followed by `#fragment`."""
    if not signature or not auth_token:
        return False
    items = list(fields)
    given = signature.strip().encode()
    variant = _port_variant(url)
    urls = [url] if variant is None else [url, variant]
    if fragment:
        urls += [f"{u}#{fragment}" for u in urls]
    return any(
        hmac.compare_digest(compute_signature(auth_token, u, items).encode(), given) for u in urls
    )
