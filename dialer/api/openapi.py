"""The OpenAPI document declares the one error shape every 4xx and 5xx of /v1 has
(`dialer.api.errors`), instead of FastAPI's default `HTTPValidationError` for 422 and
nothing for the rest: clients (and schemathesis) can check error bodies too.

`/docs` (Swagger UI) and `/redoc` load their scripts, styles and icon from this service
(`/docs-assets`, the files the `fastapi-offline` package ships), never from a CDN: they
work on a machine with no internet."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict

ASSETS = "/docs-assets"


class FieldErrorOut(BaseModel):
    field: str
    reason: str


class ErrorDetailOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. a rejected strategy's `violations`

    code: str
    message: str
    fields: list[FieldErrorOut]
    # an unexpected error (500, 503): the id its log line carries
    request_id: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetailOut


ERRORS = {
    400: "malformed request",
    401: "no valid API key",
    403: "the key's role may not do this",
    404: "not found",
    405: "method not allowed",
    409: "conflicts with the current state",
    413: "body over the size limit",
    415: "unsupported content type",
    422: "invalid field values (each named with its reason)",
    500: "an unexpected error; `request_id` names its log line",
    503: "a dependency (the database, the queue) is unavailable: retry later",
}
_REF = "#/components/schemas/{model}"
_OWN_ERRORS = "/v1/"  # Twilio's callbacks and the health endpoints answer in their own way
_NOT_OURS = ("/v1/twilio/",)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        model = ErrorOut.model_json_schema(ref_template=_REF)
        components.update(model.pop("$defs", {}))
        components["ErrorOut"] = model
        error = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}}
        for path, operations in doc.get("paths", {}).items():
            if not path.startswith(_OWN_ERRORS) or path.startswith(_NOT_OURS):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERRORS.items():
                    responses[str(status)] = {"description": description, "content": error}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """`/docs` and `/redoc` with their assets served from `/docs-assets` (build the app with
    `docs_url=None, redoc_url=None`)."""
    static = Path(str(files("fastapi_offline").joinpath("static")))
    app.mount(ASSETS, StaticFiles(directory=static), name="docs-assets")
    title = f"{app.title}: API"
    schema = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=schema,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=schema,
            title=title,
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
