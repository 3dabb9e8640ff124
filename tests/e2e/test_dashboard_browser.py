"""/dashboard in a real headless browser (Debian's chromium, driven by Playwright): the
page asks for the key, shows the campaign's counts as the database has them, and a case's
decision with its reasons; no phone number appears unmasked. Skipped locally when
chromium or Playwright is missing; under CI=true that is a failure."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from demo.morning import create_campaigns, demo_service, run_morning, seed
from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow
from dialer.services.decisions import decide_stored

CHROMIUM = Path("/usr/bin/chromium")


def _browser_or_skip() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        async_playwright = None
    missing = [] if async_playwright else ["playwright (pip install -e '.[test]')"]
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the browser test is mandatory)")
        pytest.skip(message)
    return async_playwright


async def test_the_dashboard_shows_campaign_counts_and_a_decision(tmp_path: Path) -> None:
    async_playwright = _browser_or_skip()
    async with demo_service(tmp_path / "demo.sqlite", seed=5) as service:
        seeded = await seed(service.maker, service.settings, service.clock(), cases_per_portfolio=4)
        schedule = await create_campaigns(service.maker, service.clock())
        await run_morning(service, schedule, limit_seconds=120)
        async with service.maker() as session:
            latest = await session.scalar(
                select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id)
            )
            assert latest is not None
            counts = dict(
                (
                    await session.execute(
                        select(AttemptRow.state, func.count())
                        .where(AttemptRow.campaign_id == latest.id)
                        .group_by(AttemptRow.state)
                    )
                ).all()
            )
            case = await session.scalar(
                select(CaseRow)
                .where(CaseRow.portfolio == "cn-loans")
                .order_by(CaseRow.external_ref)
            )
            assert case is not None
            decision = await decide_stored(session, case.id, service.clock())
            phones = list(
                await session.scalars(
                    select(ContactPointRow.value).where(ContactPointRow.kind == "phone")
                )
            )
        rules = {r.rule for x in decision.refused for r in x.reasons} | {
            r.rule for r in decision.case_reasons
        }
        assert rules, "the chosen case should have refusals to show"

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page()
                await page.goto(f"{service.base_url}/dashboard")
                # a wrong key is refused by the API, and the page says so
                await page.fill("#key", "dk_nothing_wrong")
                await page.click("#connect")
                await page.wait_for_selector("#key-error:has-text('401')")
                await page.fill("#key", seeded.supervisor_key)
                await page.click("#connect")
                await page.wait_for_selector("#progress td[data-field=planned]")
                await page.select_option("#campaign", str(latest.id))
                await page.click("#refresh")
                await page.wait_for_selector("#progress td[data-field=planned]")

                async def cell(field: str) -> int:
                    text = await page.inner_text(f"#progress td[data-field={field}]")
                    return int(text)

                assert await cell("planned") == latest.planned
                assert await cell("completed") == counts.get("completed", 0)
                assert await cell("failed") == counts.get("failed", 0)
                assert await cell("refused_at_dispatch") == counts.get("refused", 0)

                await page.fill("#case-ref", case.external_ref)
                await page.click("#case-go")
                await page.wait_for_selector("#case-head")
                shown = await page.inner_text("#case")
                assert case.external_ref in shown
                for rule in rules:
                    assert rule in shown
                body = await page.content()
                for phone in phones:
                    assert phone not in body and phone[1:] not in body
                assert re.search(r"\+86\*+\d\d", shown), "contact points appear masked"
            finally:
                await browser.close()
