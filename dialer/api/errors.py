"""The single JSON error shape for every 4xx (and, with a `request_id`, every 5xx:
`dialer.api.unexpected`):
`{"error": {"code": ..., "message": ..., "fields": [{"field": ..., "reason": ...}]}}`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialer.core.errors import DialerError, FieldError, StrategyRejectedError, field_path
from strategy.model import DecisionInputError

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
}


def error_body(
    code: str, message: str, fields: Sequence[FieldError] = (), **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "fields": [{"field": f.field, "reason": f.reason} for f in fields],
    }
    body.update(extra)
    return {"error": body}


def pydantic_fields(errors: Sequence[Any]) -> list[FieldError]:
    return [_field_error(e) for e in errors]


def _field_error(e: Any) -> FieldError:
    if e.get("type") == "json_invalid":
        # FastAPI puts the decoder's character offset where a field name would go.
        loc, detail = tuple(e.get("loc", ())), (e.get("ctx") or {}).get("error")
        where = f" at offset {loc[1]}" if len(loc) == 2 and isinstance(loc[1], int) else ""
        return FieldError("body", f"not valid JSON{where}: {detail or 'cannot be decoded'}")
    return FieldError(field_path(e.get("loc", ())), str(e.get("msg", "")))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DialerError)
    async def _dialer(_: Request, exc: DialerError) -> JSONResponse:
        extra: dict[str, Any] = dict(exc.extra)
        if isinstance(exc, StrategyRejectedError):
            extra["violations"] = exc.violations
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.fields, **extra),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(DecisionInputError)
    async def _decision_input(_: Request, exc: DecisionInputError) -> JSONResponse:
        # The engine refused facts that contradict themselves (an attempt naming a party
        # or contact point not in the case, a profile the strategy may not run under).
        return JSONResponse(
            error_body("validation_failed", exc.message, [FieldError(exc.field, exc.message)]),
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "validation_failed", "the request is invalid", pydantic_fields(exc.errors())
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
