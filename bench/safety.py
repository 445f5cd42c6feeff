"""Safety: no single mistake grows into many, measured against real processes.

A redis-server of its own, the emulator (the sample workspace, on the enterprise plan, with the wave's
people added), a receiver and arq workers (`trellis serve`, `trellis worker`), a PostgreSQL store of its
own adopted from Trello. Trello's limit windows are 1 s (as every `--quick` run makes them), so the
phases fit in under a minute; `--quick` makes the phases smaller too.

1. The wave: N people (12; 30 without --quick) removed from the workspace in Trello at once, SCIM on
   `auto`. Before an operator decides: the approvals held, the board removals and the account
   deactivations made (targets: 1, 0, 0); then `trellis approvals approve` and the time until all N are
   off every board.
2. The backlog: two workers whose scopes' queued state lives 3 s (a 1 s job timeout), far less than a
   backlog of 15 (60) duplicate reconciles of each of 4 boards, with bursts of marks on them meanwhile
   and Trello answering in 40 ms. The most reads of one board in flight at once, from the emulator
   (target: 1: two reconciles of a scope never overlap), and scope state left behind (target: none).
3. The onboarding storm: 20 (40) invitations accepted at once through the membership API, Trello
   answering in 50 ms: how many newcomers are linked to their Trello member with their board grant.
4. The outbox drain: 10 changes written while no job could be queued for them (Redis away); a worker
   starts: the seconds until every change is pushed (target: well under a minute).

Ends with: result: safety held_before_approval=H removed_before_approval=R max_concurrent_per_scope=C
onboard_linked=L/N outbox_drain_s=S ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select

from bench.processes import free_port, python_module, redis_server, running
from emulator.fixture import sample
from jobs import builders
from jobs.connection import RedisTarget, connect
from jobs.queue import JobQueue
from membership import approvals, outbox
from membership.boards import board_by_trello_id
from membership.database import Database, recreate_postgres_database, upgrade
from membership.directory import create_token, create_user
from membership.members import change_role
from membership.models import Membership, User
from membership.rules import Actor
from trellis.settings import Settings
from trellis.wiring import clients_config
from workers.outside.clients import build_clients
from workers.runtime.scopes import Scope, Scopes
from workers.workflows.adopt import adopt_workspace
from workers.workflows.webhooks import ensure_webhooks

KEY, TOKEN, SECRET = "bench-key", "bench-token", "bench-secret"
QUEUE = "trellis:bench:safety"
OWNER = "owner@acme.example"
SETUP = Actor.system("bench")
POSTGRES_URL = os.environ.get(
    "TRELLIS_BENCH_SAFETY_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/trellis_bench_safety"
)
SCIM = {"TRELLIS_SCIM_DEACTIVATE": "auto", "TRELLIS_SCIM_DIRECTORY_ID": "emulator-directory",
        "TRELLIS_SCIM_TOKEN": "emulator-scim-token"}  # fmt: skip
SCIM_USERS = "/scim/directory/emulator-directory/Users"
SCIM_HEADERS = {"authorization": "Bearer emulator-scim-token"}


def fixture(wave: int) -> dict[str, Any]:
    """The sample workspace on the enterprise plan (its admin sees members' Atlassian ids), with `wave`
    more people in it, each on Roadmap and in the Atlassian directory."""
    data = sample()
    acme = data["workspaces"][0]
    acme["plan"] = "enterprise"
    roadmap = next(b for b in acme["boards"] if b["name"] == "Roadmap")
    for n in range(wave):
        person = {"username": f"wave{n}", "fullName": f"Wave {n}", "email": f"wave{n}@acme.example"}
        data["members"].append(person)
        acme["members"].append({"username": person["username"], "memberType": "normal"})
        roadmap["members"].append({"username": person["username"], "memberType": "normal"})
        data["scim"]["users"].append({"userName": person["email"], "active": True})
    data["tokens"] = [{"token": TOKEN, "member": "trellis_admin"}]
    return data


class Stack:
    """The emulator and receiver for the whole run; workers started and stopped phase by phase."""

    def __init__(self, tmp: Path, redis_url: str, wave: int, exits: ExitStack) -> None:
        fixture_file = tmp / "fixture.json"
        fixture_file.write_text(json.dumps(fixture(wave)))
        emulator_port, receiver_port = free_port(), free_port()
        self.emulator, receiver = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{receiver_port}"
        self.receiver = receiver
        self.tmp = tmp
        self.env = {
            "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": POSTGRES_URL, "TRELLIS_QUEUE_NAME": QUEUE,
            "TRELLIS_TRELLO_BASE_URL": self.emulator + "/1", "TRELLIS_TRELLO_API_KEY": KEY,
            "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET,
            "TRELLIS_CALLBACK_URL": receiver + "/webhooks/trello", "TRELLIS_PORT": str(receiver_port),
            "TRELLIS_TRELLO_LIMIT_WINDOW_SECONDS": "1", "TRELLIS_LOG_FORMAT": "json",
            "TRELLIS_SCIM_BASE_URL": self.emulator, "TRELLIS_RECONCILE_DEBOUNCE_SECONDS": "0.3",
            "TRELLIS_WORKER_METRICS_PORT": "0", **SCIM,
        }  # fmt: skip
        emulator_argv = python_module(
            "trellis", "emulator", "--port", str(emulator_port), "--fixture", str(fixture_file), "--key",
            KEY, "--token", TOKEN, "--secret", SECRET, "--retry-delay", "0.2",
        )  # fmt: skip
        exits.enter_context(running(emulator_argv, emulator_port))
        httpx.put(
            f"{self.emulator}/_emulator/limits", json={"token_window": 1, "key_window": 1}
        ).raise_for_status()
        exits.enter_context(running(python_module("trellis", "serve"), receiver_port, self.env))

    @contextmanager
    def workers(self, count: int, name: str, **settings: str) -> Iterator[None]:
        """`count` worker processes with these settings on top of the run's."""
        env = {**os.environ, **self.env, **settings}
        with (self.tmp / f"{name}.log").open("wb") as log:
            processes = [
                subprocess.Popen(
                    python_module("trellis", "worker"), env=env, stdout=log, stderr=subprocess.STDOUT
                )
                for _ in range(count)
            ]
            try:
                yield
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(20)


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll `check` until it holds; the seconds it took. Gives up (saying so) after `within`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            print(f"  gave up waiting for {what} after {within:.0f} s")
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def on_board(admin: httpx.AsyncClient, board: str) -> set[str]:
    state = (await admin.get("/_emulator/state")).json()
    return {m["idMember"] for b in state["boards"] if b["id"] == board for m in b["memberships"]}


async def wave_phase(stack: Stack, admin: httpx.AsyncClient, database: Database, wave: int) -> dict[str, Any]:
    state = (await admin.get("/_emulator/state")).json()
    workspace = state["workspaces"][0]["id"]
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    people = [m["id"] for m in state["members"] if m["username"].startswith("wave")][:wave]
    emails = {f"{m['username']}@acme.example" for m in state["members"] if m["id"] in people}

    async def open_wave() -> list[Any]:
        async with database.transaction() as session:
            return [a for a in await approvals.open_approvals(session) if a.kind == "wave"]

    async def deactivated() -> int:
        directory = await admin.get(SCIM_USERS, params={"count": 500}, headers=SCIM_HEADERS)
        return sum(
            1 for user in directory.json()["Resources"] if user["userName"] in emails and not user["active"]
        )

    figures: dict[str, Any] = {}
    with stack.workers(2, "wave", TRELLIS_GUARD_WAVE_SETTLE_SECONDS="2"):
        for member in people:  # the slip: everyone out of the workspace at once
            await admin.delete(f"/_emulator/organizations/{workspace}/members/{member}")

        async def wave_held() -> bool:
            held = await open_wave()
            return bool(held) and len(held[0].payload["members"]) == len(people)

        await until(wave_held, 30, "the wave to be held")
        await asyncio.sleep(3)  # past the settling time: every offboarding of the wave has run
        waves = await open_wave()
        figures["held_before_approval"] = len(waves)
        figures["removed_before_approval"] = len(set(people) - await on_board(admin, roadmap))
        figures["deactivated_before_approval"] = await deactivated()
        print(
            f"wave: {len(people)} people removed from the workspace at once -> {len(waves)} approval held; "
            f"before it is decided: {figures['removed_before_approval']} board removal(s), "
            f"{figures['deactivated_before_approval']} account(s) deactivated"
        )
        if waves:
            approve = python_module("trellis", "approvals", "approve", str(waves[0].id))
            cli = {**os.environ, **stack.env}
            approved = await asyncio.to_thread(
                subprocess.run, approve, env=cli, capture_output=True, text=True
            )
            print(f"  {approved.stdout.strip() or approved.stderr.strip()}")

            async def all_offboarded() -> bool:
                off = set(people).isdisjoint(await on_board(admin, roadmap))
                return off and await deactivated() == len(people)

            figures["wave_done_s"] = await until(all_offboarded, 60, "the approved offboardings")
            figures["deactivated_after_approval"] = await deactivated()
            print(
                f"  approved: {figures['wave_done_s']:.1f} s later all are off their boards and "
                f"{figures['deactivated_after_approval']} account(s) are deactivated"
            )
    return figures


async def backlog_phase(
    stack: Stack, admin: httpx.AsyncClient, queue: JobQueue, copies: int
) -> dict[str, Any]:
    state = (await admin.get("/_emulator/state")).json()
    boards = [b["id"] for b in state["boards"]][:4]
    scopes = Scopes(queue.redis, queue, debounce=0, lifetime=3)
    await admin.put("/_emulator/faults", json={"latency_ms": 40})
    await admin.post("/_emulator/counters/reset")
    jobs = [builders.reconcile("board", board, "backlog") for board in boards for _ in range(copies)]
    await queue.enqueue_many(jobs)
    with stack.workers(2, "backlog", TRELLIS_JOB_TIMEOUT_SECONDS="1", TRELLIS_SCOPE_LEASE_SECONDS="1.5",
                       TRELLIS_WORKER_CONCURRENCY="8"):  # fmt: skip
        for _ in range(10):  # bursts of events on the same boards while the backlog drains
            for board in boards * 5:
                await scopes.mark(Scope("board", board), reason="burst")
            await asyncio.sleep(0.4)

        async def drained() -> bool:
            pending = await scopes.pending([Scope("board", b) for b in boards])
            return not await queue.redis.zcard(QUEUE) and not any(pending)

        took = await until(drained, 90, "the backlog to drain")
    await admin.put("/_emulator/faults", json={"latency_ms": 0})
    most = (await admin.get("/_emulator/counters")).json()["most_in_flight"]
    reads = {board: most.get(f"GET /1/boards/{board}", 0) for board in boards}
    left = [key async for key in queue.redis.scan_iter("trellis:scope:*")]
    figures = {"max_concurrent_per_scope": max(reads.values()), "scope_keys_left": len(left)}
    print(
        f"backlog: {len(jobs)} duplicate reconciles of {len(boards)} boards + 200 marks, 2 workers, drained "
        f"in {took:.1f} s; most reads of one board in flight at once: {figures['max_concurrent_per_scope']}; "
        f"scope keys left: {len(left)}"
    )
    return figures


async def onboarding_phase(
    stack: Stack, admin: httpx.AsyncClient, database: Database, newcomers: int
) -> dict[str, Any]:
    state = (await admin.get("/_emulator/state")).json()
    roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
    emails = [f"newcomer{n}@example.com" for n in range(newcomers)]
    async with database.transaction() as session:
        board = await board_by_trello_id(session, roadmap)
        assert board is not None
        tokens = {}
        for email in emails:
            await create_user(session, email, email.split("@")[0], actor=SETUP)
            tokens[email] = (await create_token(session, email))[1]
        _, owner = await create_token(session, OWNER)
    grant = [{"board_id": board.id, "can_read": True, "can_write": True}]
    await admin.put("/_emulator/faults", json={"latency_ms": 50})
    with stack.workers(2, "onboarding"):
        async with httpx.AsyncClient(base_url=stack.receiver, timeout=30) as api:

            async def onboard(email: str) -> None:
                body = {"email": email, "board_access": grant}
                invite = await api.post("/organizations/me/invites", json=body,
                                        headers={"authorization": f"Bearer {owner}"})  # fmt: skip
                await api.post("/organizations/invites/accept", json={"token": invite.json()["token"]},
                               headers={"authorization": f"Bearer {tokens[email]}"})  # fmt: skip

            await asyncio.gather(*(onboard(email) for email in emails))

        async def linked_on_board() -> int:
            async with database.transaction() as session:
                rows = await session.scalars(select(User.trello_member_id).where(User.email.in_(emails)))
                members = {m for m in rows.all() if m}
            return len(members & await on_board(admin, roadmap))

        async def all_linked() -> bool:
            return await linked_on_board() == newcomers

        took = await until(all_linked, 60, "every newcomer to be linked")
        linked = await linked_on_board()
    await admin.put("/_emulator/faults", json={"latency_ms": 0})
    print(f"onboarding: {newcomers} accepted at once, Trello at 50 ms: {linked} linked with their board "
          f"grant in {took:.1f} s")  # fmt: skip
    return {"onboard_linked": f"{linked}/{newcomers}"}


async def drain_phase(stack: Stack, database: Database) -> dict[str, Any]:
    """Changes written with no job queued for them (as while Redis was away); a worker starts."""
    async with database.transaction() as session:
        memberships = (
            await session.scalars(select(Membership).where(Membership.role == "member").limit(10))
        ).all()
        for membership in memberships:
            await change_role(
                session, SETUP, membership.organization_id, membership.id, "admin", cause="bench"
            )

    async def pending() -> int:
        async with database.transaction() as session:
            return len(await outbox.pending(session))

    waiting = await pending()

    async def drained() -> bool:
        return await pending() == 0

    with stack.workers(1, "drain"):
        took = await until(drained, 60, "the outbox to drain")
    print(f"outbox: {waiting} change(s) pending with no job; a worker started: all pushed in {took:.1f} s")
    return {"outbox_drain_s": took, "outbox_changes": waiting}


async def setup(stack: Stack) -> None:
    """The store afresh, the workspace adopted from Trello, webhooks on it and its boards."""
    await recreate_postgres_database(POSTGRES_URL)
    await asyncio.to_thread(upgrade, POSTGRES_URL)
    settings = Settings(**{k.removeprefix("TRELLIS_").lower(): v for k, v in stack.env.items()})
    redis = connect(settings.redis_target(), timeout=5)
    clients = build_clients(clients_config(settings), redis)
    database = Database(POSTGRES_URL)
    trello = clients.trello
    assert trello is not None
    workspace = (await trello.my_organizations())[0]["id"]
    await adopt_workspace(trello, database, workspace, owner_email=OWNER)
    await ensure_webhooks(trello, database, stack.env["TRELLIS_CALLBACK_URL"])
    await clients.aclose()
    await database.dispose()
    await redis.aclose()


async def measure(stack: Stack, quick: bool) -> dict[str, Any]:
    await setup(stack)
    database = Database(POSTGRES_URL)
    redis = connect(RedisTarget(stack.env["TRELLIS_REDIS_URL"]), timeout=5)
    queue = JobQueue(redis, QUEUE)
    try:
        async with httpx.AsyncClient(base_url=stack.emulator, timeout=30) as admin:
            figures = await wave_phase(stack, admin, database, 12 if quick else 30)
            figures |= await backlog_phase(stack, admin, queue, 15 if quick else 60)
            figures |= await onboarding_phase(stack, admin, database, 20 if quick else 40)
            figures |= await drain_phase(stack, database)
    finally:
        await queue.aclose()
        await database.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller phases: under a minute")
    quick = parser.parse_args().quick
    with (
        tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp,
        redis_server() as redis_url,
        ExitStack() as exits,
    ):
        stack = Stack(Path(tmp), redis_url, 12 if quick else 30, exits)
        f = asyncio.run(measure(stack, quick))
    print(
        f"result: safety held_before_approval={f['held_before_approval']} "
        f"removed_before_approval={f['removed_before_approval']} "
        f"deactivated_before_approval={f['deactivated_before_approval']} "
        f"max_concurrent_per_scope={f['max_concurrent_per_scope']} onboard_linked={f['onboard_linked']} "
        f"outbox_drain_s={f['outbox_drain_s']:.1f} wave_done_s={f.get('wave_done_s', -1):.1f} "
        f"scope_keys_left={f['scope_keys_left']}"
    )


if __name__ == "__main__":
    main()
