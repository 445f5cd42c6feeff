"""A person changes a board by hand in Trello; the webhook reaches the receiver, a worker reconciles.

Everything real: the emulator and the receiver as processes, Redis, the store, an arq worker.
"""

from __future__ import annotations

from typing import Any

import httpx
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import select

from jobs import builders
from jobs.queue import Job, JobQueue
from membership import outbox
from membership.boards import board_by_trello_id, board_view, membership_by_trello_ids
from membership.database import Database
from membership.directory import create_token, create_user
from membership.members import change_role
from membership.models import AuditEntry, User
from membership.rules import Actor
from membership.workspaces import linked_memberships
from tests.conftest import SettingsFactory
from tests.stack import (
    KEY,
    QUEUE,
    TOKEN,
    api_member_id,
    emulator_state,
    members_of,
    owner_token,
    run_worker,
    services,
    settings_for,
    store_like_trello,
    trellis,
)
from trellis.wiring import worker_settings

__all__ = ["services"]  # a fixture, used by name


async def deliver_and_reconcile(
    services: dict[str, Any], settings: Any, person_adds: str, board_name: str
) -> str:
    emulator = services["emulator"]
    async with httpx.AsyncClient(base_url=emulator) as trello:
        state = (await trello.get("/_emulator/state")).json()
        board = next(b["id"] for b in state["boards"] if b["name"] == board_name)
        member = next(m["id"] for m in state["members"] if m["username"] == person_adds)
        hook = await trello.post("/1/webhooks", params={"key": KEY, "token": TOKEN},
                                 json={"callbackURL": services["callback"], "idModel": board})  # fmt: skip
        assert hook.status_code == 200, hook.text
        await trello.put(f"/_emulator/boards/{board}/members/{member}", json={"type": "normal"})
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
    worker = Worker(**{**worker_settings(settings), "burst": True, "poll_delay": 0.05})
    await worker.main()
    await worker.close()
    assert worker.jobs_failed == 0
    return board


async def test_enforcing_reverts_someone_added_to_a_board_by_hand(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="local")
    settings = settings_for(make_settings, services)

    board = await deliver_and_reconcile(services, settings, person_adds="ken.thompson", board_name="Roadmap")

    after = await emulator_state(services)
    ken = next(m["id"] for m in after["members"] if m["username"] == "ken.thompson")
    roadmap = next(b for b in after["boards"] if b["id"] == board)
    assert ken not in {m["idMember"] for m in roadmap["memberships"]}
    database = Database(sqlite_url)
    async with database.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "RemoveFromTrello"))
    await database.dispose()
    assert entry is not None
    assert entry.after["member_id"] == ken  # type: ignore[index]
    assert entry.cause.startswith("reconcile (action:")


