"""`trellis audit` and `trellis why` against the whole stack: a change in Trello, its delivery, the worker,
then the commands an operator asks "what happened, and why" with."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import SettingsFactory
from tests.stack import (
    board_named,
    cli_env,
    deliver,
    emulator_state,
    member_named,
    run_worker,
    services,
    settings_for,
    store_like_trello,
    trellis,
)

__all__ = ["services"]  # a fixture, used by name


async def ken_made_observer_of_roadmap(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> tuple[str, str, str]:
    """Ken made an observer of Roadmap by hand in Trello, its delivery handled: (ken, Roadmap, the action)."""
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    roadmap, ken = board_named(state, "Roadmap"), member_named(state, "ken.thompson")
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.put(f"/_emulator/boards/{roadmap}/members/{ken}", json={"type": "observer"})
    data = {"board": {"id": roadmap}, "idMember": ken, "memberType": "observer"}
    action = await deliver(services, "makeObserverOfBoard", data, roadmap)
    await run_worker(settings_for(make_settings, services))
    return ken, roadmap, action


def audit_json(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = trellis("audit", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_audit_of_a_member_names_the_delivery_that_caused_the_change(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    ken, _, action = await ken_made_observer_of_roadmap(services, make_settings, sqlite_url)

    entries = audit_json(cli_env(services, sqlite_url, redis_url), "--member", "Ken.Thompson@acme.example")

    synced = [e for e in entries if e["action"] == "board_access_synced"]
    assert len(synced) == 1
    assert f"action:{action}" in synced[0]["cause"]
    assert synced[0]["actor"] == "system:reconcile"
    assert all(e["user_id"] == synced[0]["user_id"] or e["trello_member_id"] == ken for e in entries)


async def test_audit_of_a_board_shows_only_that_boards_changes(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    _, roadmap, action = await ken_made_observer_of_roadmap(services, make_settings, sqlite_url)
    env = cli_env(services, sqlite_url, redis_url)

    on_roadmap = audit_json(env, "--board", roadmap)
    everything = audit_json(env, "--limit", "1000")

    assert [e["cause"] for e in on_roadmap if e["action"] == "board_access_synced"] == [
        e["cause"] for e in everything if e["action"] == "board_access_synced"
    ]
    assert any(f"action:{action}" in e["cause"] for e in on_roadmap)
    assert len({e["board_id"] for e in on_roadmap}) == 1
    assert len(everything) > len(on_roadmap)  # the setup's adoptions are about people, not Roadmap


async def test_why_tells_the_access_in_the_store_and_in_trello_and_how_it_came_to_be(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    ken, roadmap, first = await ken_made_observer_of_roadmap(services, make_settings, sqlite_url)
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.put(f"/_emulator/boards/{roadmap}/members/{ken}", json={"type": "normal"})
    data = {"board": {"id": roadmap}, "idMember": ken, "memberType": "normal"}
    second = await deliver(services, "makeNormalMemberOfBoard", data, roadmap)
    await run_worker(settings_for(make_settings, services))

    result = trellis("why", ken, "--board", roadmap, env=cli_env(services, sqlite_url, redis_url))

    assert result.returncode == 0, result.stderr
    store, trello, story = (
        result.stdout.split("In the store:")[1].split("In Trello:")[0],
        result.stdout.split("In Trello:")[1].split("How it came to be")[0],
        result.stdout.split("How it came to be, oldest first:")[1],
    )
    assert "Roadmap (write)" in store  # a normal member of the board in Trello: write access
    assert f"on Roadmap ({roadmap})" in trello
    # Oldest first, each Trello action told by its type.
    assert story.index(f"Trello action makeObserverOfBoard {first}") < story.index(
        f"Trello action makeNormalMemberOfBoard {second}"
    )


async def test_why_follows_someone_offboarded_off_every_board(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    workspace, grace = state["workspaces"][0]["id"], member_named(state, "grace.hopper")
    her_boards = sorted(
        b["name"] for b in state["boards"] if any(m["idMember"] == grace for m in b["memberships"])
    )
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.delete(f"/_emulator/organizations/{workspace}/members/{grace}")
    action = await deliver(
        services,
        "removeMemberFromOrganization",
        {"organization": {"id": workspace}, "idMember": grace},
        workspace,
    )
    await run_worker(settings_for(make_settings, services))

    result = trellis("why", grace, env=cli_env(services, sqlite_url, redis_url))

    assert result.returncode == 0, result.stderr
    assert "no membership" in result.stdout
    assert "on no open board this token sees" in result.stdout
    offboarded = next(line for line in result.stdout.splitlines() if "member_offboarded" in line)
    assert action in offboarded
    assert her_boards
    taken_off = offboarded.split("(off ", 1)[1].split(" in Trello)", 1)[0]
    assert sorted(taken_off.split(", ")) == her_boards


def test_someone_unknown_is_refused_in_one_line(sqlite_url: str) -> None:
    result = trellis("why", "nobody-known", env={"TRELLIS_DATABASE_URL": sqlite_url})

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "trellis: no one known as 'nobody-known': give an email, a Trello member id or a Trello username"
    ]
