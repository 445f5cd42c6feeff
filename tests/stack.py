"""What the end-to-end tests share: the emulator and a receiver as real processes, a store set up like
the emulator's Trello, an arq worker run in burst mode, and the `trellis` command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import func, select

from membership.boards import effective_access
from membership.database import Database, migrate
from membership.directory import add_board, create_token, link_organization
from membership.members import BoardGrant, regrant
from membership.models import Board, EventLogEntry, Membership, User
from membership.rules import Actor
from membership.workspaces import linked_memberships
from tests.conftest import SettingsFactory
from tests.support import encode, free_port, trello_id, trello_signature
from trellis.wiring import worker_settings

KEY, TOKEN, SECRET = "e2e-key", "e2e-token", "e2e-secret"
QUEUE = "trellis:test:queue"


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, "the process exited"
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.1)


@pytest.fixture
def services(redis_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    emulator_port, receiver_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    callback = f"http://127.0.0.1:{receiver_port}/webhooks/trello"
    env = {
        **os.environ,
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_DATABASE_URL": sqlite_url,
        "TRELLIS_QUEUE_NAME": QUEUE,
        "TRELLIS_TRELLO_SECRET": SECRET,
        "TRELLIS_CALLBACK_URL": callback,
        "TRELLIS_PORT": str(receiver_port),
    }
    logs = (tmp_path / "services.log").open("wb")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "trellis", "emulator", "--port", str(emulator_port), "--key", KEY,
             "--token", TOKEN, "--secret", SECRET, "--retry-delay", "0.1"],
            stdout=logs, stderr=subprocess.STDOUT,
        ),
        subprocess.Popen([sys.executable, "-m", "trellis", "serve"], env=env,
                         stdout=logs, stderr=subprocess.STDOUT),
    ]  # fmt: skip
    wait_for(f"{emulator}/_emulator/state", processes[0])
    wait_for(f"http://127.0.0.1:{receiver_port}/healthz", processes[1])
    yield {"emulator": emulator, "callback": callback, "receiver": f"http://127.0.0.1:{receiver_port}"}
    for process in processes:
        process.terminate()
        process.wait(20)
    logs.close()


async def store_like_trello(sqlite_url: str, state: dict[str, Any], authority: str = "trello") -> None:
    """The store as Trello is now: every workspace member, every board, each member's board access."""
    await migrate(sqlite_url)
    database = Database(sqlite_url)
    actor = Actor.system("test")
    async with database.transaction() as session:
        workspace = state["workspaces"][0]
        organization = await link_organization(
            session,
            workspace["id"],
            name="Acme",
            owner_email="owner@acme.example",
            authority=authority,
            actor=actor,
        )
        boards = {
            b["id"]: await add_board(session, organization.id, name=b["name"], trello_board_id=b["id"])
            for b in state["boards"]
        }
        roles = {m["idMember"]: m["memberType"] for m in workspace["memberships"]}
        for member in state["members"]:
            user = User(email=member["email"], name=member["fullName"], trello_member_id=member["id"])
            session.add(user)
            await session.flush()
            grants = [
                BoardGrant(boards[b["id"]].id, can_read=True, can_write=True)
                for b in state["boards"]
                if any(m["idMember"] == member["id"] for m in b["memberships"])
            ]
            role = "admin" if roles.get(member["id"]) == "admin" else "member"
            membership = Membership(
                organization_id=organization.id, user_id=user.id, role=role, board_access=[]
            )
            membership.board_access = regrant([], grants)
            session.add(membership)
    await database.dispose()


