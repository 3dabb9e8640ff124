"""Literal case documents for tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.services import portfolios


async def add_cn_loans(session: AsyncSession, *, actor: str, now: datetime) -> None:
    """The `cn-loans` portfolio most tests use: China, cn-consumer, Shanghai time."""
    await portfolios.create_portfolio(
        session,
        name="cn-loans",
        profile="cn-consumer",
        country="CN",
        timezone="Asia/Shanghai",
        actor=actor,
        now=now,
    )


def cn_case(ref: str = "CN-1", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "external_ref": ref,
        "portfolio": "cn-loans",
        "amount": "12000.00",
        "currency": "CNY",
        "due_date": "2026-11-20",
        "parties": [
            {
                "ref": "debtor",
                "role": "debtor",
                "name": "Wang Fang",
                "timezone": "Asia/Shanghai",
                "contact_points": [
                    {"kind": "phone", "value": "138 0013 8000", "validity": "verified"},
                    {"kind": "phone", "value": "+86 139 1234 5678"},
                ],
            },
            {
                "ref": "ref-1",
                "role": "third_party",
                "name": "Li Na",
                "relation": "colleague",
                "contact_points": [{"kind": "phone", "value": "13700137000"}],
            },
        ],
    }
    doc.update(overrides)
    return doc


def us_case(ref: str = "US-1", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "external_ref": ref,
        "portfolio": "us-loans",
        "amount": "950.50",
        "currency": "USD",
        "due_date": "2026-11-10",
        "parties": [
            {
                "ref": "debtor",
                "role": "debtor",
                "name": "Jordan Miles",
                "contact_points": [
                    {"kind": "phone", "value": "(212) 555-0199", "consent": ["voice", "sms"]},
                    {"kind": "email", "value": "jordan.miles@Example.COM"},
                ],
            }
        ],
    }
    doc.update(overrides)
    return doc
