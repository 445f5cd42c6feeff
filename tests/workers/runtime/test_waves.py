"""The guard on waves of departures: counted per workspace in Redis, held as one approval in the store."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from membership import approvals
from membership.models import User
from tests.fixtures.store import World
from workers.runtime.waves import Departures, WaveRules, verdict

WORKSPACE = "5f0000000000000000000001"  # the world's Acme
RULES = WaveRules(members=3, seconds=60, settle_seconds=0)


async def leave(departures: Departures, *members: str) -> None:
    for member in members:
        await departures.note(WORKSPACE, member)


async def test_one_person_leaving_is_never_held(world: World, redis_client: Redis) -> None:
    departures = Departures(redis_client, WaveRules(members=1, seconds=60))
    await leave(departures, "gone-1")
    assert (await verdict(world.database, departures, WORKSPACE, "gone-1")).outcome == "go"


async def test_up_to_the_limit_within_the_window_goes_ahead(world: World, redis_client: Redis) -> None:
    departures = Departures(redis_client, RULES)
    await leave(departures, "gone-1", "gone-2", "gone-3", "gone-3")  # a repeated delivery counts once
    assert (await verdict(world.database, departures, WORKSPACE, "gone-3")).outcome == "go"


async def test_a_wave_is_held_as_one_approval_naming_everyone_and_their_boards(
    world: World, redis_client: Redis
) -> None:
    async with world.database.transaction() as session:
        mia = await session.get(User, world.mia.user.id)
        assert mia is not None
        mia.trello_member_id = "gone-2"
    departures = Departures(redis_client, RULES)
    await leave(departures, "gone-1", "gone-2", "gone-3", "gone-4")
    verdicts = [await verdict(world.database, departures, WORKSPACE, f"gone-{n}") for n in (1, 2, 3, 4)]
    async with world.database.transaction() as session:
        [wave] = await approvals.open_approvals(session)
    assert {v.outcome for v in verdicts} == {"held"}
    assert {v.approval_id for v in verdicts} == {wave.id}
    assert wave.kind == "wave"
    assert wave.payload["members"] == ["gone-1", "gone-2", "gone-3", "gone-4"]
    assert wave.payload["boards"]["gone-2"] == ["Roadmap"]  # the board the store gives Mia
    assert "4 people left workspace" in wave.summary


async def rejected_wave(world: World, departures: Departures) -> int:
    """Four leave, the wave is held, and an operator rejects it; its approval."""
    await leave(departures, "gone-1", "gone-2", "gone-3", "gone-4")
    held = await verdict(world.database, departures, WORKSPACE, "gone-1")
    assert held.approval_id is not None
    async with world.database.transaction() as session:
        await approvals.decide(session, held.approval_id, approve=False, by="operator:test")
    return held.approval_id


async def test_the_decision_on_a_wave_is_what_its_offboardings_follow(
    world: World, redis_client: Redis
) -> None:
    departures = Departures(redis_client, RULES)
    approval = await rejected_wave(world, departures)
    after = [await verdict(world.database, departures, WORKSPACE, f"gone-{n}") for n in (1, 4)]
    assert [(v.outcome, v.approval_id) for v in after] == [("rejected", approval)] * 2


async def test_departures_older_than_the_window_no_longer_count(world: World, redis_client: Redis) -> None:
    departures = Departures(redis_client, WaveRules(members=1, seconds=0.3))
    await leave(departures, "gone-1", "gone-2")
    await asyncio.sleep(0.4)
    await leave(departures, "gone-3")
    assert (await verdict(world.database, departures, WORKSPACE, "gone-3")).outcome == "go"


async def test_a_decision_applies_to_the_departures_it_named_not_to_a_later_one(
    world: World, redis_client: Redis
) -> None:
    departures = Departures(redis_client, RULES)
    await rejected_wave(world, departures)
    await redis_client.delete(f"trellis:departures:{WORKSPACE}")  # the window passed: months later...
    await asyncio.sleep(0.01)
    await leave(departures, "gone-1")  # ...gone-1, back in the workspace since, leaves again
    assert (await verdict(world.database, departures, WORKSPACE, "gone-1")).outcome == "go"
