"""SCIM deactivation knows the whole person: never while they belong to a linked workspace, matched for
certain (by email, or by the Atlassian account id Trello shows an enterprise admin), never guessed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from emulator.fixture import sample
from membership.database import Database
from membership.models import AuditEntry
from tests.stack import store_like_trello
from tests.workers.conftest import ClientFactory
from tests.workers.outside.test_scim_client import client as scim_client
from workers.outside.scim import ScimClient
from workers.outside.trello import TrelloClient
from workers.workflows.accounts import Person, after_offboarding


@asynccontextmanager
async def world(
    open_trello: ClientFactory, redis: Redis, sqlite_url: str, plan: str
) -> AsyncIterator[tuple[TrelloClient, ScimClient, httpx.AsyncClient, Database, dict[str, Any]]]:
    """Trello, SCIM and the store as Trello is, the workspace on `plan`."""
    fixture = sample()
    fixture["workspaces"][0]["plan"] = plan
    async with open_trello(fixture=fixture) as (trello, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as admin:
            state = (await admin.get("/_emulator/state")).json()
            await store_like_trello(sqlite_url, state)
            database = Database(sqlite_url)
            yield trello, scim_client(admin, redis), admin, database, state
            await database.dispose()


async def leaves(admin: httpx.AsyncClient, state: dict[str, Any], username: str) -> dict[str, Any]:
    member = next(m for m in state["members"] if m["username"] == username)
    await admin.delete(f"/_emulator/organizations/{state['workspaces'][0]['id']}/members/{member['id']}")
    return member


async def test_someone_still_in_a_linked_workspace_in_trello_keeps_their_account(
    open_trello: ClientFactory, redis_client: Redis, sqlite_url: str
) -> None:
    async with world(open_trello, redis_client, sqlite_url, "premium") as (trello, scim, _, database, state):
        ken = next(m for m in state["members"] if m["username"] == "ken.thompson")
        person = Person(ken["email"], ken["id"])
        outcome = await after_offboarding(
            scim, trello, database, "auto", person, organization_id=None, cause="t"
        )
        account = await scim.find_user_by_email(ken["email"])
    assert outcome == "account kept: ken.thompson@acme.example still belongs to workspace Acme (in Trello)"
    assert account is not None
    assert account["active"] is True


async def adopted_grace_leaves(
    open_trello: ClientFactory, redis: Redis, sqlite_url: str, plan: str
) -> tuple[str, dict[str, Any] | None, AuditEntry | None, dict[str, Any]]:
    """Grace, adopted from Trello (no email in the store), leaves, and `auto` applies: the outcome, her
    account afterwards, the report of an unmatched account if any, and her Trello member."""
    async with world(open_trello, redis, sqlite_url, plan) as (trello, scim, admin, database, state):
        grace = await leaves(admin, state, "grace.hopper")
        person = Person(email=None, member_id=grace["id"])
        outcome = await after_offboarding(
            scim, trello, database, "auto", person, organization_id=None, cause="t"
        )
        account = await scim.find_user_by_email(grace["email"])
        async with database.transaction() as session:
            reported = await session.scalar(
                select(AuditEntry).where(AuditEntry.action == "account_not_matched")
            )
    return outcome, account, reported, grace


async def test_an_adopted_member_is_matched_by_the_atlassian_account_id_an_enterprise_admin_sees(
    open_trello: ClientFactory, redis_client: Redis, sqlite_url: str
) -> None:
    outcome, account, reported, grace = await adopted_grace_leaves(
        open_trello, redis_client, sqlite_url, "enterprise"
    )
    assert outcome == f"the Atlassian account of Trello member {grace['id']} is deactivated"
    assert account is not None
    assert account["active"] is False
    assert reported is None


async def test_a_member_whose_account_id_trello_does_not_show_is_reported_never_guessed(
    open_trello: ClientFactory, redis_client: Redis, sqlite_url: str
) -> None:
    outcome, account, reported, _ = await adopted_grace_leaves(
        open_trello, redis_client, sqlite_url, "premium"
    )
    assert outcome.startswith("account not deactivated: the store has no email for Trello member")
    assert account is not None
    assert account["active"] is True
    assert reported is not None
    assert reported.cause == "t"
