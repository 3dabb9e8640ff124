"""Issue 17: with no telephony configured (no Twilio, no simulator) the service dials
nobody and says so. Every call and text a worker takes ends at once as `not_sent`
(`no_telephony`), never "in progress"; the campaign's progress warns, over the API too;
and such an attempt is no contact for the engine. The simulator without its token is a
one-line error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from adapters.unconfigured import UnconfiguredTelephony
from demo.morning import create_campaigns, demo_service, run_morning, seed
from dialer.core.errors import ConfigurationError
from dialer.core.settings import Settings
from dialer.db.models import AttemptRow
from dialer.dispatch.runtime import telephony_banner, telephony_kind
from dialer.domain.attempts import NO_TELEPHONY
from dialer.facts.batch import NOT_CONTACTS


async def test_without_telephony_every_attempt_ends_not_sent_and_the_campaign_says_why(
    tmp_path: Path,
) -> None:
    async with demo_service(tmp_path / "demo.sqlite", seed=2) as service:
        seeded = await seed(service.maker, service.settings, service.clock(), cases_per_portfolio=3)
        schedule = await create_campaigns(service.maker, service.clock())
        runtime = dataclasses.replace(service.runtime, telephony=UnconfiguredTelephony())
        report = await run_morning(
            dataclasses.replace(service, runtime=runtime), schedule, limit_seconds=120
        )
        assert not report.timed_out and report.not_final == 0
        async with service.maker() as session:
            attempts = list(await session.scalars(select(AttemptRow)))
        dialled = [a for a in attempts if a.channel in ("voice", "sms") and a.state != "refused"]
        assert dialled, "the morning should have had calls and texts to make"
        assert {(a.state, a.error_code) for a in dialled} == {("not_sent", NO_TELEPHONY)}
        assert all(a.provider_sid is None for a in dialled)
        assert "not_sent" in {s.value for s in NOT_CONTACTS}  # the engine counts none
        assert service.telephony.stats.posted == {}  # and nobody was called back

        headers = {"Authorization": f"Bearer {seeded.supervisor_key}"}
        async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as client:
            for item in schedule:
                progress = (await client.get(f"/v1/campaigns/{item.campaign_id}/progress")).json()
                mine = [a for a in dialled if a.campaign_id == item.campaign_id]
                if mine:
                    assert progress["not_sent"] >= len(mine)
                    (warning,) = progress["warnings"]
                    assert f"{len(mine)} attempts were not sent" in warning
                    assert "dials nobody" in warning
                else:
                    assert progress["warnings"] == []


def test_the_telephony_choice_is_said_at_start_or_refused_in_one_line() -> None:
    banner = telephony_banner(Settings())
    assert banner is not None and "dials nobody" in banner
    assert telephony_kind(Settings(telephony="simulator", twilio_auth_token="s")) == "simulator"  # type: ignore[arg-type]
    assert telephony_banner(Settings(telephony="simulator", twilio_auth_token="s")) is None  # type: ignore[arg-type]
    for broken in (Settings(telephony="simulator"), Settings(telephony="twilio")):
        with pytest.raises(ConfigurationError) as caught:
            telephony_kind(broken)
        assert "\n" not in caught.value.message and "DIALER_" in caught.value.message
