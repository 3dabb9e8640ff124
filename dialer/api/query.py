"""Unknown query parameters are refused (422 naming each one) on every endpoint: a filter
the route does not know would otherwise be ignored, and a wrong answer would look right
(`/v1/cases?extrnal_ref=...` returning every case).

One check compares the request's parameter names with the ones its route declares (in
its signature or any of its dependencies, computed once per route). It runs after the
caller is authenticated and admitted (`dialer.api.deps.require` calls it), so a stranger
gets 401 whatever the query says; on routes without a key (health, metrics) an app-wide
dependency runs it."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from dialer.core.errors import FieldError, ValidationFailedError

TWILIO_PREFIX = "/v1/twilio/"
_DECLARED: dict[int, tuple[frozenset[str], bool]] = {}


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


def _keyed(dependant: Dependant) -> bool:
    """Whether a dependency of `dependant` checks an API key (`require` marks them)."""
    return any(hasattr(d.call, "dialer_roles") or _keyed(d) for d in dependant.dependencies)


def declared_query(route: APIRoute) -> tuple[frozenset[str], bool]:
    """The query parameters `route` reads, by the names a client sends, and whether it
    checks an API key."""
    found = _DECLARED.get(id(route))
    if found is None:
        names = frozenset(_names(route.dependant))
        found = _DECLARED[id(route)] = (names, _keyed(route.dependant))
    return found


async def reject_unknown_query(request: Request) -> None:
    """The app-wide dependency: routes without an API key (a keyed route checks after
    authenticating, in `require`)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and request.query_params and not declared_query(route)[1]:
        check_query(request)


def check_query(request: Request) -> None:
    """422 naming every query parameter the request's route does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    if request.url.path.startswith(TWILIO_PREFIX):  # (a route's own path lacks its prefix)
        return
    known, _ = declared_query(route)
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
