"""/desk in headless Chromium: the agent opens the desk with their key, goes available, is
handed a verified debtor (the debt and the US disclosure shown) and then a third party (no
debt facts at all), and cannot take the next call before the wrap-up is recorded."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta
from pathlib import Path

from dialer.core.auth import Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.services import agents
from tests.dialer.api.test_desk_preview_api import _preview_campaign
from tests.dialer.factories import us_case
from tests.dialer.support import NOW, Api
from tests.dialer.twilio_forms import Hooks, configure
from tests.e2e.test_dashboard_browser import CHROMIUM, _browser_or_skip


async def test_the_desk_shows_only_what_the_disclosure_allows(api: Api, tmp_path: Path) -> None:
    async_playwright = _browser_or_skip()
    hooks: Hooks = configure(api)
    doc = us_case()
    doc["parties"].append(
        {
            "ref": "sister",
            "role": "third_party",
            "name": "Casey Miles",
            "relation": "sibling",
            "contact_points": [{"kind": "phone", "value": "(212) 555-0142"}],
        }
    )
    r = await api.client.post("/v1/cases", json=doc, headers=api.auth(Role.SERVICE))
    assert r.status_code == 201, r.text
    case = r.json()
    debtor = await hooks.add_attempt(case, state="in_progress", party=0, disclosure="full")
    third = await hooks.add_attempt(case, state="in_progress", party=1, disclosure="none")
    engine = build_engine(api.settings)
    maker = build_sessionmaker(engine)
    key = api.keys[Role.AGENT]
    pages: dict[str, str] = {}
    owed_form: dict[str, str] = {}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = await browser.new_page()

            async def route(request_route, request) -> None:  # type: ignore[no-untyped-def]
                response = await api.client.request(
                    request.method,
                    request.url.replace("http://desk.test", ""),
                    headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                    content=request.post_data_buffer,
                )
                await request_route.fulfill(
                    status=response.status_code,
                    headers=dict(response.headers),
                    body=response.content,
                )

            await page.route("http://desk.test/**", route)
            await page.goto("http://desk.test/desk")
            await page.fill("#key", key)
            await page.click("#go")
            await api.client.put(
                "/v1/agents/me/endpoint",
                json={"endpoint": "client:agent-1"},
                headers=api.auth(Role.AGENT),
            )
            await page.click("[data-state=available]")
            await page.wait_for_selector("#state.available")
            idle = await page.inner_text("#call")
            form_shown_idle = await page.is_visible("#wrapup")
            for name, attempt in (("debtor", debtor), ("third", third)):
                async with maker() as session:
                    await agents.hold_for(session, uuid.uuid4(), attempt.id, NOW)
                    await agents.call_answered(session, attempt.id, NOW)
                    await session.commit()
                await page.wait_for_selector("#say", timeout=5000)
                pages[name] = await page.inner_text("#call")
                shots = Path(os.environ.get("DIALER_SCREENSHOTS", tmp_path))  # to look at them
                await page.screenshot(path=str(shots / f"desk-{name}.png"), full_page=True)
                async with maker() as session:
                    await agents.call_ended(
                        session, attempt.id, NOW, wrap_up_limit=timedelta(minutes=5)
                    )
                    await session.commit()
                await page.wait_for_selector("#wrapup-section:not([hidden])")  # owed now
                owed_form[name] = await page.eval_on_selector("#result", "e => e.value")
                await page.screenshot(path=str(shots / f"desk-{name}-wrap-up.png"), full_page=True)
                await page.click("[data-state=available]")
                await page.wait_for_function(
                    "() => document.getElementById('error').textContent.includes('wrap-up')"
                )
                await page.select_option(
                    "#result", "right_party" if name == "debtor" else "third_party"
                )
                await page.fill("#notes", f"{name}: asked to call back after payday")
                await page.click("#wrapup button[type=submit]")
                await page.wait_for_selector("#state.available")
            await browser.close()
    finally:
        await engine.dispose()
    assert "attempt to collect a debt" in pages["debtor"]
    assert "Owed" in pages["debtor"] and case["currency"] in pages["debtor"]
    assert "Owed" not in pages["third"] and case["currency"] not in pages["third"]
    assert "location information" in pages["third"]
    # available with no call: not told to set itself available; no wrap-up form until one
    # is owed, and then no outcome chosen for the agent
    assert "Set yourself available" not in idle and "you are available" in idle
    assert not form_shown_idle
    assert owed_form == {"debtor": "", "third": ""}


async def test_the_desk_previews_the_next_case_and_starts_or_skips_it(
    api: Api, tmp_path: Path
) -> None:
    async_playwright = _browser_or_skip()
    await _preview_campaign(api, cases=2)
    key = api.keys[Role.AGENT]
    shots = Path(os.environ.get("DIALER_SCREENSHOTS", tmp_path))  # to look at them
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        blocked: list[str] = []  # what the page's Content-Security-Policy refused
        page.on(
            "console",
            lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else 0,
        )

        async def route(request_route, request) -> None:  # type: ignore[no-untyped-def]
            response = await api.client.request(
                request.method,
                request.url.replace("http://desk.test", ""),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                content=request.post_data_buffer,
            )
            await request_route.fulfill(
                status=response.status_code, headers=dict(response.headers), body=response.content
            )

        await page.route("http://desk.test/**", route)
        await page.goto("http://desk.test/desk")
        await page.fill("#key", key)
        await page.click("#go")
        await api.client.put(
            "/v1/agents/me/endpoint",
            json={"endpoint": "client:agent-1"},
            headers=api.auth(Role.AGENT),
        )
        await page.click("[data-state=available]")
        await page.wait_for_selector("#state.available")
        await page.wait_for_selector("#may-say")
        await page.wait_for_selector("#start:not([disabled])")  # available, and allowed now
        first = await page.inner_text("#next")
        timeline = await page.inner_text("#timeline")
        skipped, kept = ("CN-0", "CN-1") if "CN-0" in first else ("CN-1", "CN-0")
        await page.screenshot(path=str(shots / "desk-preview.png"), full_page=True)
        # a skip needs a reason: without one the desk says so and the case stays
        await page.click("#skip")
        await page.wait_for_function(
            "() => document.getElementById('error').textContent.length > 0"
        )
        refused = await page.inner_text("#error")
        await page.wait_for_timeout(2600)  # a refresh or more later, the error is still there
        kept_error = await page.inner_text("#error")
        await page.fill("#skip-reason", "promised on the phone yesterday, waiting for payday")
        await page.click("#skip")
        await page.wait_for_function(
            "(ref) => document.getElementById('next').innerText.includes(ref)", arg=kept
        )
        second = await page.inner_text("#next")
        await page.click("#start")
        await page.wait_for_function(
            "() => document.getElementById('state').className.includes('reserved')"
            " || document.getElementById('error').textContent.length > 0"
        )
        assert await page.inner_text("#error") == ""  # started, not refused
        assert blocked == [], "the desk runs under its own policy"
        await page.screenshot(path=str(shots / "desk-preview-started.png"), full_page=True)
        await browser.close()
    assert "Wang Fang (debtor)" in first and "yes" in first
    assert "reason" in refused and kept_error == refused
    # every time in the party's or portfolio's zone, labelled: no bare UTC anywhere
    assert "UTC" not in first
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d Asia/Shanghai", timeline), timeline
    assert re.search(r"\d\d:\d\d to \d\d:\d\d Asia/Shanghai", first), first
    assert "What may be said to whom" in first and "Asia/Shanghai" in first
    assert "Not now" in first and "Li Na (third_party)" in first  # whom not to call, and why
    assert kept in second and skipped not in second
    me = (await api.client.get("/v1/agents/me", headers=api.auth(Role.AGENT))).json()
    assert me["state"] == "reserved" and me["attempt_id"] is not None
    timeline = await api.client.get(
        "/v1/cases", params={"external_ref": skipped}, headers=api.auth(Role.SUPERVISOR)
    )
    case_id = timeline.json()["items"][0]["id"]
    entries = (
        await api.client.get(f"/v1/cases/{case_id}/timeline", headers=api.auth(Role.SUPERVISOR))
    ).json()["entries"]
    assert [e["reason"] for e in entries if e["kind"] == "preview_skipped"] == [
        "promised on the phone yesterday, waiting for payday"
    ]


async def test_a_refused_key_is_forgotten_and_the_key_form_comes_back(
    api: Api, tmp_path: Path
) -> None:
    async_playwright = _browser_or_skip()
    shots = Path(os.environ.get("DIALER_SCREENSHOTS", tmp_path))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = await browser.new_page()

        async def route(request_route, request) -> None:  # type: ignore[no-untyped-def]
            response = await api.client.request(
                request.method,
                request.url.replace("http://desk.test", ""),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                content=request.post_data_buffer,
            )
            await request_route.fulfill(
                status=response.status_code, headers=dict(response.headers), body=response.content
            )

        await page.route("http://desk.test/**", route)
        await page.goto("http://desk.test/desk")
        await page.fill("#key", "dk_nothere_secret")
        await page.click("#go")
        await page.wait_for_selector("#key", state="visible")  # the form is back
        refused = await page.inner_text("#error")
        stored = await page.evaluate("sessionStorage.getItem('dialer.agent.key')")
        await page.screenshot(path=str(shots / "desk-bad-key.png"), full_page=True)
        await page.reload()  # a reload does not retry the forgotten key
        after_reload = await page.is_visible("#key")
        # a good key opens the desk; "Forget key" removes it and shows the form again
        await page.fill("#key", api.keys[Role.AGENT])
        await page.click("#go")
        await page.wait_for_selector("#state.offline")
        await page.click("#forget")
        await page.wait_for_selector("#key", state="visible")
        forgotten = await page.evaluate("sessionStorage.getItem('dialer.agent.key')")
        desk_hidden = await page.is_hidden("#desk")
        await browser.close()
    assert "401" in refused and stored is None and after_reload
    assert forgotten is None and desk_hidden
