"""Approvals and dead letters in the console: a held plan read as changes, decided, and what the decision
sets going; dead letters replayed and dropped, each audited."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from jobs.deadletters import DeadLetter, DeadLetters
from membership import approvals
from membership.models import AuditEntry, PendingApproval, User
from membership.rules import Actor
from tests.fixtures.store import World
from tests.receiver.console.conftest import signed_in_csrf

MIA_IN_TRELLO = "5a0000000000000000000007"
QUEUE = "trellis:test:queue"


async def held_plan(world: World, organization_id: int | None = None) -> int:
    """A plan the guard held on Roadmap: Mia would be taken off it."""
    async with world.database.transaction() as session:
        mia = await session.get(User, world.mia.user.id)
        assert mia is not None
        mia.trello_member_id = MIA_IN_TRELLO
        operation: dict[str, Any] = {"operation": "RemoveFromTrello", "member_id": MIA_IN_TRELLO,
                                     "reason": "not granted by the store"}  # fmt: skip
        approval = await approvals.request(
            session, kind="plan", organization_id=organization_id or world.organization_id,
            scope="board:5b0000000000000000000001", summary="would take access from 4 of 10 members (40 %)",
            payload={"operations": [operation], "losing": [MIA_IN_TRELLO], "fingerprint": "f"},
            actor=Actor.system("reconcile"), cause="action:abc",
        )  # fmt: skip
        return approval.id


async def test_a_held_plan_reads_as_who_loses_what_and_why_it_was_held(
    console: httpx.AsyncClient, world: World
) -> None:
    await held_plan(world)
    await signed_in_csrf(console, world.adam)

    page = await console.get("/console/approvals")

    assert "Mia" in page.text  # by name, not by Trello id
    assert "taken off the board in Trello" in page.text
    assert "not granted by the store" in page.text
    assert "would take access from 4 of 10 members" in page.text


async def test_approving_a_plan_records_the_decision_and_queues_its_reconcile(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    approval = await held_plan(world)
    csrf = await signed_in_csrf(console, world.olive)

    answer = await console.post(f"/console/approvals/{approval}/approve", data={"csrf": csrf})

    assert answer.status_code == 303
    async with world.database.transaction() as session:
        decided = await session.get(PendingApproval, approval)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "approval_approved"))
    assert decided is not None
    assert decided.decision == "approved"
    assert entry is not None
    assert entry.cause.startswith(f"console:POST /console/approvals/{approval}/approve")
    queued = [job.decode() for job in await redis_client.zrange(QUEUE, 0, -1)]
    assert any(job.startswith("reconcile:board:5b0000000000000000000001") for job in queued)


async def test_rejecting_a_plan_queues_nothing(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    approval = await held_plan(world)
    csrf = await signed_in_csrf(console, world.olive)

    answer = await console.post(f"/console/approvals/{approval}/reject", data={"csrf": csrf})

    assert answer.status_code == 303
    assert await redis_client.zcard(QUEUE) == 0


async def test_another_organizations_approval_is_neither_shown_nor_decided(
    console: httpx.AsyncClient, world: World
) -> None:
    approval = await held_plan(world, world.other_organization_id)
    csrf = await signed_in_csrf(console, world.olive)

    page = await console.get("/console/approvals")
    answer = await console.post(f"/console/approvals/{approval}/approve", data={"csrf": csrf})

    assert f"approval-{approval}" not in page.text
    assert answer.status_code == 404
    assert f"no open approval {approval}" in answer.text
    async with world.database.transaction() as session:
        undecided = await session.get(PendingApproval, approval)
    assert undecided is not None
    assert undecided.decided_at is None


async def dead_letter(redis: Redis) -> DeadLetter:
    letter = DeadLetter("member-change:7", "push_member_change", [7], {}, 8, "TrelloUnavailable: 503")
    await DeadLetters(redis).add(letter)
    return letter


async def test_a_dead_letter_is_replayed_and_the_replay_audited(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    letter = await dead_letter(redis_client)
    csrf = await signed_in_csrf(console, world.adam)
    assert "TrelloUnavailable: 503" in (await console.get("/console/dead-letters")).text

    answer = await console.post("/console/dead-letters/replay", data={"csrf": csrf, "job_id": letter.job_id})

    assert answer.status_code == 303
    assert await DeadLetters(redis_client).list() == []
    assert await redis_client.zcard(QUEUE) == 1
    async with world.database.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "dead_letter_replayed"))
    assert entry is not None
    assert entry.after is not None
    assert entry.after["job_id"] == letter.job_id


async def test_dropping_a_dead_letter_forgets_it(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    letter = await dead_letter(redis_client)
    csrf = await signed_in_csrf(console, world.adam)

    answer = await console.post("/console/dead-letters/drop", data={"csrf": csrf, "job_id": letter.job_id})

    assert answer.status_code == 303
    assert await DeadLetters(redis_client).list() == []
    assert await redis_client.zcard(QUEUE) == 0


async def test_a_dead_letter_already_gone_is_a_not_found_on_the_page(
    console: httpx.AsyncClient, world: World, redis_client: Redis
) -> None:
    csrf = await signed_in_csrf(console, world.adam)

    answer = await console.post("/console/dead-letters/replay", data={"csrf": csrf, "job_id": "gone"})

    assert answer.status_code == 404
    assert "no dead letter" in answer.text
