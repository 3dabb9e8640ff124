"""A verified API key is held in-process for DIALER_API_KEY_CACHE_SECONDS; revocation still
holds: at once on the process that revoked it, within those seconds on every other."""

from __future__ import annotations

import uuid

from dialer.core.auth import Principal, Role
from dialer.db.engine import build_engine, build_sessionmaker
from dialer.services import keys
from dialer.services.keys import VerifiedKeys
from tests.dialer.support import NOW, Api


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _new_agent(api: Api) -> tuple[str, dict[str, str]]:
    created = (
        await api.client.post(
            "/v1/keys", json={"role": "agent", "name": "temp"}, headers=api.auth(Role.ADMIN)
        )
    ).json()
    return created["id"], {"Authorization": f"Bearer {created['key']}"}


async def _revoke_elsewhere(api: Api, key_id: str) -> None:
    """Revoked as another process would: its own engine, not this app's cache."""
    engine = build_engine(api.settings)
    try:
        async with build_sessionmaker(engine)() as session:
            await keys.revoke_key(session, uuid.UUID(key_id), actor="test", now=NOW)
    finally:
        await engine.dispose()


async def test_key_revoked_by_another_process_is_refused_once_its_seconds_pass(
    api: Api,
) -> None:
    ticks = Ticks()
    api.app.state.verified_keys.clock = ticks
    key_id, agent = await _new_agent(api)
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 200
    await _revoke_elsewhere(api, key_id)
    ticks.now += api.settings.api_key_cache_seconds - 0.01  # held: this process read it
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 200
    ticks.now += 0.01  # its seconds are over: the row is read again, and it is revoked
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 401
    ticks.now += 60  # and stays refused: a refusal is never held
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 401


async def test_key_revoked_through_this_process_is_refused_on_the_next_request(
    api: Api,
) -> None:
    key_id, agent = await _new_agent(api)
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 200
    assert api.app.state.verified_keys.get(agent["Authorization"].split()[1]) is not None
    h = api.auth(Role.ADMIN)
    assert (await api.client.delete(f"/v1/keys/{key_id}", headers=h)).status_code == 200
    assert (await api.client.get("/v1/me/cases", headers=agent)).status_code == 401


def test_a_verified_key_is_held_for_its_seconds_and_not_by_its_plaintext() -> None:
    ticks = Ticks()
    held = VerifiedKeys(5, clock=ticks)
    who = Principal(uuid.uuid4(), "mei", Role.SUPERVISOR)
    held.put("dk_abc_secret", who)
    assert held.get("dk_abc_secret") == who
    assert held.get("dk_abc_other") is None
    assert not any("secret" in digest for digest in held._held)
    ticks.now += 5
    assert held.get("dk_abc_secret") is None


def test_no_seconds_holds_nothing_and_forget_drops_every_entry_of_a_key() -> None:
    never = VerifiedKeys(0)
    never.put("dk_abc_secret", Principal(uuid.uuid4(), "mei", Role.AGENT))
    assert never.get("dk_abc_secret") is None
    held = VerifiedKeys(5, maxsize=2)
    a, b = Principal(uuid.uuid4(), "a", Role.AGENT), Principal(uuid.uuid4(), "b", Role.AGENT)
    held.put("dk_a_1", a)
    held.put("dk_b_1", b)
    held.put("dk_b_2", b)  # full: the oldest (a) goes
    assert held.get("dk_a_1") is None
    held.forget(b.key_id)
    assert held.get("dk_b_1") is None and held.get("dk_b_2") is None
