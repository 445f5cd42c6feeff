"""End to end, 1 worker against 2: events/s and the time from a change in Trello to the store having it.

Real processes: a redis-server of each run's own, a PostgreSQL database of its own (`trellis_bench`, created
afresh at `TRELLIS_BENCH_POSTGRES_URL`), the emulator with its limits raised far past Trello's (so that
Trellis, not the API allowance, is what is measured), one receiver and N workers. A workspace of 100
boards; the benchmark adds members to boards by hand in Trello, each change a signed webhook delivery,
and polls the store until each change is in it. Run once with 1 worker, once with 2, same changes.

Prints, for each: events/s (changes over the time from the first change to the last one stored),
latency p50/p99 (change made -> store has it; the reconcile debounce, 1 s by default, is part of it),
429s, and changes never stored (lost). `--quick`: 200 changes instead of 1,500.

Ends with: result: scale speedup=S p99_ms=P rejected=N lost=L
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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select

from bench.limiter import percentile
from bench.processes import emulator_command, free_port, python_module, redis_server, running
from bench.reconcile import ids, link_as_in_trello
from membership.boards import effective_access
from membership.database import Database, recreate_postgres_database, upgrade
from membership.models import Board
from membership.workspaces import linked_memberships

KEY, TOKEN, SECRET = "bench-key", "bench-token", "bench-secret"
POSTGRES_URL = os.environ.get(
    "TRELLIS_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/trellis_bench"
)


def fixture() -> dict[str, Any]:
    """100 boards with only the admin on them, and 30 people in the workspace to add to boards."""
    member_ids, board_ids = ids(0x6C000001), ids(0x6C000002)
    people = [{"username": "admin", "fullName": "Admin", "id": next(member_ids)}]
    people += [{"username": f"p{i:02}", "fullName": f"Person {i}", "id": next(member_ids)} for i in range(30)]
    team = [
        {"username": p["username"], "memberType": "admin" if i == 0 else "normal"}
        for i, p in enumerate(people)
    ]
    admin_only = [{"username": "admin", "memberType": "admin"}]
    boards = [{"name": f"b{i:03}", "id": next(board_ids), "members": admin_only} for i in range(100)]
    return {
        "members": people,
        "workspaces": [
            {"name": "scale", "id": next(board_ids), "plan": "premium", "members": team, "boards": boards}
        ],
        "tokens": [{"token": TOKEN, "member": "admin"}],
    }


async def fresh_store(data: dict[str, Any]) -> None:
    await recreate_postgres_database(POSTGRES_URL)
    await asyncio.to_thread(upgrade, POSTGRES_URL)
    database = Database(POSTGRES_URL)
    await link_as_in_trello(database, data, data["workspaces"][0])
    await database.dispose()


async def stored(database: Database) -> set[tuple[str, str]]:
    """(board, member) pairs the store gives access to, among the linked boards."""
    async with database.transaction() as session:
        boards = (await session.scalars(select(Board))).all()
        organization = boards[0].organization_id
        memberships = await linked_memberships(session, organization)
    return {
        (board.trello_board_id or "", member)
        for board in boards
        for member, membership in memberships.items()
        if effective_access(membership, board.id) != "none"
    }


async def drive(
    emulator: str, callback: str, data: dict[str, Any], changes: int, within: float
) -> dict[str, Any]:
    boards = [b["id"] for b in data["workspaces"][0]["boards"]]
    people = [p["id"] for p in data["members"][1:]]
    pairs = [(boards[i % len(boards)], people[(i // len(boards)) % len(people)]) for i in range(changes)]
    database = Database(POSTGRES_URL)
    async with httpx.AsyncClient(base_url=emulator, timeout=30) as admin:
        for model in [data["workspaces"][0]["id"], *boards]:
            watch = {"callbackURL": callback, "idModel": model}
            (
                await admin.post("/1/webhooks", params={"key": KEY, "token": TOKEN}, json=watch)
            ).raise_for_status()
        made: dict[tuple[str, str], float] = {}
        started = time.monotonic()
        for board, person in pairs:
            await admin.put(f"/_emulator/boards/{board}/members/{person}", json={"type": "normal"})
            made[(board, person)] = time.monotonic()
        done: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + within
        while len(done) < len(made) and time.monotonic() < deadline:
            now, have = time.monotonic(), await stored(database)
            for pair in made.keys() - done.keys():
                if pair in have:
                    done[pair] = now
            await asyncio.sleep(0.05)
        rejected = sum((await admin.get("/_emulator/counters")).json()["rejected"].values())
    await database.dispose()
    latencies = [done[pair] - made[pair] for pair in done]
    span = (max(done.values()) - started) if done else float("inf")
    return {
        "events_per_s": len(done) / span, "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000, "rejected": rejected, "lost": len(made) - len(done),
    }  # fmt: skip


def run(workers: int, changes: int) -> dict[str, Any]:
    data = fixture()
    asyncio.run(fresh_store(data))
    # A Redis of each run's own: the runs share the workspace's ids, and a scope the last run left
    # queued (its follow-up reconcile due after its workers stopped) would hold this run's marks back.
    with (
        tempfile.TemporaryDirectory(prefix="trellis-scale-") as tmp,
        redis_server() as redis_url,
        ExitStack() as stack,
    ):
        fixture_file = Path(tmp) / "fixture.json"
        fixture_file.write_text(json.dumps(data))
        emulator_port, receiver_port = free_port(), free_port()
        emulator, callback = (
            f"http://127.0.0.1:{emulator_port}",
            f"http://127.0.0.1:{receiver_port}/webhooks/trello",
        )
        env = {
            "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": POSTGRES_URL,
            "TRELLIS_QUEUE_NAME": f"trellis:scale:{workers}", "TRELLIS_TRELLO_BASE_URL": emulator + "/1",
            "TRELLIS_TRELLO_API_KEY": KEY, "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET,
            "TRELLIS_CALLBACK_URL": callback, "TRELLIS_PORT": str(receiver_port),
            "TRELLIS_TRELLO_TOKEN_LIMIT": "100000", "TRELLIS_TRELLO_KEY_LIMIT": "100000",
            "TRELLIS_WORKER_METRICS_PORT": "0", "TRELLIS_LOG_LEVEL": "warning",
        }  # fmt: skip
        argv = emulator_command(emulator_port, fixture_file, key=KEY, token=TOKEN, secret=SECRET)
        stack.enter_context(running(argv, emulator_port))
        raised = {"token_max": 100000, "key_max": 100000}
        httpx.put(f"{emulator}/_emulator/limits", json=raised).raise_for_status()
        stack.enter_context(running(python_module("trellis", "serve"), receiver_port, env))
        for _ in range(workers):
            worker = subprocess.Popen(python_module("trellis", "worker"), env={**os.environ, **env},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            stack.callback(worker.wait, 15)
            stack.callback(worker.terminate)
        time.sleep(1.5)  # the workers connected
        return asyncio.run(drive(emulator, callback, data, changes, within=120))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 changes instead of 1,500")
    changes = 200 if parser.parse_args().quick else 1500
    figures = {}
    for workers in (1, 2):
        figures[workers] = f = run(workers, changes)
        print(
            f"{workers} worker(s): {changes} changes, {f['events_per_s']:.1f} events/s, latency p50 "
            f"{f['p50_ms']:.0f} ms p99 {f['p99_ms']:.0f} ms, 429s {f['rejected']}, lost {f['lost']}"
        )
    speedup = figures[2]["events_per_s"] / figures[1]["events_per_s"]
    print(f"speedup with 2 workers: {speedup:.2f}")
    rejected = figures[1]["rejected"] + figures[2]["rejected"]
    lost = figures[1]["lost"] + figures[2]["lost"]
    one, two = figures[1]["events_per_s"], figures[2]["events_per_s"]
    print(
        f"result: scale speedup={speedup:.2f} p99_ms={figures[2]['p99_ms']:.0f} rejected={rejected} "
        f"lost={lost} events_per_s_1={one:.1f} events_per_s_2={two:.1f}"
    )


if __name__ == "__main__":
    main()
