"""Workspaces end to end: every membership action leads to a reconcile after which the store and Trello
agree; the full resync repairs what no webhook said; new boards get webhooks; SCIM follows the policy.

Everything real: the emulator and the receiver as processes, Redis, the store, an arq worker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from jobs import builders, status
from jobs.actions import MEMBERSHIP_ACTIONS
from jobs.queue import JobQueue
from jobs.status import Status, StatusBoard
from membership import outbox
from membership.database import Database
from membership.models import AuditEntry, Membership, PendingApproval, User
from tests.conftest import SettingsFactory
from tests.stack import (
    QUEUE,
    board_named,
    cli_env,
    deliver,
    emulator_state,
    member_named,
    run_worker,
    services,
    settings_for,
    store_and_trello_differences,
    store_like_trello,
    trellis,
)

__all__ = ["services"]  # a fixture, used by name

SCIM = {"scim_directory_id": "emulator-directory", "scim_token": "emulator-scim-token"}


async def changed_in_trello(
    services: dict[str, Any], sqlite_url: str, change: Change, action_type: str, *, authority: str = "trello"
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A store like Trello, then a change by hand in Trello and the delivery of `action_type` about it;
    returns Trello's state before the change, what the delivery said and its model."""
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority=authority)
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        data, model = await change(admin, state)
    await deliver(services, action_type, data, model)
    return state, data, model


# What someone does by hand in Trello (no webhook registered: only the delivery below tells Trellis),
# and what the delivery of each action type says. The reconcile must find out the rest by itself.
Change = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[tuple[dict[str, Any], str]]]


