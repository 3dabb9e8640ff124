"""Contact data as stored: phones in E.164 (`phonenumbers`), emails trimmed; every problem
is reported with the field it is in, e.g. `parties[0].contact_points[1].value`."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from dialer.core.errors import FieldError, ValidationFailedError
from dialer.schemas.cases import CaseIn
from strategy.calendar import number_facts
from strategy.model import ContactKind

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# A phone number's stored facts: its candidate zones and whether it takes SMS.
NumberFacts = tuple[tuple[str, ...], bool | None]


@lru_cache(maxsize=65_536)  # a file repeats numbers (a shared office line, a relative's)
def phone(value: str, region: str) -> tuple[str, NumberFacts] | None:
    """The number in E.164 with its facts (`strategy.calendar.number_facts`), parsed once;
    None when it is not a valid number (for `region` if local)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(number)  # UNKNOWN: not a valid number
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return None
    formatted = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return formatted, number_facts(number, kind)


def e164(value: str, region: str) -> str | None:
    """The number in E.164, or None when it is not a valid number (for `region` if local)."""
    found = phone(value, region)
    return found[0] if found is not None else None


def normalise_case(
    case: CaseIn, default_region: str, numbers: dict[str, NumberFacts] | None = None
) -> CaseIn:
    """The case with normalised contact values; raises with every bad field at once.
    `numbers` (if given) receives each phone's facts, for `convert.case_rows`."""
    region = case.country or default_region
    errors: list[FieldError] = []
    parties = []
    party_keys: set[str] = set()
    for i, party in enumerate(case.parties):
        key = party.ref or f"#{i}"
        if key in party_keys:
            errors.append(FieldError(f"parties[{i}].ref", f"party key {key!r} is used twice"))
        party_keys.add(key)
        points = []
        seen: set[tuple[str, str]] = set()
        for j, point in enumerate(party.contact_points):
            where = f"parties[{i}].contact_points[{j}].value"
            raw = point.value.strip()
            if point.kind == ContactKind.PHONE:
                found = phone(raw, region)
                if found is None:
                    errors.append(FieldError(where, f"{raw!r} is not a valid phone number"))
                    continue
                value = found[0]
                if numbers is not None:
                    numbers[value] = found[1]
            else:
                if not _EMAIL.match(raw):
                    errors.append(FieldError(where, f"{raw!r} is not an email address"))
                    continue
                local, _, domain = raw.rpartition("@")
                value = f"{local}@{domain.lower()}"
            if (point.kind, value) in seen:
                errors.append(FieldError(where, f"{value} is listed twice for this party"))
                continue
            seen.add((point.kind, value))
            points.append(point.model_copy(update={"value": value}))
        parties.append(party.model_copy(update={"contact_points": points}))
    if errors:
        raise ValidationFailedError("the case has invalid fields", errors)
    return case.model_copy(update={"parties": parties})
