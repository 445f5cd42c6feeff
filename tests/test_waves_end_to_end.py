"""A wave of departures, end to end: twelve people removed from the workspace in Trello within a minute
(an admin's slip, a script gone wrong). With SCIM deactivation on `auto`, nothing is taken from anyone
until an operator decides: approving finishes all twelve offboardings; rejecting leaves every board as
it was, and a later resync does not hold the wave again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from jobs import builders
from jobs.deadletters import DeadLetters
from jobs.queue import JobQueue
from membership import approvals
from membership.database import Database
from tests.conftest import SettingsFactory
from tests.stack import (
    QUEUE,
    cli_env,
    emulator_state,
    members_of,
    run_worker,
    services,
    settings_for,
    store_like_trello,
    trellis,
)

__all__ = ["services"]  # a fixture, used by name

WAVE = 12
SCIM = {
    "scim_deactivate": "auto",
    "scim_directory_id": "emulator-directory",
    "scim_token": "emulator-scim-token",
}
SCIM_HEADERS = {"authorization": "Bearer emulator-scim-token"}
USERS = "/scim/directory/emulator-directory/Users"


async def staff(trello: httpx.AsyncClient, workspace: str, board: str) -> dict[str, str]:
    """Twelve more people, each in the workspace, on the board, and in the Atlassian directory."""
    people = {}
    for n in range(WAVE):
        email = f"wave{n}@acme.example"
        member = (
            await trello.post("/_emulator/members", json={"username": f"wave{n}", "email": email})
        ).json()
        await trello.put(
            f"/_emulator/organizations/{workspace}/members/{member['id']}", json={"type": "normal"}
        )
        await trello.put(f"/_emulator/boards/{board}/members/{member['id']}", json={"type": "normal"})
        await trello.post(USERS, headers=SCIM_HEADERS, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "active": True,
            "emails": [{"value": email, "primary": True}],
        })  # fmt: skip
        people[member["id"]] = email
    return people


async def active_accounts(trello: httpx.AsyncClient, emails: list[str]) -> int:
    users = (await trello.get(USERS, headers=SCIM_HEADERS, params={"count": 500})).json()["Resources"]
    return sum(1 for user in users if user["userName"] in emails and user["active"])


async def open_waves(sqlite_url: str) -> list[Any]:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        waves = [a for a in await approvals.open_approvals(session) if a.kind == "wave"]
    await database.dispose()
    return waves


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_a_wave_of_twelve_departures_waits_for_an_operator(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str,
    redis_client: Redis, decision: str,
) -> None:  # fmt: skip
    settings = settings_for(
        make_settings, services, scim_base_url=services["emulator"], scim_deactivate="auto",
        scim_directory_id="emulator-directory", scim_token="emulator-scim-token",
        guard_wave_settle_seconds=1.0,
    )  # fmt: skip
    state = await emulator_state(services)
    workspace = state["workspaces"][0]["id"]
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        people = await staff(trello, workspace, roadmap)
        await store_like_trello(sqlite_url, await emulator_state(services), authority="trello")
        await JobQueue(redis_client, QUEUE).enqueue(builders.ensure_webhooks("test"))
        await run_worker(settings)

        for member in people:  # the slip: all twelve out of the workspace at once
            await trello.delete(f"/_emulator/organizations/{workspace}/members/{member}")
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
        await run_worker(settings)

        [wave] = await open_waves(sqlite_url)
        assert sorted(wave.payload["members"]) == sorted(people)
        assert set(people) <= await members_of(services, roadmap)  # no board removal yet
        assert await active_accounts(trello, list(people.values())) == WAVE  # and no deactivation

        scim = {f"TRELLIS_{name.upper()}": value for name, value in SCIM.items()}
        env = cli_env(services, sqlite_url, redis_url, TRELLIS_SCIM_BASE_URL=services["emulator"], **scim)
        listed = trellis("approvals", "list", env=env)
        assert f"{WAVE} people left workspace" in listed.stdout
        decided = trellis("approvals", decision, str(wave.id), env=env)
        assert decided.returncode == 0, decided.stderr
        await run_worker(settings)

        if decision == "approve":
            assert set(people).isdisjoint(await members_of(services, roadmap))
            assert await active_accounts(trello, list(people.values())) == 0
        else:
            await JobQueue(redis_client, QUEUE).enqueue(builders.full_resync("test"))
            await run_worker(settings)
            await run_worker(settings)
            assert set(people) <= await members_of(services, roadmap)  # every board as it was
            assert await active_accounts(trello, list(people.values())) == WAVE
            assert await open_waves(sqlite_url) == []  # not held again
    assert await DeadLetters(redis_client).list() == []