async def test_mirroring_takes_the_change_into_the_store(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    settings = settings_for(make_settings, services)

    board = await deliver_and_reconcile(services, settings, person_adds="ken.thompson", board_name="Roadmap")

    ken = next(m["id"] for m in state["members"] if m["username"] == "ken.thompson")
    after = await emulator_state(services)
    assert ken in {m["idMember"] for b in after["boards"] if b["id"] == board for m in b["memberships"]}
    database = Database(sqlite_url)
    async with database.transaction() as session:
        linked = await board_by_trello_id(session, board)
        assert linked is not None
        assert (await board_view(session, linked)).access[ken] == "write"
    await database.dispose()


async def test_a_burst_on_one_board_is_reconciled_once(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Any
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    settings = settings_for(make_settings, services)
    emulator = services["emulator"]
    async with httpx.AsyncClient(base_url=emulator) as trello:
        board = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
        await trello.post("/1/webhooks", params={"key": KEY, "token": TOKEN},
                          json={"callbackURL": services["callback"], "idModel": board})  # fmt: skip
        for name in ("ken.thompson", "margaret.hamilton", "barbara.liskov", "hedy.lamarr"):
            member = next(m["id"] for m in state["members"] if m["username"] == name)
            await trello.put(f"/_emulator/boards/{board}/members/{member}", json={"type": "normal"})
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
    worker = Worker(**{**worker_settings(settings), "burst": True, "poll_delay": 0.05})
    await worker.main()
    await worker.close()
    # Four apply_event jobs, the outbox sweep a worker runs as it starts, and one reconcile: two at
    # most, if a mark lands while the first one runs.
    assert 4 + 1 + 1 <= worker.jobs_complete <= 4 + 1 + 2


async def test_a_plan_that_takes_too_much_waits_for_an_operator_then_goes_ahead(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="local")
    roadmap = next(b for b in state["boards"] if b["name"] == "Roadmap")
    leaving = sorted({m["idMember"] for m in roadmap["memberships"] if m["memberType"] == "normal"})[:3]
    database = Database(sqlite_url)
    async with database.transaction() as session:  # the store takes three people off the board at once
        board = await board_by_trello_id(session, roadmap["id"])
        assert board is not None
        memberships = await linked_memberships(session, board.organization_id)
        for member in leaving:
            memberships[member].board_access = []
    await database.dispose()
    settings = settings_for(make_settings, services)
    env = {
        "TRELLIS_DATABASE_URL": sqlite_url,
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_QUEUE_NAME": "trellis:test:queue",
        "TRELLIS_TRELLO_BASE_URL": services["emulator"] + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY,
        "TRELLIS_TRELLO_TOKEN": TOKEN,
    }

    planned = trellis("plan", "--board", roadmap["id"], env=env)
    assert planned.returncode == 0, planned.stderr
    assert "3 change(s) (held: 3 of" in planned.stdout

    redis = Redis.from_url(redis_url)
    await JobQueue(redis, "trellis:test:queue").enqueue(
        Job("reconcile_board", (roadmap["id"],), {"reason": "test"})
    )
    await redis.aclose()
    await run_worker(settings)
    assert set(leaving) <= await members_of(services, roadmap["id"])  # held: nothing removed

    listed = trellis("approvals", "list", env=env)
    assert "board:" + roadmap["id"] in listed.stdout
    approved = trellis("approvals", "approve", "1", env=env)
    assert approved.returncode == 0, approved.stderr
    await run_worker(settings)

    assert not set(leaving) & await members_of(services, roadmap["id"])
    assert trellis("approvals", "list", env=env).stdout.strip() == "no open approvals"


async def test_someone_removed_from_the_workspace_is_taken_off_every_board(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    workspace = state["workspaces"][0]["id"]
    grace = next(m["id"] for m in state["members"] if m["username"] == "grace.hopper")
    boards_before = {
        b["name"] for b in state["boards"] if any(m["idMember"] == grace for m in b["memberships"])
    }
    assert boards_before == {"Roadmap", "Hiring"}
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        watch = {"callbackURL": services["callback"], "idModel": workspace}
        hook = await trello.post("/1/webhooks", params={"key": KEY, "token": TOKEN}, json=watch)
        assert hook.status_code == 200, hook.text
        await trello.delete(
            f"/_emulator/organizations/{workspace}/members/{grace}"
        )  # Trello leaves the boards
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]

    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    assert not any(m["idMember"] == grace for b in after["boards"] for m in b["memberships"])
    database = Database(sqlite_url)
    async with database.transaction() as session:
        organization, membership = await membership_by_trello_ids(session, workspace, grace)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "member_offboarded"))
    await database.dispose()
    assert organization is not None
    assert membership is None  # mirroring: the store follows Trello
    assert entry is not None
    assert len(entry.after["boards"]) == 2  # type: ignore[index]


