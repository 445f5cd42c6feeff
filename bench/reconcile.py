"""Reconciles against the emulator: coalescing, offboarding under the token limit, the full resync.

Real processes: a redis-server of its own, the emulator (with a generated fixture), a receiver and one
worker (`trellis serve`, `trellis worker`), a SQLite store set up as the fixture says. Trello's limits
are the emulator's and the limiter's both (100 calls per window a token; `--quick` makes the window 1 s
instead of 10 s, so that everything fits in under a minute: ratios hold, absolute times do not).

1. Coalescing: 200 changes to one board's members within about a second, each a signed webhook
   delivery; counts the board's reconciles (target: at most 2) and the API calls they made.
2. Full resync of a workspace of 200 boards x 50 members: API calls a board (target: boards + a few)
   and the time against the token limit's lower bound for that many calls.
3. Offboarding: someone on 300 boards is removed from the workspace in Trello, the token's window full
   at that moment; the time until they are on no board, against the shortest the limit allows for the
   calls made (target: within 1.1 x that + 2 s).

Ends with: result: reconcile coalesced_runs=N offboard_ratio=R resync_calls_per_board=C ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select

from bench.processes import emulator_command, free_port, python_module, redis_server, running, start_worker
from jobs.connection import connect
from jobs.queue import JobQueue
from membership.database import Database, migrate
from membership.directory import link_organization
from membership.members import BoardGrant
from membership.models import Board
from membership.rules import Actor
from membership.workspaces import adopt_member, link_board, trello_user
from trellis.settings import Settings
from trellis.wiring import clients_config
from workers.outside.clients import build_clients
from workers.runtime.resync import request_resync
from workers.runtime.scopes import Scope, Scopes
from workers.workflows.webhooks import ensure_webhooks

KEY, TOKEN, SECRET = "bench-key", "bench-token", "bench-secret"
TOKEN_MAX = 100
QUEUE = "trellis:bench:queue"
SETUP = Actor.system("bench")


def ids(prefix: int) -> Iterator[str]:
    """Trello-shaped ids (24 hex digits), distinct per prefix."""
    n = 0
    while True:
        n += 1
        yield f"{prefix:08x}{n:016x}"


def fixture() -> dict[str, Any]:
    """`resync`: 200 boards x 50 members. `offboard`: 300 boards, each with the admin and Olive."""
    member_ids, board_ids = ids(0x6B000001), ids(0x6B000002)
    people = [{"username": "admin", "fullName": "Admin", "id": next(member_ids)}]
    people += [{"username": f"m{i:02}", "fullName": f"Member {i}", "id": next(member_ids)} for i in range(49)]
    people += [{"username": "olive", "fullName": "Olive Offboarded", "id": next(member_ids)}]
    team = [
        {"username": p["username"], "memberType": "admin" if i == 0 else "normal"}
        for i, p in enumerate(people[:50])
    ]
    return {
        "members": people,
        "workspaces": [
            {"name": "resync", "id": next(board_ids), "plan": "premium", "members": team,
             "boards": [{"name": f"r{i:03}", "id": next(board_ids), "members": team} for i in range(200)]},
            {"name": "offboard", "id": next(board_ids), "plan": "premium",
             "members": [team[0], {"username": "olive", "memberType": "normal"}],
             "boards": [{"name": f"o{i:03}", "id": next(board_ids),
                         "members": [team[0], {"username": "olive", "memberType": "normal"}]}
                        for i in range(300)]},
        ],
        "tokens": [{"token": TOKEN, "member": "admin"}],
    }  # fmt: skip


async def link_as_in_trello(database: Database, data: dict[str, Any], workspace: dict[str, Any]) -> None:
    """The store as Trello has the workspace, written directly (adopting it would cost a call a board)."""
    usernames = {p["username"]: p for p in data["members"]}
    async with database.transaction() as session:
        owner = f"owner@{workspace['name']}.example"
        organization = await link_organization(
            session,
            workspace["id"],
            name=workspace["name"],
            owner_email=owner,
            authority="trello",
            actor=SETUP,
        )
        organization.observers_allowed = True
        for b in workspace["boards"]:
            await link_board(session, SETUP, organization.id, b["id"], name=b["name"], cause="bench")
        rows = await session.scalars(select(Board).where(Board.organization_id == organization.id))
        boards = {b.trello_board_id: b for b in rows.all()}
        for m in workspace["members"]:
            person = usernames[m["username"]]
            user = await trello_user(
                session, person["id"], username=person["username"], full_name=person["fullName"]
            )
            grants = [
                BoardGrant(boards[b["id"]].id, can_read=True, can_write=True)
                for b in workspace["boards"]
                if any(x["username"] == m["username"] for x in b["members"])
            ]
            role = "admin" if m["memberType"] == "admin" else "member"
            await adopt_member(session, SETUP, organization.id, user, role=role, grants=grants, cause="bench")


class Bench:
    """What the benchmark reads: the emulator's counters, the worker's log, the limit's lower bounds."""

    def __init__(self, emulator: str, worker_log: Path, window: float) -> None:
        self.worker_log, self.window = worker_log, window
        self.admin = httpx.AsyncClient(base_url=emulator, timeout=60)

    async def calls(self) -> int:
        counters = (await self.admin.get("/_emulator/counters")).json()
        return int(counters["requests"].get(f"token:{TOKEN}", 0))

    async def rejected(self) -> int:
        counters = (await self.admin.get("/_emulator/counters")).json()
        return int(counters["rejected"].get(f"token:{TOKEN}", 0))

    def completed(self, function: str, subject: str) -> int:
        """Runs of `function` on `subject` the worker has finished, from its log."""
        done = 0
        for line in self.worker_log.read_text().splitlines():
            try:
                event = str(json.loads(line).get("event", ""))
            except ValueError:
                continue
            done += "←" in event and f":{function} " in event and subject in event
        return done

    async def settled(self, scopes: Scopes, watched: list[Any], queue: str, redis: Any) -> None:
        """Deliveries sent, queue empty, every watched scope idle."""
        await self.admin.post("/_emulator/deliveries/settle")

        async def idle() -> bool:
            return not await redis.zcard(queue) and not any(await scopes.pending(watched))

        await until(idle)

    def lower_bound(self, calls: int, *, window_full: bool) -> float:
        """The shortest time the token limit allows for `calls`: a window per 100, the first free
        at once unless the window was full at the start."""
        windows = math.ceil(calls / TOKEN_MAX) - (0 if window_full else 1)
        return max(windows, 0) * self.window


