"""Unknown query parameters are refused (422 naming each one) on every endpoint: a filter
the route does not know would otherwise be ignored, and a wrong answer would look right
(`/v1/cases?extrnal_ref=...` returning every case). A parameter that takes one value and
is given twice (`?format=csv&format=jsonl`) is refused too: FastAPI would keep one of them.

One check compares the request's parameter names with the ones its route declares (in
its signature or any of its dependencies, computed once per route). It runs after the
caller is authenticated and admitted (`dialer.api.deps.require` calls it), so a stranger
gets 401 whatever the query says; on routes without a key (health, metrics) an app-wide
dependency runs it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from dialer.core.errors import FieldError, ValidationFailedError

TWILIO_PREFIX = "/v1/twilio/"
_DECLARED: dict[int, tuple[frozenset[str], bool, frozenset[str]]] = {}


def _many(annotation: Any) -> bool:
    """Whether a parameter of this type takes several values (`list[str] | None`)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_many(arg) for arg in get_args(annotation))
    return (
        isinstance(origin, type)
        and issubclass(origin, (Sequence, set, frozenset))
        and (not issubclass(origin, (str, bytes)))
    )


def _names(dependant: Dependant) -> tuple[set[str], set[str]]:
    """The query parameters a dependant reads, and those of them that take several values."""
    names: set[str] = set()
    many: set[str] = set()
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a query model
            for n, f in model.model_fields.items():
                names.add(f.alias or n)
                if _many(f.annotation):
                    many.add(f.alias or n)
        else:
            names.add(field.alias)
            if _many(model):
                many.add(field.alias)
    for sub in dependant.dependencies:
        sub_names, sub_many = _names(sub)
        names |= sub_names
        many |= sub_many
    return names, many


def _keyed(dependant: Dependant) -> bool:
    """Whether a dependency of `dependant` checks an API key (`require` marks them)."""
    return any(hasattr(d.call, "dialer_roles") or _keyed(d) for d in dependant.dependencies)


def declared_query(route: APIRoute) -> tuple[frozenset[str], bool, frozenset[str]]:
    """The query parameters `route` reads, by the names a client sends, whether it checks
    an API key, and which of its parameters take several values."""
    found = _DECLARED.get(id(route))
    if found is None:
        names, many = _names(route.dependant)
        found = (frozenset(names), _keyed(route.dependant), frozenset(many))
        _DECLARED[id(route)] = found
    return found


async def reject_unknown_query(request: Request) -> None:
    """The app-wide dependency: routes without an API key (a keyed route checks after
    authenticating, in `require`)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and request.query_params and not declared_query(route)[1]:
        check_query(request)


def check_query(request: Request) -> None:
    """422 naming every query parameter the request's route does not declare, and every
    one-valued parameter given more than once."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    if request.url.path.startswith(TWILIO_PREFIX):  # (a route's own path lacks its prefix)
        return
    known, _, many = declared_query(route)
    given = Counter(name for name, _ in request.query_params.multi_items())
    unknown = [name for name in given if name not in known]
    if not unknown:
        repeated = [n for n, times in given.items() if times > 1 and n not in many]
        if repeated:
            raise ValidationFailedError(
                f"query parameter{'s' if len(repeated) > 1 else ''} given more than once: "
                + ", ".join(repeated),
                [FieldError(n, "takes one value and was given more than once") for n in repeated],
            )
        return
    accepted = ", ".join(sorted(known)) or "none"
    raise ValidationFailedError(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
        [
            FieldError(name, f"not a query parameter of this endpoint (it takes: {accepted})")
            for name in unknown
        ],
    )
