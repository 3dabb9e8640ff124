"""Masking of personal data and secrets in text and structured values, for logs.

Phone numbers keep their country code and last two digits (`+8613812345678` ->
`+86*********78`), national numbers only their last two (`(415) 555-0123` -> `********23`);
e-mail addresses lose their local part (`***@example.com`); bearer tokens, our API keys
(`dk_...`) and passwords inside URLs are replaced by `[redacted]`. Fields whose name says
they hold a secret (auth token, API key, password, Authorization header, ...) are dropped.

The patterns err towards masking: a ten-digit national number and a ten-digit id look
alike, and a masked id costs less than a leaked phone number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

REDACTED = "[redacted]"

# A field whose normalised name (lower case, "-" as "_") contains one of these is dropped.
SECRET_NAME_PARTS = (
    "auth_token",
    "authtoken",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "authorization",
    "cookie",
    "x_twilio_signature",
    "private_key",
    "credential",
)

# International: "+" (or its URL encoding) then digits with optional separators.
_INTERNATIONAL = re.compile(r"(?:\+|%2[bB])\d(?:[ ().-]{0,2}\d){6,16}")
# National with separators: groups of digits split by spaces, hyphens or parentheses
# (dots only in the North American 3.3.4 shape, so IPv4 addresses and versions survive).
_NATIONAL_SEPARATED = re.compile(
    r"(?<![\w.:/+%-])(?:"
    r"\(?\d{2,5}\)?(?:[ -]\(?\d{2,5}\)?){1,4}"
    r"|\d{3}\.\d{3}\.\d{4}"
    r")(?![\w:/-])"
)
# National without separators: a Chinese mobile, a North American number, or a number with
# a trunk or international prefix ("0...", "00...").
_NATIONAL_BARE = re.compile(
    r"(?<![\w.:/+%-])(?:1[3-9]\d{9}|[2-9]\d{2}[2-9]\d{6}|00\d{8,13}|0[1-9]\d{8,10})(?![\w:/-])"
)
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$&'*+/=?^_`{|}~.-]{1,64}(@|%40)((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63})\b"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\n,;}]+")
_API_KEY = re.compile(r"\bdk_[A-Za-z0-9_-]+")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s/]+@")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:auth_?token|api_?key|password|passwd|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+"
)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _country_code_length(digits: str) -> int:
    for length in (1, 2, 3):
        if int(digits[:length]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return length
    return 0


def mask_phone(text: str) -> str:
    """`+8613812345678` -> `+86*********78`; national numbers keep their last two digits."""
    digits = _digits(text)
    if text.startswith(("+", "%2B", "%2b")):
        prefix = "%2B" if text.startswith("%") else "+"
        digits = digits[1:] if prefix == "%2B" else digits  # the "2" of %2B is not ours
        cc = _country_code_length(digits)
        return prefix + digits[:cc] + "*" * max(len(digits) - cc - 2, 0) + digits[-2:]
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def _national(match: re.Match[str]) -> str:
    text = match.group(0)
    count = len(_digits(text))
    if not 9 <= count <= 15:
        return text
    return mask_phone(text)


def _international(match: re.Match[str]) -> str:
    text = match.group(0)
    count = len(_digits(text)) - (1 if text.startswith("%") else 0)
    if not 7 <= count <= 15:
        return text
    return mask_phone(text)


def mask_text(text: str) -> str:
    """Mask phone numbers, e-mail local parts and secrets anywhere in `text`."""
    text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    text = _AUTH_HEADER.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    text = _API_KEY.sub(REDACTED, text)
    text = _SECRET_ASSIGNMENT.sub(rf"\1{REDACTED}", text)
    text = _EMAIL.sub(r"***\1\2", text)
    text = _INTERNATIONAL.sub(_international, text)
    text = _NATIONAL_SEPARATED.sub(_national, text)
    return _NATIONAL_BARE.sub(lambda m: mask_phone(m.group(0)), text)


def is_secret_name(name: str) -> bool:
    normalised = name.lower().replace("-", "_")
    return any(part in normalised for part in SECRET_NAME_PARTS)


def mask_value(value: Any) -> Any:
    """Mask a structured value: strings are masked, mappings lose their secret keys,
    sequences are masked element by element; numbers and booleans pass unchanged."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): mask_value(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v) for v in value]
    return mask_text(str(value))
