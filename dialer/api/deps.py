"""Dependencies: the request's session, settings, clock, and role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.api.query import check_query
from dialer.core.auth import Principal, Role
from dialer.core.clock import Clock
from dialer.core.errors import FieldError, ForbiddenError
from dialer.core.settings import Settings
from dialer.services import keys as key_service


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:  # closing rolls back whatever was not committed
        yield session


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


# The dependencies are `async`: FastAPI runs a sync one in a worker thread, a thread hop
# per request for an attribute read.
async def settings_dependency(request: Request) -> Settings:
    return get_settings(request)


async def now_dependency(request: Request) -> datetime:
    return get_now(request)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
# Every list's page size (lists page on with `next_cursor`: services.paging).
PageLimit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]
NowDep = Annotated[datetime, Depends(now_dependency)]


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return request.headers.get("x-api-key") or None


def require(
    *roles: Role, why: str = "", admin: bool = True
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting the given roles (and admin, unless `admin=False`: a route
    about the caller's own agent); `why` says in the 403 what the rule is."""
    allowed = frozenset(roles) | ({Role.ADMIN} if admin else frozenset())

    async def dependency(request: Request, session: SessionDep) -> Principal:
        verified: key_service.VerifiedKeys = request.app.state.verified_keys
        principal = await key_service.authenticate(session, _presented_key(request), verified)
        if principal.role not in allowed:
            names = ", ".join(sorted(allowed))
            because = f": {why}" if why else ""
            raise ForbiddenError(
                f"role {principal.role} may not do this (allowed: {names}){because}"
            )
        check_query(request)  # after the key: a stranger learns nothing from a 422
        return principal

    dependency.dialer_roles = allowed  # type: ignore[attr-defined]  # read by the route audit
    return dependency


Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
SupervisorOrService = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.SERVICE))]
Approver = Annotated[Principal, Depends(require(Role.APPROVER))]
CaseWriter = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.AGENT, Role.SERVICE))]
CaseReader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.AGENT, Role.SERVICE))]
Agent = Annotated[Principal, Depends(require(Role.AGENT))]
# /v1/agents/me/*: the caller's own collector. Only an agent key has one; an admin or a
# supervisor calling it would create an agent named after their key on the floor.
AgentSelf = Annotated[
    Principal,
    Depends(
        require(
            Role.AGENT,
            admin=False,
            why="only an agent key has a desk agent ('me'); supervisors and admins see"
            " agents at GET /v1/agents and set one's endpoint at PUT /v1/agents/{name}/endpoint",
        )
    ),
]
# Recording a debtor unreachable loosens protection: people who work the case, not services.
AgentOrSupervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.AGENT))]
TaskReader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.APPROVER, Role.AGENT))]
TaskWorker = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.AGENT))]
StrategyReader = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.APPROVER))]
AuditReader = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
PreviewUser = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.AGENT))]
ServiceOnly = Annotated[Principal, Depends(require(Role.SERVICE))]
# Architecture invariant 8: only a supervisor clears a protective fact.
ProtectiveClearer = Annotated[
    Principal,
    Depends(
        require(
            Role.SUPERVISOR,
            why="only a supervisor clears a protective fact (cease, dispute, bankruptcy, "
            "deceased, attorney, do-not-call, a refusal, an opt-out, a consent revocation); "
            "any role may add one",
        )
    ),
]
# A bulk export of attempts with the numbers called: reporting (supervisors) and the
# ledger's or warehouse's feed (service keys); agents work case by case, approvers approve.
Exporter = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.SERVICE))]
# An agent records what happened (outcomes, payments); the book's money moves with them.
PaymentRecorder = Annotated[Principal, Depends(require(Role.SERVICE, Role.AGENT))]

# The book's money and status: the importer and service keys keep them (admin too).
BOOK_FIELDS = ("amount", "balance", "currency", "due_date", "status")
BOOK_ROLES = frozenset({Role.SERVICE, Role.ADMIN})


def check_book_fields(who: Principal, given: Iterable[str]) -> None:
    """403 when a role that does not keep the book changes its money or status."""
    touched = [f for f in BOOK_FIELDS if f in set(given)]
    if touched and who.role not in BOOK_ROLES:
        raise ForbiddenError(
            f"role {who.role} may not change {', '.join(touched)}: money and status belong "
            "to the book (imports and service keys update them); an agent records outcomes "
            "and payments",
            [FieldError(f, "set by the book, not by this role") for f in touched],
        )
