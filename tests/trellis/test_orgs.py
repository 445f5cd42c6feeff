"""`trellis orgs`: link checked with Trello, list with webhook health, authority switched after showing
what it would change, unlink removing the webhooks and keeping the history."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select

from jobs import builders
from jobs.queue import JobQueue
from membership.database import Database
from membership.models import AuditEntry, Organization
from tests.conftest import SettingsFactory
from tests.stack import (
    QUEUE,
    cli_env,
    emulator_state,
    run_worker,
    services,
    settings_for,
    store_like_trello,
    trellis,
)

__all__ = ["services"]  # a fixture, used by name


async def watched(services: dict[str, Any]) -> set[str]:
    return {hook["idModel"] for hook in (await emulator_state(services))["webhooks"]}


async def watched_like_trello(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis: Redis
) -> dict[str, Any]:
    """The store as Trello is, every webhook registered; Trello's state."""
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    await JobQueue(redis, QUEUE).enqueue(builders.ensure_webhooks("test"))
    await run_worker(settings_for(make_settings, services))
    return state


async def test_a_workspace_is_linked_by_its_id_not_by_its_name(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    workspace = state["workspaces"][0]
    env = cli_env(services, sqlite_url, redis_url)
    by_name = trellis(
        "orgs", "link", workspace["name"], "--name", "Acme", "--owner", "o@acme.example", env=env
    )
    unknown = trellis("orgs", "link", "5f" + "0" * 22, "--name", "Acme", "--owner", "o@acme.example", env=env)
    by_id = trellis("orgs", "link", workspace["id"], "--name", "Acme", "--owner", "o@acme.example", env=env)
    assert by_name.returncode == 1
    assert f"link it by its id, {workspace['id']}" in by_name.stderr
    assert unknown.returncode == 1
    assert "no workspace" in unknown.stderr
    assert by_id.returncode == 0, by_id.stderr


async def test_the_list_shows_authority_boards_members_and_webhook_health(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    state = await watched_like_trello(services, make_settings, sqlite_url, redis_client)
    listed = trellis("orgs", "list", env=cli_env(services, sqlite_url, redis_url))
    [line] = listed.stdout.strip().splitlines()
    boards = len([b for b in state["boards"] if not b["closed"]])
    assert state["workspaces"][0]["id"] in line
    assert "trello" in line
    assert f"{len(state['boards'])} board(s)" in line
    assert f"webhooks {boards + 1}/{boards + 1} active" in line


async def test_switching_authority_shows_the_plan_then_switches_with_yes(
    services: dict[str, Any], sqlite_url: str, redis_url: str
) -> None:
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    workspace = state["workspaces"][0]["id"]
    switched = trellis(
        "orgs", "authority", workspace, "local", "--yes", env=cli_env(services, sqlite_url, redis_url)
    )
    assert switched.returncode == 0, switched.stderr
    assert switched.stdout.startswith(f"workspace {workspace}:")  # the plan under the new authority first
    database = Database(sqlite_url)
    async with database.transaction() as session:
        authority = await session.scalar(select(Organization.authority))
        audited = await session.scalar(select(AuditEntry).where(AuditEntry.action == "authority_changed"))
    await database.dispose()
    assert authority == "local"
    assert audited is not None


async def test_unlinking_removes_the_webhooks_and_keeps_the_history(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_url: str,
    redis_client: Redis,
) -> None:  # fmt: skip
    state = await watched_like_trello(services, make_settings, sqlite_url, redis_client)
    workspace = state["workspaces"][0]["id"]
    assert workspace in await watched(services)

    unlinked = trellis("orgs", "unlink", workspace, env=cli_env(services, sqlite_url, redis_url))

    assert unlinked.returncode == 0, unlinked.stderr
    assert await watched(services) == set()
    database = Database(sqlite_url)
    async with database.transaction() as session:
        organization = await session.scalar(select(Organization))
        history = (await session.scalars(select(AuditEntry.action))).all()
    await database.dispose()
    assert organization is not None
    assert organization.trello_org_id is None
    assert "organization_unlinked" in history
