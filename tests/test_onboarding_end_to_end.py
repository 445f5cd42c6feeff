"""Onboarding never fails silently: newcomers accepted through the membership API at once, Trello slow to
answer, each is linked to the Trello member their invitation made and given the boards the invite
granted; a change that could not be linked stays pending. Against the emulator, with a real worker."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from jobs import builders
from jobs.deadletters import DeadLetters
from jobs.queue import JobQueue
from membership import outbox
from membership.boards import board_by_trello_id
from membership.database import Database
from membership.directory import create_token, create_user
from membership.models import User
from membership.rules import Actor
from tests.conftest import SettingsFactory
from tests.stack import (
    KEY,
    QUEUE,
    TOKEN,
    emulator_state,
    owner_token,
    run_worker,
    services,
    settings_for,
    store_like_trello,
)

__all__ = ["services"]  # a fixture, used by name

NEWCOMERS = 20


async def mirrored(services: dict[str, Any], sqlite_url: str) -> tuple[dict[str, Any], str, int]:
    """The store as Trello is, mirroring; Trello's state, and the Roadmap board's Trello and store ids."""
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    database = Database(sqlite_url)
    async with database.transaction() as session:
        board = await board_by_trello_id(session, roadmap)
        assert board is not None
    await database.dispose()
    return state, roadmap, board.id


async def accepted_invites(
    services: dict[str, Any], sqlite_url: str, emails: list[str], board_id: int
) -> None:
    """Each email invited by the owner with write access to the board, and accepted, all at once."""
    database = Database(sqlite_url)
    tokens = {}
    async with database.transaction() as session:
        for email in emails:
            await create_user(session, email, email.split("@")[0].title(), actor=Actor.system("test"))
            tokens[email] = (await create_token(session, email))[1]
    await database.dispose()
    receiver = services["callback"].removesuffix("/webhooks/trello")
    owner = {"authorization": f"Bearer {await owner_token(sqlite_url)}"}
    grant = [{"board_id": board_id, "can_read": True, "can_write": True}]

    async def onboard(api: httpx.AsyncClient, email: str) -> None:
        invite = await api.post("/organizations/me/invites", json={"email": email, "board_access": grant},
                                headers=owner)  # fmt: skip
        accepted = await api.post("/organizations/invites/accept", json={"token": invite.json()["token"]},
                                  headers={"authorization": f"Bearer {tokens[email]}"})  # fmt: skip
        assert accepted.status_code == 200, accepted.text

    async with httpx.AsyncClient(base_url=receiver, timeout=30) as api:
        await asyncio.gather(*(onboard(api, email) for email in emails))


async def test_concurrent_onboardings_with_a_slow_trello_are_each_linked_with_their_board_grants(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    _, roadmap, board_id = await mirrored(services, sqlite_url)
    emails = [f"newcomer{n}@example.com" for n in range(NEWCOMERS)]
    # The receiver hands each change to the workers at once; they are queued before a worker runs.
    await accepted_invites(services, sqlite_url, emails, board_id)

    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        await trello.put("/_emulator/faults", json={"latency_ms": 50})
        await run_worker(settings_for(make_settings, services, worker_concurrency=16))
        await trello.put("/_emulator/faults", json={"latency_ms": 0})

    database = Database(sqlite_url)
    async with database.transaction() as session:
        users = (await session.scalars(select(User).where(User.email.in_(emails)))).all()
        left = await outbox.pending(session)
    await database.dispose()
    linked = {user.email: user.trello_member_id for user in users if user.trello_member_id}
    print(f"onboard_linked={len(linked)}/{NEWCOMERS}")
    assert len(linked) == NEWCOMERS
    assert len(set(linked.values())) == NEWCOMERS  # each their own Trello member
    after = await emulator_state(services)
    on_roadmap = {m["idMember"] for b in after["boards"] if b["id"] == roadmap for m in b["memberships"]}
    assert set(linked.values()) <= on_roadmap  # every board grant applied
    assert left == []
    assert await DeadLetters(redis_client).list() == []


async def test_an_invitee_who_cannot_be_told_apart_leaves_the_change_pending_and_is_not_swept_once_dead(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    state, _, board_id = await mirrored(services, sqlite_url)
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        # Someone invited the same email by hand in Trello before: Trellis's invitation adds no one new,
        # and Trello shows no one's email, so which member is theirs cannot be told, on any try.
        workspace = state["workspaces"][0]["id"]
        invited = await trello.put(f"/1/organizations/{workspace}/members", params={
            "key": KEY, "token": TOKEN, "email": "early@example.com", "fullName": "Early", "type": "normal",
        })  # fmt: skip
        assert invited.status_code == 200, invited.text
    await accepted_invites(services, sqlite_url, ["early@example.com"], board_id)

    settings = settings_for(make_settings, services, job_max_tries=2, job_retry_base_seconds=0.05)
    await run_worker(settings, failures=1)

    [letter] = await DeadLetters(redis_client).list()
    assert letter.function == "push_member_change"
    assert "cannot be told" in letter.error
    database = Database(sqlite_url)
    async with database.transaction() as session:
        [change] = await outbox.pending(session)  # never marked done
    await database.dispose()
    await JobQueue(redis_client, QUEUE).enqueue(builders.sweep_outbox("test"))
    await run_worker(settings)  # the sweep leaves a dead-lettered change to its operator
    assert [letter.job_id for letter in await DeadLetters(redis_client).list()] == [
        builders.push_member_change(change.id).job_id
    ]