def services(tmp: Path, redis_url: str, window: float, stack: ExitStack) -> dict[str, str]:
    """The emulator (with the fixture), a receiver and a worker, stopped when `stack` closes; returns
    the environment they run with."""
    fixture_file = tmp / "fixture.json"
    fixture_file.write_text(json.dumps(fixture()))
    emulator_port, receiver_port = free_port(), free_port()
    emulator, receiver = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{receiver_port}"
    env = {
        "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/store.db",
        "TRELLIS_QUEUE_NAME": QUEUE, "TRELLIS_TRELLO_BASE_URL": emulator + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY, "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET,
        "TRELLIS_CALLBACK_URL": receiver + "/webhooks/trello", "TRELLIS_PORT": str(receiver_port),
        "TRELLIS_TRELLO_LIMIT_WINDOW_SECONDS": str(window), "TRELLIS_LOG_FORMAT": "json",
        # The offboarding is timed from the removal: the wave guard's deliberate wait is not its cost.
        "TRELLIS_GUARD_WAVE_SETTLE_SECONDS": "0",
    }  # fmt: skip
    stack.enter_context(
        running(
            emulator_command(emulator_port, fixture_file, key=KEY, token=TOKEN, secret=SECRET), emulator_port
        )
    )
    limits = {"token_window": window, "key_window": window}
    httpx.put(f"{emulator}/_emulator/limits", json=limits).raise_for_status()
    stack.enter_context(running(python_module("trellis", "serve"), receiver_port, env))
    start_worker(env, tmp / "worker.log", stack)
    return {**env, "emulator": emulator}


