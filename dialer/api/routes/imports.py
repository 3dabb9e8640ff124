"""Bulk import: a multipart file, or a raw text/csv or application/x-ndjson body."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from starlette.types import Message

from dialer.api.deps import NowDep, SessionDep, SettingsDep, SupervisorOrService
from dialer.core.errors import FieldError, PayloadTooLargeError, ValidationFailedError
from dialer.schemas.imports import ImportReportOut
from dialer.services import imports

router = APIRouter(tags=["imports"])


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/imports",
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def import_cases(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    who: SupervisorOrService,
    portfolio: str | None = None,
) -> object:
    """Import cases; returns counts and every rejected line with its reason."""
    content_type = request.headers.get("content-type", "")
    filename: str | None = None
    if content_type.startswith("multipart/form-data"):
        raw = await _read_limited(request, settings.max_upload_bytes)

        async def replay() -> Message:
            return {"type": "http.request", "body": raw, "more_body": False}

        form = await Request(request.scope, replay).form(max_part_size=settings.max_upload_bytes)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailedError(
                "send the file in a form field named `file`",
                [FieldError("file", "a file is required")],
            )
        data = await upload.read()
        filename, content_type = upload.filename, upload.content_type or ""
    else:
        data = await _read_limited(request, settings.max_upload_bytes)
    fmt = imports.format_for(filename, content_type)
    report = await imports.import_stream(
        session,
        imports.lines_of(data),
        fmt=fmt,
        default_portfolio=portfolio,
        settings=settings,
        actor=who.actor,
        now=now,
    )
    return {
        "lines": report.lines,
        "cases_created": report.cases_created,
        "cases_updated": report.cases_updated,
        "rejected": len({e.external_ref or f"line {e.line}" for e in report.errors}),
        "errors": [asdict(e) for e in report.errors],
        "kept": [asdict(k) for k in report.kept],
    }