async def test_an_offboarding_for_someone_still_in_the_workspace_removes_nothing(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    # A late, repeated or replayed delivery: Trello is asked, and the member is still there.
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    workspace = state["workspaces"][0]["id"]
    grace = next(m["id"] for m in state["members"] if m["username"] == "grace.hopper")
    redis = Redis.from_url(redis_url)
    await JobQueue(redis, "trellis:test:queue").enqueue(
        Job("offboard_member", (workspace, grace), {"reason": "replay"})
    )
    await redis.aclose()

    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    assert {b["name"] for b in after["boards"] if any(m["idMember"] == grace for m in b["memberships"])} == {
        "Roadmap",
        "Hiring",
    }


async def test_changes_made_through_the_api_reach_trello(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    ken = next(m["id"] for m in state["members"] if m["username"] == "ken.thompson")
    grace = next(m["id"] for m in state["members"] if m["username"] == "grace.hopper")
    headers = {"authorization": f"Bearer {await owner_token(sqlite_url)}"}
    receiver = services["callback"].removesuffix("/webhooks/trello")

    async with httpx.AsyncClient(base_url=receiver, headers=headers) as api:
        ken_member = await api_member_id(ken, sqlite_url)
        grace_member = await api_member_id(grace, sqlite_url)
        promoted = await api.patch(f"/organizations/me/members/{ken_member}", json={"role": "admin"})
        removed = await api.delete(f"/organizations/me/members/{grace_member}")
    assert (promoted.status_code, removed.status_code) == (200, 200)

    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    roles = {m["idMember"]: m["memberType"] for m in after["workspaces"][0]["memberships"]}
    assert roles[ken] == "admin"
    assert grace not in roles
    assert not any(m["idMember"] == grace for b in after["boards"] for m in b["memberships"])
    database = Database(sqlite_url)
    async with database.transaction() as session:
        assert await outbox.pending(session) == []  # every change pushed and marked done
    await database.dispose()


async def test_a_change_whose_push_was_never_queued_reaches_trello_when_a_worker_starts(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    ken = next(m["id"] for m in state["members"] if m["username"] == "ken.thompson")
    database = Database(sqlite_url)
    async with database.transaction() as session:  # written while Redis was away: no job was queued
        organization, membership = await membership_by_trello_ids(session, state["workspaces"][0]["id"], ken)
        assert organization is not None
        assert membership is not None
        await change_role(session, Actor.system("test"), organization.id, membership.id, "admin", cause="t")

    await run_worker(settings_for(make_settings, services))  # nothing queued: its start sweeps the outbox

    async with database.transaction() as session:
        assert await outbox.pending(session) == []
    await database.dispose()
    roles = {
        m["idMember"]: m["memberType"]
        for m in (await emulator_state(services))["workspaces"][0]["memberships"]
    }
    assert roles[ken] == "admin"


async def test_an_accepted_invite_becomes_a_trello_invitation_and_a_linked_member(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    receiver = services["callback"].removesuffix("/webhooks/trello")
    owner = {"authorization": f"Bearer {await owner_token(sqlite_url)}"}
    database = Database(sqlite_url)
    async with database.transaction() as session:
        newcomer = await create_user(session, "newcomer@example.com", "New Comer", actor=Actor.system("test"))
        _, newcomer_token = await create_token(session, "newcomer@example.com")
    async with httpx.AsyncClient(base_url=receiver) as api:
        invite = await api.post(
            "/organizations/me/invites", json={"email": "newcomer@example.com"}, headers=owner
        )
        accepted = await api.post(
            "/organizations/invites/accept", json={"token": invite.json()["token"]},
            headers={"authorization": f"Bearer {newcomer_token}"},
        )  # fmt: skip
    assert accepted.status_code == 200, accepted.text

    await run_worker(settings_for(make_settings, services))

    async with database.transaction() as session:
        linked = await session.get(User, newcomer.id)
    await database.dispose()
    assert linked is not None
    assert linked.trello_member_id is not None
    rows = {m["idMember"]: m for m in (await emulator_state(services))["workspaces"][0]["memberships"]}
    assert rows[linked.trello_member_id]["unconfirmed"] is True


async def test_an_invitee_who_joins_trello_stays_linked_with_the_boards_the_invite_granted(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="trello")
    settings = settings_for(make_settings, services)
    await JobQueue(redis_client, QUEUE).enqueue(builders.ensure_webhooks("test"))
    await run_worker(settings)
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    receiver = services["callback"].removesuffix("/webhooks/trello")
    owner = {"authorization": f"Bearer {await owner_token(sqlite_url)}"}
    database = Database(sqlite_url)
    async with database.transaction() as session:
        newcomer = await create_user(session, "joiner@example.com", "Jo Iner", actor=Actor.system("test"))
        _, token = await create_token(session, "joiner@example.com")
        board = await board_by_trello_id(session, roadmap)
        assert board is not None
    grant = [{"board_id": board.id, "can_read": True, "can_write": True}]
    async with httpx.AsyncClient(base_url=receiver) as api:
        invite = await api.post(
            "/organizations/me/invites",
            json={"email": "joiner@example.com", "board_access": grant},
            headers=owner,
        )
        accepted = await api.post("/organizations/invites/accept", json={"token": invite.json()["token"]},
                                  headers={"authorization": f"Bearer {token}"})  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    await run_worker(settings)
    async with database.transaction() as session:
        member = (await session.get(User, newcomer.id)).trello_member_id  # type: ignore[union-attr]
    assert member is not None

    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:  # she signs up and joins
        assert (await trello.post(f"/_emulator/members/{member}/confirm")).status_code == 200
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
    await run_worker(settings)
    await run_worker(settings)

    async with database.transaction() as session:
        still = await session.get(User, newcomer.id)
        strangers = (await session.scalars(select(User).where(User.trello_member_id == member))).all()
    await database.dispose()
    assert still is not None
    assert still.trello_member_id == member
    assert len(strangers) == 1  # not adopted a second time as someone unknown
    after = await emulator_state(services)
    rows = {m["idMember"]: m for m in after["workspaces"][0]["memberships"]}
    assert rows[member]["unconfirmed"] is False
    assert member in await members_of(services, roadmap)