async def board_role_changed(admin: httpx.AsyncClient, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    board, ken = board_named(state, "Roadmap"), member_named(state, "ken.thompson")
    await admin.put(f"/_emulator/boards/{board}/members/{ken}", json={"type": "observer"})
    return {"board": {"id": board}, "idMember": ken}, board


async def workspace_role_changed(
    admin: httpx.AsyncClient, state: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    workspace, ken = state["workspaces"][0]["id"], member_named(state, "ken.thompson")
    await admin.put(f"/_emulator/organizations/{workspace}/members/{ken}", json={"type": "admin"})
    return {"organization": {"id": workspace}, "idMember": ken}, workspace


async def someone_left(admin: httpx.AsyncClient, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    workspace, grace = state["workspaces"][0]["id"], member_named(state, "grace.hopper")
    await admin.delete(f"/_emulator/organizations/{workspace}/members/{grace}")
    return {"organization": {"id": workspace}, "idMember": grace}, workspace


async def someone_joined(admin: httpx.AsyncClient, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    workspace = state["workspaces"][0]["id"]
    joined = (await admin.post("/_emulator/members", json={"username": "annie.easley"})).json()["id"]
    await admin.put(f"/_emulator/organizations/{workspace}/members/{joined}", json={"type": "normal"})
    return {"member": {"id": joined}}, workspace


async def board_created(admin: httpx.AsyncClient, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    workspace = state["workspaces"][0]["id"]
    board = (await admin.post(f"/_emulator/organizations/{workspace}/boards", json={"name": "Launch"})).json()
    return {"board": {"id": board["id"]}, "organization": {"id": workspace}}, workspace


CHANGES: dict[str, Change] = {
    "addMemberToBoard": board_role_changed,
    "removeMemberFromBoard": board_role_changed,
    "makeAdminOfBoard": board_role_changed,
    "makeNormalMemberOfBoard": board_role_changed,
    "makeObserverOfBoard": board_role_changed,
    "removeAdminFromBoard": board_role_changed,
    "deactivatedMemberInBoard": board_role_changed,
    "reactivatedMemberInBoard": board_role_changed,
    "deactivatedMemberInOrganization": workspace_role_changed,
    "reactivatedMemberInOrganization": workspace_role_changed,
    "deactivatedMemberInEnterprise": someone_joined,
    "reactivatedMemberInEnterprise": someone_joined,
    "unconfirmedBoardInvitation": board_role_changed,
    "addMemberToOrganization": someone_joined,
    "removeMemberFromOrganization": someone_left,
    "makeAdminOfOrganization": workspace_role_changed,
    "makeNormalMemberOfOrganization": workspace_role_changed,
    "removeAdminFromOrganization": workspace_role_changed,
    "unconfirmedOrganizationInvitation": someone_joined,
    "updateMember": someone_joined,
    "memberJoinedTrello": someone_joined,
    "createBoard": board_created,
    "copyBoard": board_created,
    "addToOrganizationBoard": board_created,
    "removeFromOrganizationBoard": board_created,
    "updateBoard": board_created,
}


def test_every_membership_action_type_has_a_change_to_try() -> None:
    assert set(CHANGES) == MEMBERSHIP_ACTIONS


@pytest.mark.parametrize("action_type", sorted(CHANGES))
async def test_each_action_type_leads_to_a_reconcile_after_which_store_and_trello_agree(
    action_type: str, services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    await changed_in_trello(services, sqlite_url, CHANGES[action_type], action_type)

    await run_worker(settings_for(make_settings, services))
    await run_worker(settings_for(make_settings, services))  # the reconciles a first pass handed on

    assert await store_and_trello_differences(sqlite_url, await emulator_state(services)) == []


async def test_a_new_board_gets_a_webhook_and_its_members_in_the_store(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    _, data, _ = await changed_in_trello(services, sqlite_url, board_created, "createBoard")

    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    hooked = {hook["idModel"] for hook in after["webhooks"] if hook["callbackURL"] == services["callback"]}
    assert data["board"]["id"] in hooked
    assert await store_and_trello_differences(sqlite_url, after) == []


async def test_out_of_order_and_repeated_deliveries_end_where_clean_ones_do(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    roadmap, ken = board_named(state, "Roadmap"), member_named(state, "ken.thompson")
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.put(f"/_emulator/boards/{roadmap}/members/{ken}", json={"type": "normal"})
        await admin.put(f"/_emulator/boards/{roadmap}/members/{ken}", json={"type": "observer"})
    data = {"board": {"id": roadmap}, "idMember": ken}
    # The last change first, then the first one, then the last one again.
    for action_type in ("makeObserverOfBoard", "addMemberToBoard", "makeObserverOfBoard"):
        await deliver(services, action_type, data, roadmap)

    await run_worker(settings_for(make_settings, services))

    assert await store_and_trello_differences(sqlite_url, await emulator_state(services)) == []


async def test_the_full_resync_repairs_what_no_webhook_said_and_sweeps_the_outbox(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await board_role_changed(admin, state)
        await someone_joined(admin, state)
        await someone_left(admin, state)
        await board_created(admin, state)
    database = Database(sqlite_url)
    async with database.transaction() as session:  # a change whose job was never queued (Redis was down)
        margaret = await session.scalar(
            select(User).where(User.trello_member_id == member_named(state, "margaret.hamilton"))
        )
        assert margaret is not None
        change = await outbox.add(
            session, organization_id=1, user_id=margaret.id, kind="update", cause="test"
        )

    resync = trellis("resync", "--no-wait", env=cli_env(services, sqlite_url, redis_url))
    assert resync.returncode == 0, resync.stderr
    await run_worker(settings_for(make_settings, services))
    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    assert await store_and_trello_differences(sqlite_url, after) == []
    hooked = {hook["idModel"] for hook in after["webhooks"] if hook["callbackURL"] == services["callback"]}
    assert hooked == {after["workspaces"][0]["id"]} | {b["id"] for b in after["boards"]}
    async with database.transaction() as session:
        assert change.id not in [c.id for c in await outbox.pending(session)]
    await database.dispose()
    reported = await read_status_board(redis_url)  # what the console's overview shows
    assert reported[status.RESYNC].figures["scopes"] == 1 + len(state["boards"])
    assert reported[status.WEBHOOKS].figures["failed"] == 0


async def read_status_board(redis_url: str) -> dict[str, Status]:
    redis = Redis.from_url(redis_url)
    try:
        return await StatusBoard(redis).read()
    finally:
        await redis.aclose()


async def test_trellis_resync_shows_the_reconciles_done_and_ends_when_all_are(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    env = cli_env(services, sqlite_url, redis_url, COLUMNS="100")
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trellis", "resync", "--timeout", "60", env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    redis = Redis.from_url(redis_url)
    while not await redis.zcard(QUEUE):  # the command has queued the resync
        assert command.returncode is None
        await asyncio.sleep(0.05)
    await redis.aclose()
    await run_worker(settings_for(make_settings, services))
    stdout, stderr = await asyncio.wait_for(command.communicate(), 60)
    out = stdout.decode()

    assert command.returncode == 0, stderr.decode()
    assert "6 workspace(s) and board(s) queued for a reconcile" in out
    assert "6/6" in out


async def test_a_workspace_plan_shows_what_it_would_change_and_changes_nothing(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await someone_left(admin, state)
    workspace = state["workspaces"][0]["id"]
    audited = await audit_entries(sqlite_url)

    planned = trellis("plan", "--org", workspace, env=cli_env(services, sqlite_url, redis_url))

    assert planned.returncode == 0, planned.stderr
    assert f"Offboard {member_named(state, 'grace.hopper')}: no longer a member" in planned.stdout
    assert await audit_entries(sqlite_url) == audited


async def audit_entries(sqlite_url: str) -> int:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        count = len((await session.scalars(select(AuditEntry))).all())
    await database.dispose()
    return count


async def test_enforcing_takes_someone_let_into_the_workspace_by_hand_out_again(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority="local")
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        data, workspace = await someone_joined(admin, state)
        roadmap = board_named(state, "Roadmap")
        await admin.put(
            f"/_emulator/boards/{roadmap}/members/{data['member']['id']}", json={"type": "normal"}
        )
    await deliver(services, "addMemberToOrganization", data, workspace)

    await run_worker(settings_for(make_settings, services))

    after = await emulator_state(services)
    intruder = data["member"]["id"]
    assert intruder not in {m["idMember"] for m in after["workspaces"][0]["memberships"]}
    assert intruder not in {m["idMember"] for b in after["boards"] for m in b["memberships"]}


async def scim_user(services: dict[str, Any], email: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=services["emulator"]) as client:
        found = await client.get(
            "/scim/directory/emulator-directory/Users", params={"filter": f'userName eq "{email}"'},
            headers={"authorization": "Bearer emulator-scim-token"},
        )  # fmt: skip
    resources: list[dict[str, Any]] = found.json()["Resources"]
    assert len(resources) == 1
    return resources[0]


async def offboard_grace(services: dict[str, Any], settings: Any, sqlite_url: str) -> dict[str, Any]:
    state, _, _ = await changed_in_trello(services, sqlite_url, someone_left, "removeMemberFromOrganization")
    await run_worker(settings)
    return next(m for m in state["members"] if m["username"] == "grace.hopper")


async def test_scim_auto_deactivates_the_account_of_someone_offboarded(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    settings = settings_for(
        make_settings, services, scim_base_url=services["emulator"], scim_deactivate="auto", **SCIM
    )
    grace = await offboard_grace(services, settings, sqlite_url)

    assert (await scim_user(services, grace["email"]))["active"] is False
    assert (await scim_user(services, "ada.lovelace@acme.example"))["active"] is True


async def test_scim_approve_waits_for_an_operator_then_deactivates(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    settings = settings_for(make_settings, services, scim_base_url=services["emulator"],
                            scim_deactivate="approve", **SCIM)  # fmt: skip
    grace = await offboard_grace(services, settings, sqlite_url)
    assert (await scim_user(services, grace["email"]))["active"] is True
    env = cli_env(services, sqlite_url, redis_url, TRELLIS_SCIM_BASE_URL=services["emulator"],
                  TRELLIS_SCIM_DEACTIVATE="approve", TRELLIS_SCIM_DIRECTORY_ID="emulator-directory",
                  TRELLIS_SCIM_TOKEN="emulator-scim-token")  # fmt: skip
    listed = trellis("approvals", "list", env=env)
    assert f"account:{grace['email']}" in listed.stdout

    database = Database(sqlite_url)
    async with database.transaction() as session:
        approval = await session.scalar(
            select(PendingApproval.id).where(PendingApproval.kind == "scim_deactivate")
        )
    await database.dispose()
    approved = trellis("approvals", "approve", str(approval), env=env)
    assert approved.returncode == 0, approved.stderr
    await run_worker(settings)

    assert (await scim_user(services, grace["email"]))["active"] is False


async def test_dead_letters_are_listed_and_a_replayed_one_runs(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    roadmap, ken = board_named(state, "Roadmap"), member_named(state, "ken.thompson")
    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.put(f"/_emulator/boards/{roadmap}/members/{ken}", json={"type": "normal"})
        await admin.put("/_emulator/faults", json={"error_rate": 1.0})
    redis = Redis.from_url(redis_url)
    await JobQueue(redis, QUEUE).enqueue(builders.reconcile("board", roadmap, "test"))
    await run_worker(settings_for(make_settings, services, job_max_tries=1), failures=1)
    env = cli_env(services, sqlite_url, redis_url)
    listed = trellis("dead-letters", "list", env=env)
    assert "reconcile_board" in listed.stdout
    job_id = listed.stdout.split()[0]

    async with httpx.AsyncClient(base_url=services["emulator"]) as admin:
        await admin.put("/_emulator/faults", json={"error_rate": 0.0})
    assert trellis("dead-letters", "replay", job_id, env=env).returncode == 0
    await run_worker(settings_for(make_settings, services))
    await redis.aclose()

    assert trellis("dead-letters", "list", env=env).stdout.strip() == "no dead letters"
    assert await store_and_trello_differences(sqlite_url, await emulator_state(services)) == []


async def test_a_role_given_in_trello_is_taken_into_the_store_and_audited(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str
) -> None:
    state, _, _ = await changed_in_trello(
        services, sqlite_url, workspace_role_changed, "makeAdminOfOrganization"
    )

    await run_worker(settings_for(make_settings, services))

    database = Database(sqlite_url)
    async with database.transaction() as session:
        ken = await session.scalar(
            select(Membership).join(User).where(User.trello_member_id == member_named(state, "ken.thompson"))
        )
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "role_synced"))
    await database.dispose()
    assert ken is not None
    assert ken.role == "admin"
    assert entry is not None
    assert entry.cause.startswith("reconcile (action:")