async def emulator_state(services: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        state: dict[str, Any] = (await client.get(services["emulator"] + "/_emulator/state")).json()
        return state


def settings_for(make_settings: SettingsFactory, services: dict[str, Any], **extra: Any) -> Any:
    return make_settings(
        trello_base_url=services["emulator"] + "/1", trello_api_key=KEY, trello_token=TOKEN,
        trello_secret=SECRET, callback_url=services["callback"], reconcile_debounce_seconds=0.2, **extra,
    )  # fmt: skip


def cli_env(services: dict[str, Any], sqlite_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment for `trellis` commands against the same emulator, store and queue."""
    return {
        "TRELLIS_DATABASE_URL": sqlite_url,
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_QUEUE_NAME": QUEUE,
        "TRELLIS_TRELLO_BASE_URL": services["emulator"] + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY,
        "TRELLIS_TRELLO_TOKEN": TOKEN,
        "TRELLIS_CALLBACK_URL": services["callback"],
        **extra,
    }


def trellis(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trellis", *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


async def members_of(services: dict[str, Any], board_id: str) -> set[str]:
    boards = (await emulator_state(services))["boards"]
    return {m["idMember"] for b in boards if b["id"] == board_id for m in b["memberships"]}


async def run_worker(settings: Any, *, failures: int = 0) -> None:
    """An arq worker, until the queue is empty; `failures`: the jobs expected to fail for good."""
    worker = Worker(**{**worker_settings(settings), "burst": True, "poll_delay": 0.05})
    await worker.main()
    await worker.close()
    assert worker.jobs_failed == failures


async def owner_token(sqlite_url: str) -> str:
    database = Database(sqlite_url)
    async with database.transaction() as session:
        _, token = await create_token(session, "owner@acme.example")
    await database.dispose()
    return token


async def api_member_id(trello_member_id: str, sqlite_url: str) -> int:
    """The membership id the API names a linked Trello member by."""
    database = Database(sqlite_url)
    async with database.transaction() as session:
        user = await session.scalar(select(User).where(User.trello_member_id == trello_member_id))
        assert user is not None
        membership = await session.scalar(select(Membership).where(Membership.user_id == user.id))
        assert membership is not None
    await database.dispose()
    return membership.id


ACCESS = {"admin": "write", "normal": "write", "observer": "read"}


async def store_and_trello_differences(sqlite_url: str, state: dict[str, Any]) -> list[str]:
    """Where the store (mirroring) does not say what Trello says: workspace members and their roles,
    and every member's access to every board. Empty when they agree."""
    workspace = state["workspaces"][0]
    trello_roles = {
        m["idMember"]: "admin" if m["memberType"] == "admin" else "member"
        for m in workspace["memberships"]
        if not m["unconfirmed"]
    }
    database = Database(sqlite_url)
    differences = []
    async with database.transaction() as session:
        organization_id = (await session.scalar(select(Board.organization_id))) or 0
        memberships = await linked_memberships(session, organization_id)
        store_roles = {member: m.role for member, m in memberships.items() if m.role != "owner"}
        if store_roles != trello_roles:
            differences.append(f"workspace roles: store {store_roles} != trello {trello_roles}")
        boards = {b.trello_board_id: b for b in (await session.scalars(select(Board))).all()}
        for board in state["boards"]:
            if board["id"] not in boards:
                differences.append(f"board {board['name']} not linked")
                continue
            trello = {m["idMember"]: ACCESS[m["memberType"]] for m in board["memberships"]}
            store = {
                member: access
                for member, m in memberships.items()
                if (access := effective_access(m, boards[board["id"]].id)) != "none"
            }
            if store != trello:
                differences.append(f"board {board['name']}: store {store} != trello {trello}")
    await database.dispose()
    return differences


async def events_recorded(url: str) -> int:
    database = Database(url)
    async with database.transaction() as session:
        recorded = await session.scalar(select(func.count()).select_from(EventLogEntry))
    await database.dispose()
    return recorded or 0


async def events_recorded_once_caught_up(url: str, expected: int, within: float = 30.0) -> int:
    """The event log's count once it reaches `expected` (the last apply_event jobs may still be
    running), or as it is when `within` seconds have passed."""
    recorded = 0
    for _ in range(int(within / 0.25)):
        recorded = await events_recorded(url)
        if recorded >= expected:
            break
        await asyncio.sleep(0.25)
    return recorded


def member_named(state: dict[str, Any], username: str) -> str:
    return str(next(m["id"] for m in state["members"] if m["username"] == username))


def board_named(state: dict[str, Any], name: str) -> str:
    return str(next(b["id"] for b in state["boards"] if b["name"] == name))


async def deliver(services: dict[str, Any], action_type: str, data: dict[str, Any], model: str) -> str:
    """A signed delivery of `action_type`, as Trello would send it, straight to the receiver; returns
    the action's id."""
    action_id = trello_id()
    body = encode(
        {
            "action": {
                "id": action_id,
                "idMemberCreator": trello_id(),
                "type": action_type,
                "date": "2026-11-22T10:00:00.000Z",
                "data": data,
            },
            "model": {"id": model},
        }
    )
    signature = trello_signature(body, secret=SECRET, callback_url=services["callback"])
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            services["callback"], content=body, headers={"x-trello-webhook": signature}
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "queued"
    return action_id
