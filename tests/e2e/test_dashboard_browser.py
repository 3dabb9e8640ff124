"""/dashboard, /docs and /redoc in a real headless browser (Debian's chromium, driven by
Playwright), with every request that leaves the service refused: the page asks for the
key and keeps it for the tab's session, shows the campaign's counts as the database has
them, times in the portfolio's zone, the next send of a campaign planned for tomorrow,
the morning's charts, and a case's decision as of a chosen time with its timeline; no
phone number appears unmasked. Screenshots are written (to $DASHBOARD_SCREENSHOTS when
set) and their charts checked to be drawn. Skipped locally when chromium or Playwright is
missing; under CI=true that is a failure."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from demo.morning import create_campaigns, demo_service, run_morning, seed
from dialer.db.models import AttemptRow, CampaignRow, CaseRow, ContactPointRow
from dialer.dispatch import lifecycle, planner
from dialer.schemas.campaigns import CampaignIn
from dialer.services import campaigns
from dialer.services.decisions import decide_stored

CHROMIUM = Path("/usr/bin/chromium")
SHANGHAI = ZoneInfo("Asia/Shanghai")
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NOT_DISPATCHED = {"planned", "queued", "refused", "cancelled", "not_sent"}


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


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _offline(page: Any, base_url: str) -> list[str]:
    """Refuse every request that is not to the service; returns the list of refused URLs."""
    refused: list[str] = []

    async def route(r: Any) -> None:
        if r.request.url.startswith(base_url):
            await r.continue_()
        else:
            refused.append(r.request.url)
            await r.abort()

    await page.route("**/*", route)
    return refused


async def _drawn(page: Any, selector: str) -> int:
    """The bars drawn in an SVG chart (each visible, with a size), after checking the
    chart itself is on screen with a size."""
    box = await page.locator(selector).bounding_box()
    assert box and box["width"] > 100 and box["height"] > 20, (selector, box)
    sizes = await page.eval_on_selector_all(
        f"{selector} rect[data-value]",
        "rs => rs.map(r => [r.getBBox().width, r.getBBox().height, +r.dataset.value])",
    )
    assert all(w > 0 and h > 0 for w, h, _ in sizes), (selector, sizes)
    return sum(int(v) for _, _, v in sizes)


async def test_the_dashboard_in_a_browser(tmp_path: Path) -> None:
    # one scenario end to end: the set-up is a whole simulated morning (hence its length)
    async_playwright = _browser_or_skip()
    shots = _shots(tmp_path)
    async with demo_service(tmp_path / "demo.sqlite", seed=5) as service:
        seeded = await seed(service.maker, service.settings, service.clock(), cases_per_portfolio=4)
        schedule = await create_campaigns(service.maker, service.clock())
        await run_morning(service, schedule, limit_seconds=120)
        cn = next(s.campaign_id for s in schedule if s.portfolio == "cn-loans")
        # A second cn-loans campaign started after the window closed: planned for tomorrow.
        now = service.clock()
        async with service.maker() as session:
            later = await campaigns.create_campaign(
                session,
                CampaignIn.model_validate(
                    {"name": "tomorrow", "portfolio": "cn-loans", "channels": ["voice"],
                     "window": "09:00-09:30", "pacing_cps": 5}
                ),
                actor="test",
                now=now,
            )  # fmt: skip
            await campaigns.transition(session, later.id, "running", actor="test", now=now)
        assert await lifecycle.claim(service.maker, "test", now) == later.id
        await planner.plan_campaign(service.maker, later.id, service.clock, owner="test")
        async with service.maker() as session:
            tomorrow = await campaigns.progress(session, later.id)
            morning = await campaigns.progress(session, cn)
            attempts = (
                await session.execute(
                    select(AttemptRow.state, AttemptRow.case_id).where(AttemptRow.campaign_id == cn)
                )
            ).all()
            busiest = Counter(case_id for _, case_id in attempts).most_common(1)[0][0]
            case = await session.get(CaseRow, busiest)
            assert case is not None
            decision = await decide_stored(session, case.id, service.clock())
            phones = list(
                await session.scalars(
                    select(ContactPointRow.value).where(ContactPointRow.kind == "phone")
                )
            )
            latest = await session.scalar(
                select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id)
            )
            assert latest is not None and latest.id == later.id
            history = await session.scalar(
                select(func.count()).select_from(AttemptRow).where(AttemptRow.case_id == case.id)
            )
        assert tomorrow.planned > 0 and tomorrow.dispatched == 0 and tomorrow.next_send_at
        assert tomorrow.next_send_at.astimezone(SHANGHAI) > now.astimezone(SHANGHAI)
        rules = {r.rule for x in decision.refused for r in x.reasons} | {
            r.rule for r in decision.case_reasons
        }

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                context = await browser.new_context(viewport={"width": 1400, "height": 900})
                page = await context.new_page()
                blocked: list[str] = []  # what the page's Content-Security-Policy refused
                page.on(
                    "console",
                    lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else 0,
                )
                refused = await _offline(page, service.base_url)
                await page.goto(f"{service.base_url}/dashboard")
                # a wrong key is refused by the API, and the page says so
                await page.fill("#key", "dk_nothing_wrong")
                await page.click("#connect")
                await page.wait_for_selector("#key-error:has-text('401')")
                await page.fill("#key", seeded.supervisor_key)
                await page.click("#connect")
                await page.wait_for_selector("#progress td[data-field=planned]")
                # the key is kept for the tab's session: a reload shows the data again
                await page.reload()
                await page.wait_for_selector("#progress td[data-field=planned]")
                assert await page.evaluate("Object.values(sessionStorage)") == [
                    seeded.supervisor_key
                ]
                assert await page.evaluate("localStorage.length") == 0

                # the campaign planned for tomorrow: not "0% stalled" but its first send,
                # in Shanghai's time
                await page.select_option("#campaign", str(later.id))
                await page.wait_for_selector("#next-send")
                first = tomorrow.next_send_at.astimezone(SHANGHAI)
                shown = await page.inner_text("#next-send")
                assert "not started yet" in shown, shown
                assert f"{first:%d %b %Y}, {first:%H:%M}" in shown, (shown, first)
                assert "Asia/Shanghai" in shown
                await page.screenshot(path=str(shots / "dashboard-tomorrow.png"), full_page=True)

                # the morning's campaign: counts as the database has them, and its charts
                await page.select_option("#campaign", str(cn))
                await page.wait_for_selector("#hours-svg")

                async def cell(field: str) -> int:
                    return int(await page.inner_text(f"#progress td[data-field={field}]"))

                states = Counter(state for state, _ in attempts)
                assert await cell("planned") == morning.planned
                assert await cell("completed") == states["completed"]
                assert await cell("failed") == states["failed"]
                assert await cell("refused_at_dispatch") == states["refused"]
                dispatched = sum(n for s, n in states.items() if s not in NOT_DISPATCHED)
                assert await _drawn(page, "#hours-svg") == dispatched
                assert await _drawn(page, "#tiers-svg") == len(attempts)
                assert await _drawn(page, "#rules-svg") == sum(morning.refused_by_rule.values())
                rates = await page.eval_on_selector_all(
                    "#rates-svg rect[data-rate]", "rs => rs.length"
                )
                assert rates >= 1
                # hours are Shanghai's: the morning window is 09:00-12:00 local
                hours = await page.eval_on_selector_all(
                    "#hours-svg rect[data-group]",
                    "rs => [...new Set(rs.map(r => r.dataset.group))]",
                )
                assert hours and all("09:00" <= h <= "12:00" for h in hours), hours
                await page.screenshot(path=str(shots / "dashboard-morning.png"), full_page=True)

                # a case: its decision now, its timeline, then as of its first event
                await page.fill("#case-ref", case.external_ref)
                await page.click("#case-go")
                await page.wait_for_selector("#case-head")
                shown = await page.inner_text("#case")
                assert case.external_ref in shown
                for rule in rules:
                    assert rule in shown
                assert f"{service.clock().astimezone(SHANGHAI):%d %b %Y}" in await page.inner_text(
                    "#case-asof"
                )
                entries = await page.locator("#timeline tr.entry").count()
                assert entries >= history
                first_at = await page.inner_text("#timeline tr.entry td >> nth=0")
                await page.locator("#timeline button.as-of").first.click()
                await page.wait_for_function(
                    "t => document.querySelector('#case-asof').innerText.includes(t)",
                    arg=first_at.split(" (")[0].rsplit(" ", 1)[0],
                )
                assert await page.input_value("#case-at") != ""
                body = await page.content()
                for phone in phones:
                    assert phone not in body and phone[1:] not in body
                assert re.search(r"\+86\*+\d\d", shown), "contact points appear masked"
                await page.screenshot(path=str(shots / "dashboard-case.png"), full_page=True)

                assert blocked == [], "the dashboard runs under its own policy"
                # /docs and /redoc render from the service's own assets
                await page.goto(f"{service.base_url}/docs")
                await page.wait_for_selector(".opblock", timeout=30_000)
                assert await page.locator(".opblock").count() > 20
                await page.screenshot(path=str(shots / "docs.png"))
                await page.goto(f"{service.base_url}/redoc")
                await page.wait_for_selector("[role=menuitem], .menu-content", timeout=30_000)
                await page.wait_for_selector("text=collections-dialer", timeout=30_000)
                await page.screenshot(path=str(shots / "redoc.png"))
                # Only Redoc's "by Redocly" logo, which removes itself when it cannot
                # load (its onError); everything the pages need came from the service.
                assert set(refused) <= {REDOCLY_LOGO}, f"pages asked the internet for {refused}"
            finally:
                await browser.close()
    for name in ("dashboard-tomorrow", "dashboard-morning", "dashboard-case", "docs", "redoc"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
