"""Filters every list shares: `?portfolio=` names a portfolio that exists (422 naming
`portfolio` otherwise), so a typo is refused rather than answered with an empty page that
looks like "nothing there"; a real portfolio with nothing in it is still an empty 200."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from dialer.api.deps import SessionDep
from dialer.services.cases import portfolio_for


async def portfolio_filter(
    session: SessionDep,
    portfolio: Annotated[str | None, Query(max_length=64, description="a portfolio's name")] = None,
) -> str | None:
    if portfolio is not None:
        await portfolio_for(session, portfolio, "portfolio")
    return portfolio


PortfolioFilter = Annotated[str | None, Depends(portfolio_filter)]
