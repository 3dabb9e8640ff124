"""Unknown query parameters are refused (422 naming each one) on every endpoint: a filter
the route does not know would otherwise be ignored, and a wrong answer would look right
(`/v1/cases?extrnal_ref=...` returning every case).

One app-wide dependency compares the request's parameter names with the ones its route
declares (in its signature or any of its dependencies), computed once per route."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from dialer.core.errors import FieldError, ValidationFailedError

TWILIO_PREFIX = "/v1/twilio/"
_DECLARED: dict[int, frozenset[str]] = {}


def _names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
            names.update(f.alias or n for n, f in model.model_fields.items())
        else:
            names.add(field.alias)
    for sub in dependant.dependencies:
        names |= _names(sub)
    return names


def declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameters `route` reads, by the names a client sends."""
    found = _DECLARED.get(id(route))
    if found is None:
        found = _DECLARED[id(route)] = frozenset(_names(route.dependant))
    return found


async def reject_unknown_query(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    if route.path.startswith(TWILIO_PREFIX):
        return
    known = declared_query(route)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if not unknown:
        return
    accepted = ", ".join(sorted(known)) or "none"
    raise ValidationFailedError(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
        [
            FieldError(name, f"not a query parameter of this endpoint (it takes: {accepted})")
            for name in unknown
        ],
    )
