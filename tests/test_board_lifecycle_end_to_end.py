"""Boards that close, vanish or move, end to end: the emulator and the receiver as processes, Redis, the
store, arq workers. Whatever happened in Trello, the store, Trello and the webhooks end consistent, and
no job is dead-lettered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from jobs import builders
from jobs.deadletters import DeadLetters
from jobs.queue import JobQueue
from membership.boards import board_by_trello_id, board_guests
from membership.database import Database
from membership.directory import link_organization
from membership.models import AuditEntry, BoardAccess, Organization
from membership.rules import Actor
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


async def reconcile(redis: Redis, settings: Any, *scopes: tuple[builders.ScopeKind, str]) -> None:
    queue = JobQueue(redis, QUEUE)
    for kind, scope_id in scopes:
        await queue.enqueue(builders.reconcile(kind, scope_id, "test"))
    await run_worker(settings)
    assert await DeadLetters(redis).list() == []


async def watched(services: dict[str, Any]) -> set[str]:
    return {hook["idModel"] for hook in (await emulator_state(services))["webhooks"]}


async def prepared(
    services: dict[str, Any], sqlite_url: str, redis: Redis, settings: Any, authority: str
) -> tuple[dict[str, Any], str, str]:
    """The store as Trello is, every webhook registered; the workspace's and Roadmap's ids."""
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state, authority=authority)
    await JobQueue(redis, QUEUE).enqueue(builders.ensure_webhooks("test"))
    await run_worker(settings)
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    return state, state["workspaces"][0]["id"], roadmap


async def unlinked(sqlite_url: str, board: str) -> AuditEntry | None:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        linked = await board_by_trello_id(session, board)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "board_unlinked"))
    await database.dispose()
    return entry if linked is None else None


@pytest.mark.parametrize("authority", ["trello", "local"])
async def test_a_deleted_board_is_let_go_of_and_doctor_is_content(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str,
    redis_client: Redis, authority: str,
) -> None:  # fmt: skip
    settings = settings_for(make_settings, services)
    _, workspace, roadmap = await prepared(services, sqlite_url, redis_client, settings, authority)
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        assert (await trello.delete(f"/_emulator/boards/{roadmap}")).status_code == 200

    await reconcile(redis_client, settings, ("board", roadmap), ("workspace", workspace))

    entry = await unlinked(sqlite_url, roadmap)
    assert entry is not None
    assert "deleted" in entry.after["reason"]  # type: ignore[index]
    assert entry.before["access"]  # type: ignore[index]  # the access records it took, kept in the audit
    doctor = trellis("doctor", env=cli_env(services, sqlite_url, redis_url))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


async def test_a_membership_action_on_a_board_trellis_does_not_link_costs_no_call_and_no_dead_letter(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    settings = settings_for(make_settings, services)
    _, _, roadmap = await prepared(services, sqlite_url, redis_client, settings, "trello")
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        await trello.delete(f"/_emulator/boards/{roadmap}")
        await reconcile(redis_client, settings, ("board", roadmap))  # let go of
        before = (await trello.get("/_emulator/counters")).json()
        await reconcile(redis_client, settings, ("board", roadmap), ("board", "5f0000000000000000000000"))
        after = (await trello.get("/_emulator/counters")).json()
    assert after == before


@pytest.mark.parametrize("authority", ["trello", "local"])
async def test_a_board_moved_to_another_linked_workspace_is_that_workspaces_and_nobody_is_re_added(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis,
    authority: str,
) -> None:  # fmt: skip
    settings = settings_for(make_settings, services)
    state, acme, roadmap = await prepared(services, sqlite_url, redis_client, settings, authority)
    admin = next(m["username"] for m in state["members"] if m["username"] == "trellis_admin")
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        globex = (await trello.post("/_emulator/organizations", json={
            "name": "globex", "displayName": "Globex", "plan": "premium",
            "members": [{"username": admin, "memberType": "admin"}],
        })).json()["id"]  # fmt: skip
        database = Database(sqlite_url)
        async with database.transaction() as session:
            await link_organization(session, globex, name="Globex", owner_email="owner@globex.example",
                                    authority="local", actor=Actor.system("test"))  # fmt: skip
        await trello.put(f"/_emulator/boards/{roadmap}", json={"idOrganization": globex})
        on_board = await members_of(services, roadmap)

    await reconcile(redis_client, settings, ("board", roadmap), ("workspace", acme), ("workspace", globex))
    await reconcile(redis_client, settings, ("board", roadmap))

    async with database.transaction() as session:
        board = await board_by_trello_id(session, roadmap)
        assert board is not None
        owner = await session.get(Organization, board.organization_id)
        access = (await session.scalars(select(BoardAccess).where(BoardAccess.board_id == board.id))).all()
    await database.dispose()
    assert owner is not None
    assert owner.trello_org_id == globex
    assert access == []  # Acme's members' access records went with the move
    assert await members_of(services, roadmap) <= on_board  # Acme's store re-added no one


async def test_a_board_moved_out_of_any_workspace_is_let_go_of_with_its_webhook(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    settings = settings_for(make_settings, services)
    _, workspace, roadmap = await prepared(services, sqlite_url, redis_client, settings, "local")
    assert roadmap in await watched(services)
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        await trello.put(f"/_emulator/boards/{roadmap}", json={"idOrganization": None})

    await reconcile(redis_client, settings, ("workspace", workspace))

    entry = await unlinked(sqlite_url, roadmap)
    assert entry is not None
    assert "no workspace" in entry.after["reason"]  # type: ignore[index]
    assert roadmap not in await watched(services)


async def test_a_copied_board_is_linked_and_watched_by_the_next_workspace_reconcile(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    settings = settings_for(make_settings, services)
    _, workspace, roadmap = await prepared(services, sqlite_url, redis_client, settings, "trello")
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        copy = (await trello.post(f"/_emulator/boards/{roadmap}/copy", json={"name": "Roadmap 2027"})).json()

    await reconcile(redis_client, settings, ("workspace", workspace))

    database = Database(sqlite_url)
    async with database.transaction() as session:
        assert await board_by_trello_id(session, copy["id"]) is not None
    await database.dispose()
    assert copy["id"] in await watched(services)


async def test_a_resync_after_a_deletion_a_move_a_copy_and_a_guest_ends_with_no_dead_letter(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis
) -> None:
    settings = settings_for(make_settings, services)
    state, _, roadmap = await prepared(services, sqlite_url, redis_client, settings, "local")
    boards = {b["name"]: b["id"] for b in state["boards"]}
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        await trello.delete(f"/_emulator/boards/{roadmap}")
        await trello.put(f"/_emulator/boards/{boards['Hiring']}", json={"idOrganization": None})
        copy = (
            await trello.post(f"/_emulator/boards/{boards['Support']}/copy", json={"name": "Support 2"})
        ).json()
        guest = (await trello.post("/_emulator/members", json={"username": "gus", "fullName": "Gus"})).json()
        await trello.put(
            f"/_emulator/boards/{boards['Marketing']}/members/{guest['id']}", json={"type": "normal"}
        )
        assert (await trello.post("/_emulator/deliveries/settle")).json()["settled"]
        await trello.post("/_emulator/counters/reset")

        await JobQueue(redis_client, QUEUE).enqueue(builders.full_resync("test"))
        await run_worker(settings)
        await run_worker(settings)  # the boards the resync linked get their first reconcile

        counted = (await trello.get("/_emulator/counters")).json()["requests"]
        calls = sum(n for bucket, n in counted.items() if bucket.startswith("token:"))
    print(f"resync after a deletion, a move, a copy and a guest: {calls} Trello calls")
    assert await DeadLetters(redis_client).list() == []
    assert await unlinked(sqlite_url, roadmap) is not None
    assert guest["id"] not in await members_of(services, boards["Marketing"])  # enforcing: guests go
    assert copy["id"] in await watched(services)
    assert boards["Hiring"] not in await watched(services)


async def guests_in_store(sqlite_url: str, board: str) -> dict[str, str]:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        linked = await board_by_trello_id(session, board)
        assert linked is not None
        guests = {g.trello_member_id: g.role for g in await board_guests(session, linked.id)}
    await database.dispose()
    return guests


@pytest.mark.parametrize(("authority", "kept"), [("trello", True), ("local", False)])
async def test_a_guest_is_recorded_when_mirroring_and_removed_when_enforcing(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis,
    authority: str, kept: bool,
) -> None:  # fmt: skip
    settings = settings_for(make_settings, services)
    _, _, roadmap = await prepared(services, sqlite_url, redis_client, settings, authority)
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        guest = (await trello.post("/_emulator/members", json={"username": "gus", "fullName": "Gus"})).json()
        await trello.put(f"/_emulator/boards/{roadmap}/members/{guest['id']}", json={"type": "normal"})

    await reconcile(redis_client, settings, ("board", roadmap))

    assert (guest["id"] in await members_of(services, roadmap)) is kept
    assert await guests_in_store(sqlite_url, roadmap) == ({guest["id"]: "normal"} if kept else {})
