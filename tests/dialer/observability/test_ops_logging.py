"""Logs are one JSON object per line, and no phone number, e-mail address or secret gets
into them: not in the message, its arguments, extra fields, nor exception text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from dialer.core.settings import Settings
from dialer.observability.logging import RedactingFilter, build_handler, configure_logging
from dialer.observability.redact import mask_phone, mask_text

PHONE = "+8613812345678"
US_PHONE = "+14155550123"
EMAIL = "jane.doe@example.com"
TOKEN = "0123456789abcdef0123456789abcdef"  # a Twilio auth token's shape
API_KEY = "dk_Zq8Lh2b3c4d5e6f7g8h9"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.ops.logging")
    logger.handlers[:] = [build_handler("json", stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers.clear()
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_clean(text: str) -> None:
    for secret in (PHONE, "13812345678", US_PHONE, "4155550123", "jane.doe", TOKEN, API_KEY):
        assert secret not in text, secret


def test_one_json_object_per_line_with_the_standard_fields_and_extras(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("attempt %s reserved", "a-1", extra={"attempt_id": "a-1", "n": 3})
    logger.warning("second line")
    first, second = lines(stream)
    assert set(first) == {"ts", "level", "logger", "message", "attempt_id", "n"}
    assert first["level"] == "info" and first["logger"] == "tests.ops.logging"
    assert first["message"] == "attempt a-1 reserved"
    assert first["attempt_id"] == "a-1" and first["n"] == 3
    assert first["ts"].endswith("+00:00")
    assert second["level"] == "warning"


def test_phone_numbers_keep_country_code_and_last_two_digits() -> None:
    assert mask_phone(PHONE) == "+86*********78"
    assert mask_phone(US_PHONE) == "+1********23"
    assert mask_text(f"to {PHONE}") == "to +86*********78"
    assert mask_text("To=%2B8613812345678&From=x") == "To=%2B86*********78&From=x"
    for national in ("(415) 555-0123", "415-555-0123", "415.555.0123", "4155550123"):
        assert mask_text(f"dial {national} now") == "dial ********23 now", national
    assert mask_text("cn mobile 13812345678") == "cn mobile *********78"
    assert mask_text("+86 138 1234 5678") == "+86*********78"
    assert mask_text("uk 020 7946 0958") == "uk *********58"


def test_ids_dates_and_counts_are_not_mistaken_for_phone_numbers() -> None:
    for text in (
        "attempt 3f2a1b4c-1234-5678-9abc-def012345678",
        "case 00000000-0000-0000-0000-000000000000",
        "at 2026-12-01T02:00:00+00:00 took 12345 ms",
        "epoch 1764554400, host 192.168.100.200, version 1.2.3",
        "GET /v1/cases?page=2 HTTP/1.1 200",
    ):
        assert mask_text(text) == text


def test_message_arguments_and_extra_fields_are_masked(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info(
        "calling %s for %s",
        PHONE,
        EMAIL,
        extra={
            "to": US_PHONE,
            "contact": {"email": EMAIL, "phones": [PHONE, "(415) 555-0123"]},
        },
    )
    (entry,) = lines(stream)
    assert entry["message"] == "calling +86*********78 for ***@example.com"
    assert entry["to"] == "+1********23"
    assert entry["contact"] == {
        "email": "***@example.com",
        "phones": ["+86*********78", "********23"],
    }
    assert_clean(stream.getvalue())


def test_secret_fields_are_dropped_and_secrets_in_text_redacted(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info(
        "twilio request",
        extra={
            "auth_token": TOKEN,
            "twilio_auth_token": TOKEN,
            "api_key": API_KEY,
            "password": "hunter2",
            "headers": {
                "Authorization": f"Bearer {API_KEY}",
                "X-Twilio-Signature": "sig",
                "X-API-Key": API_KEY,
                "Content-Type": "application/x-www-form-urlencoded",
            },
            "url": "postgresql+asyncpg://dialer:hunter2@db:5432/dialer",
        },
    )
    logger.info("header was Authorization: Bearer %s", API_KEY)
    logger.info("config auth_token=%s api_key: %s", TOKEN, API_KEY)
    first, second, third = lines(stream)
    for name in ("auth_token", "twilio_auth_token", "api_key", "password"):
        assert name not in first
    assert first["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert first["url"] == "postgresql+asyncpg://dialer:[redacted]@db:5432/dialer"
    assert second["message"] == "header was Authorization: [redacted]"
    assert third["message"] == "config auth_token=[redacted] api_key: [redacted]"
    assert_clean(stream.getvalue())
    assert "hunter2" not in stream.getvalue()


def test_exception_text_is_masked(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        options = {"auth_token": TOKEN, "key": API_KEY}
        raise ValueError(f"provider refused {PHONE} for {EMAIL} with {options}")
    except ValueError:
        logger.exception("send failed for %s", US_PHONE)
    (entry,) = lines(stream)
    assert entry["level"] == "error"
    assert "Traceback" in entry["exc"] and "ValueError: provider refused" in entry["exc"]
    assert "+86*********78" in entry["exc"] and "***@example.com" in entry["exc"]
    assert_clean(stream.getvalue())


def test_text_format_is_masked_too() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.ops.text")
    logger.handlers[:] = [build_handler("text", stream)]
    logger.propagate = False
    try:
        logger.warning("retry %s", PHONE, extra={"auth_token": TOKEN})
    finally:
        logger.handlers.clear()
        logger.propagate = True
    assert "+86*********78" in stream.getvalue()
    assert_clean(stream.getvalue())


def test_a_record_is_masked_once_even_through_two_filters() -> None:
    record = logging.LogRecord("x", logging.INFO, "", 0, "to %s", (PHONE,), None)
    assert RedactingFilter().filter(record) and RedactingFilter().filter(record)
    assert record.getMessage() == "to +86*********78"


def test_configure_logging_installs_one_root_handler_and_routes_uvicorn_to_it() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings(log_level="debug", log_format="json"))  # type: ignore[arg-type]
        configure_logging(Settings(log_level="WARNING"))
        ours = [h for h in root.handlers if getattr(h, "_dialer_handler", False)]
        assert len(ours) == 1
        assert root.level == logging.WARNING
        access = logging.getLogger("uvicorn.access")
        assert access.propagate and not access.handlers
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_httpx_request_lines_are_left_out_at_info() -> None:
    # One INFO line per HTTP request (each provider call, each simulated callback) buried
    # the service's own lines; httpx's warnings still come through.
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level)
    try:
        configure_logging(Settings(log_level="INFO"))
        httpx_log = logging.getLogger("httpx")
        assert not httpx_log.isEnabledFor(logging.INFO)
        assert httpx_log.isEnabledFor(logging.WARNING)
        assert logging.getLogger("dialer.dispatch").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        logging.getLogger("httpx").setLevel(saved[2])


def test_a_bad_format_string_is_logged_masked_and_does_not_raise(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    logger.info("to %s and %s", PHONE)  # one argument short
    (entry,) = lines(stream)
    assert "+86*********78" in entry["message"]
    assert_clean(stream.getvalue())