async def measure(env: dict[str, str], worker_log: Path, window: float) -> dict[str, Any]:
    data = fixture()
    resync_ws, offboard_ws = data["workspaces"]
    settings = Settings(
        **{k.removeprefix("TRELLIS_").lower(): v for k, v in env.items() if k.startswith("T")}
    )
    database = Database(settings.database_url)
    redis = connect(settings.redis_target(), timeout=5)
    clients = build_clients(clients_config(settings), redis)
    trello = clients.trello
    assert trello is not None
    queue = JobQueue(redis, QUEUE)
    scopes = Scopes(redis, queue, debounce=0)
    bench = Bench(env["emulator"], worker_log, window)
    callback = env["TRELLIS_CALLBACK_URL"]
    try:
        figures: dict[str, Any] = {}
        # 1. Coalescing: 5 rounds of 40 members' roles changed on one board.
        board = resync_ws["boards"][0]["id"]
        await trello.create_webhook(callback, board, "bench")
        await asyncio.sleep(window)  # the window empty again
        before = await bench.calls()
        members = [p["id"] for p in data["members"][1:41]]
        started = time.monotonic()
        for round_ in range(5):
            role = "observer" if round_ % 2 == 0 else "normal"
            for member in members:
                await bench.admin.put(f"/_emulator/boards/{board}/members/{member}", json={"type": role})
        burst = time.monotonic() - started
        await bench.settled(scopes, [Scope("board", board)], QUEUE, redis)
        figures["coalesced_runs"] = bench.completed("reconcile_board", board)
        figures["coalesce_calls"] = await bench.calls() - before
        print(
            f"coalescing: 200 changes to one board in {burst:.2f} s -> {figures['coalesced_runs']} "
            f"reconcile(s) of it, {figures['coalesce_calls']} API calls"
        )

        # 2. Full resync of 200 boards x 50 members, in the steady state: webhooks registered already.
        await ensure_webhooks(trello, database, callback)
        await asyncio.sleep(window)
        before = await bench.calls()
        started = time.monotonic()
        request = await request_resync(database, scopes, queue, reason="bench")
        await bench.settled(scopes, request.scopes, QUEUE, redis)
        elapsed = time.monotonic() - started
        calls = await bench.calls() - before
        boards = len(resync_ws["boards"])
        bound = bench.lower_bound(calls, window_full=False)
        figures["resync_calls_per_board"] = calls / boards
        figures["resync_ratio"] = elapsed / bound
        print(
            f"resync: {boards} boards x 50 members: {calls} API calls ({calls / boards:.3f} a board), "
            f"{elapsed:.1f} s against the limit's lower bound {bound:.1f} s (ratio {elapsed / bound:.2f}; "
            "at bulk priority, which leaves a share of each window to events)"
        )

        # 3. Offboarding someone on 300 boards, the token's window full at the start.
        await link_as_in_trello(database, data, offboard_ws)
        await trello.create_webhook(callback, offboard_ws["id"], "bench")
        await asyncio.sleep(window)
        await asyncio.gather(*(trello.organization(offboard_ws["id"]) for _ in range(TOKEN_MAX)))
        before = await bench.calls()
        olive = data["members"][-1]["id"]
        started = time.monotonic()
        await bench.admin.delete(f"/_emulator/organizations/{offboard_ws['id']}/members/{olive}")

        async def off_every_board() -> bool:
            return await _boards_of(bench.admin, olive) == 0

        await until(off_every_board)
        elapsed = time.monotonic() - started
        calls = await bench.calls() - before
        bound = bench.lower_bound(calls, window_full=True)
        figures["offboard_ratio"] = elapsed / bound
        met = "met" if elapsed <= 1.1 * bound + 2 else "MISSED"
        print(
            f"offboarding: off 300 boards in {elapsed:.1f} s with {calls} API calls; the token limit's "
            f"shortest for them, window full at the start: {bound:.1f} s "
            f"(ratio {elapsed / bound:.2f}; target 1.1 x + 2 s: {met})"
        )
        figures["rejected"] = await bench.rejected()
        print(f"the emulator's 429s over the run: {figures['rejected']}")
        return figures
    finally:
        await bench.admin.aclose()
        await clients.aclose()
        await database.dispose()
        await redis.aclose()


async def until(check: Callable[[], Awaitable[bool]], interval: float = 0.1) -> None:
    while True:
        if await check():
            return
        await asyncio.sleep(interval)


async def _boards_of(admin: httpx.AsyncClient, member: str) -> int:
    state = (await admin.get("/_emulator/state")).json()
    return sum(any(m["idMember"] == member for m in b["memberships"]) for b in state["boards"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 s limit windows instead of 10 s")
    window = 1.0 if parser.parse_args().quick else 10.0
    with (
        tempfile.TemporaryDirectory(prefix="trellis-bench-") as tmp,
        redis_server() as redis_url,
        ExitStack() as stack,
    ):
        env = services(Path(tmp), redis_url, window, stack)
        asyncio.run(setup(env["TRELLIS_DATABASE_URL"]))
        f = asyncio.run(measure(env, Path(tmp) / "worker.log", window))
    print(
        f"result: reconcile coalesced_runs={f['coalesced_runs']} offboard_ratio={f['offboard_ratio']:.3f} "
        f"resync_calls_per_board={f['resync_calls_per_board']:.3f} resync_ratio={f['resync_ratio']:.3f} "
        f"coalesce_calls={f['coalesce_calls']} rejected={f['rejected']}"
    )


async def setup(store: str) -> None:
    """The store as Trello has the resync workspace (the offboarding one is linked later)."""
    await migrate(store)
    database = Database(store)
    data = fixture()
    await link_as_in_trello(database, data, data["workspaces"][0])
    await database.dispose()


if __name__ == "__main__":
    main()
