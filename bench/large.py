"""Large workspaces on PostgreSQL: a full resync and a burst of events, at 200, 1,000 and 2,000 boards.

For each size, afresh: the emulator seeded with one workspace of that many boards, 2.5 members for each
board (5,000 at 2,000 boards: companies grow both together) and about 100 members on every board; a
PostgreSQL store (`TRELLIS_BENCH_POSTGRES_URL`, made afresh) that agrees with it, written directly; a
redis-server, a receiver and one worker of their own. Webhooks are registered before anything is timed.
Trello's limits hold in the emulator and in the limiter: 100 calls a token in each window of 10 s
(`--quick`: 1 s windows and smaller sizes, so that everything fits in under a minute).

1. Full resync, nothing else running: Trello calls a board; wall time against the token limit's lower
   bound for those calls; SQL statements a board reconcile sends (the worker's
   `trellis_store_statements` for `reconcile_board`, counted with SQLAlchemy's events, over its runs);
   worker CPU-seconds a board; the worker's peak resident memory, and how much it grew from the time a
   fifth of the boards were done to the end (a worker that keeps something a board grows here).
2. A burst of events: one member's role changed on each of 100 boards (`--quick`: 20) in Trello, each a
   signed delivery; the time until every change is in the store, and the calls a change cost.

Prints a table, writes the curve as an SVG (`bench/large.svg`, the README's; `--quick` writes it to the
temp dir; `--plot PATH` anywhere), and ends
with the largest size's figures and how much the figures a board spread across sizes:
result: large boards=N calls_per_board=C resync_ratio=R statements_per_board=S cpu_ms_per_board=P
        rss_growth_mb=G peak_rss_mb=M burst_s=B burst_calls_per_event=E statements_spread=X ...
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from bench.processes import (
    cpu_seconds,
    emulator_command,
    free_port,
    python_module,
    redis_server,
    running,
    start_worker,
)
from bench.reconcile import Bench, ids
from jobs.connection import connect
from jobs.queue import JobQueue
from membership.database import Database, recreate_postgres_database, upgrade
from membership.directory import link_organization
from membership.models import Board, BoardAccess, Membership, User
from membership.rules import Actor
from trellis.settings import Settings
from trellis.wiring import clients_config
from workers.outside.clients import build_clients
from workers.runtime.resync import request_resync
from workers.runtime.scopes import Scope, Scopes
from workers.workflows.webhooks import ensure_webhooks

KEY, TOKEN, SECRET = "bench-key", "bench-token", "bench-secret"
TOKEN_MAX, KEY_MAX = 100, 300
QUEUE = "trellis:bench:large"
POSTGRES_URL = os.environ.get(
    "TRELLIS_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/trellis_bench"
)
SETUP = Actor.system("bench")


@dataclass
class Figures:
    boards: int
    members: int
    calls_per_board: float
    resync_s: float
    bound_s: float
    statements_per_board: float
    cpu_ms_per_board: float
    peak_rss_mb: float
    rss_growth_mb: float
    burst_s: float
    burst_calls_per_event: float
    rejected: int

    @property
    def resync_ratio(self) -> float:
        return self.resync_s / self.bound_s if self.bound_s else float("nan")  # all within one window


def fixture(boards: int, per_board: int) -> dict[str, Any]:
    """One workspace: `boards` boards, 2.5 members a board, each board the admin and a run of the
    others (every member on about the same number of boards)."""
    member_ids, board_ids = ids(0x6D000001), ids(0x6D000002)
    count = boards * 5 // 2
    people = [
        {"username": f"p{i:05}", "fullName": f"Person {i}", "id": next(member_ids)} for i in range(count)
    ]
    team = [
        {"username": p["username"], "memberType": "admin" if i == 0 else "normal"}
        for i, p in enumerate(people)
    ]
    runs = [
        [team[0]] + [team[1 + (b * per_board + j) % (count - 1)] for j in range(per_board - 1)]
        for b in range(boards)
    ]
    return {
        "members": people,
        "workspaces": [{"name": "enterprise", "id": next(board_ids), "plan": "enterprise", "members": team,
                        "boards": [{"name": f"b{i:05}", "id": next(board_ids), "members": run}
                                   for i, run in enumerate(runs)]}],
        "tokens": [{"token": TOKEN, "member": team[0]["username"]}],
    }  # fmt: skip


async def seed_store(data: dict[str, Any]) -> None:
    """The store as Trello has the workspace: bulk inserts, as adopting it member by member would take
    longer than the resync it prepares."""
    await recreate_postgres_database(POSTGRES_URL)
    await asyncio.to_thread(upgrade, POSTGRES_URL)
    database = Database(POSTGRES_URL)
    workspace = data["workspaces"][0]
    async with database.transaction() as session:
        organization = await link_organization(
            session, workspace["id"], name=workspace["name"], owner_email="owner@enterprise.example",
            authority="trello", actor=SETUP,
        )  # fmt: skip
        organization.observers_allowed = True
        org = organization.id
        boards = await session.execute(
            insert(Board).returning(Board.trello_board_id, Board.id),
            [{"organization_id": org, "trello_board_id": b["id"], "name": b["name"]}
             for b in workspace["boards"]],
        )  # fmt: skip
        board_ids = dict(boards.all())
        users = await session.execute(
            insert(User).returning(User.trello_username, User.id),
            [{"name": p["fullName"], "trello_member_id": p["id"], "trello_username": p["username"]}
             for p in data["members"]],
        )  # fmt: skip
        user_ids = dict(users.all())
        roles = {
            m["username"]: "admin" if m["memberType"] == "admin" else "member" for m in workspace["members"]
        }
        memberships = await session.execute(
            insert(Membership).returning(Membership.user_id, Membership.id),
            [{"organization_id": org, "user_id": user_ids[name], "role": role}
             for name, role in roles.items()],
        )  # fmt: skip
        membership_of = {user: membership for user, membership in memberships.all()}
        grants = [
            {"membership_id": membership_of[user_ids[m["username"]]], "board_id": board_ids[b["id"]],
             "can_read": True, "can_write": True}
            for b in workspace["boards"] for m in b["members"]
        ]  # fmt: skip
        for start in range(0, len(grants), 20_000):
            await session.execute(insert(BoardAccess), grants[start : start + 20_000])
    await database.dispose()


class Worker:
    """The worker process: its CPU time, its memory, and the counters it serves."""

    def __init__(self, process: subprocess.Popen[bytes], metrics_port: int) -> None:
        self.process, self.metrics_url = process, f"http://127.0.0.1:{metrics_port}/metrics"

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def memory_mb(self, field: str = "VmRSS") -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field)) / 1024

    async def counter(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(self.metrics_url)).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0


def services(
    tmp: Path, redis_url: str, window: float, data: dict[str, Any], stack: ExitStack
) -> tuple[dict[str, str], Worker]:
    fixture_file = tmp / "fixture.json"
    fixture_file.write_text(json.dumps(data))
    emulator_port, receiver_port, metrics_port = free_port(), free_port(), free_port()
    emulator, receiver = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{receiver_port}"
    env = {
        "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": POSTGRES_URL, "TRELLIS_QUEUE_NAME": QUEUE,
        "TRELLIS_TRELLO_BASE_URL": emulator + "/1", "TRELLIS_TRELLO_API_KEY": KEY,
        "TRELLIS_TRELLO_TOKEN": TOKEN,
        "TRELLIS_TRELLO_SECRET": SECRET, "TRELLIS_CALLBACK_URL": receiver + "/webhooks/trello",
        "TRELLIS_PORT": str(receiver_port), "TRELLIS_TRELLO_LIMIT_WINDOW_SECONDS": str(window),
        "TRELLIS_LOG_FORMAT": "json", "TRELLIS_LOG_LEVEL": "warning",
        "TRELLIS_WORKER_METRICS_PORT": str(metrics_port),
    }  # fmt: skip
    fixture = emulator_command(emulator_port, fixture_file, key=KEY, token=TOKEN, secret=SECRET)
    stack.enter_context(running(fixture, emulator_port))
    stack.enter_context(running(python_module("trellis", "serve"), receiver_port, env))
    process = start_worker(env, tmp / "worker.log", stack)
    return {**env, "emulator": emulator}, Worker(process, metrics_port)


def settings_of(env: dict[str, str], **overrides: Any) -> Settings:
    values = {k.removeprefix("TRELLIS_").lower(): v for k, v in env.items() if k.startswith("TRELLIS_")}
    return Settings(**{**values, **overrides})


async def register_webhooks(env: dict[str, str], bench: Bench, window: float) -> None:
    """Every board's webhook, before anything is timed: the steady state a resync meets. Trello's limits
    are lifted meanwhile, in the emulator and in this client's limiter both, then restored."""
    fast = settings_of(env, trello_token_limit=1_000_000, trello_key_limit=1_000_000)
    await bench.admin.put("/_emulator/limits", json={"token_max": 1_000_000, "key_max": 1_000_000})
    redis = connect(fast.redis_target(), timeout=5)
    clients = build_clients(clients_config(fast), redis)
    database = Database(POSTGRES_URL)
    try:
        assert clients.trello is not None
        report = await ensure_webhooks(clients.trello, database, env["TRELLIS_CALLBACK_URL"])
        assert not report.failed, report.failed
    finally:
        await clients.aclose()
        await database.dispose()
        await redis.flushdb()  # the lifted limiter's permits too: the resync starts on an empty window
        await redis.aclose()
    limits = {"token_max": TOKEN_MAX, "key_max": KEY_MAX, "token_window": window, "key_window": window}
    (await bench.admin.put("/_emulator/limits", json=limits)).raise_for_status()
    await bench.admin.post("/_emulator/counters/reset")
    await asyncio.sleep(window)


async def measure(
    env: dict[str, str], worker: Worker, data: dict[str, Any], window: float, burst: int
) -> Figures:
    workspace = data["workspaces"][0]
    boards = len(workspace["boards"])
    bench = Bench(env["emulator"], Path(os.devnull), window)
    await register_webhooks(env, bench, window)
    settings = settings_of(env)
    database = Database(POSTGRES_URL)
    redis = connect(settings.redis_target(), timeout=5)
    queue = JobQueue(redis, QUEUE)
    scopes = Scopes(redis, queue, debounce=0)
    try:
        # 1. The full resync, memory sampled as the boards are done (progress: the emulator's calls).
        statements = await worker.counter("trellis_store_statements_total", job="reconcile_board")
        runs = await worker.counter("trellis_jobs_total", job="reconcile_board", outcome="ok")
        cpu, calls = worker.cpu_seconds(), await bench.calls()
        at_fifth: list[float] = []

        async def sample_memory() -> None:
            while not at_fifth:
                if await bench.calls() - calls >= boards / 5:
                    at_fifth.append(worker.memory_mb())
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample_memory())
        started = time.monotonic()
        request = await request_resync(database, scopes, queue, reason="bench")
        await bench.settled(scopes, request.scopes, QUEUE, redis)
        resync_s = time.monotonic() - started
        sampler.cancel()
        end_rss, resync_cpu = worker.memory_mb(), worker.cpu_seconds() - cpu
        resync_calls = await bench.calls() - calls
        statements = (
            await worker.counter("trellis_store_statements_total", job="reconcile_board") - statements
        )
        runs = await worker.counter("trellis_jobs_total", job="reconcile_board", outcome="ok") - runs

        # 2. A burst: one member's role changed on each of `burst` boards, in Trello.
        await asyncio.sleep(window)
        calls = await bench.calls()
        started = time.monotonic()
        for board in workspace["boards"][:burst]:
            member = next(p for p in data["members"] if p["username"] == board["members"][1]["username"])
            await bench.admin.put(
                f"/_emulator/boards/{board['id']}/members/{member['id']}", json={"type": "observer"}
            )
        watched = [Scope("board", b["id"]) for b in workspace["boards"][:burst]]
        await bench.settled(scopes, watched, QUEUE, redis)
        burst_s = time.monotonic() - started
        burst_calls = await bench.calls() - calls
        return Figures(
            boards=boards, members=len(data["members"]), calls_per_board=resync_calls / boards,
            resync_s=resync_s, bound_s=bench.lower_bound(resync_calls, window_full=False),
            statements_per_board=statements / max(runs, 1), cpu_ms_per_board=1000 * resync_cpu / boards,
            peak_rss_mb=worker.memory_mb("VmHWM"), rss_growth_mb=end_rss - (at_fifth or [end_rss])[0],
            burst_s=burst_s, burst_calls_per_event=burst_calls / burst, rejected=await bench.rejected(),
        )  # fmt: skip
    finally:
        await bench.admin.aclose()
        await database.dispose()
        await redis.aclose()


def run_size(boards: int, per_board: int, window: float, burst: int) -> Figures:
    data = fixture(boards, per_board)
    asyncio.run(seed_store(data))
    with (
        tempfile.TemporaryDirectory(prefix="trellis-large-") as tmp,
        redis_server() as redis_url,
        ExitStack() as stack,
    ):
        env, worker = services(Path(tmp), redis_url, window, data, stack)
        return asyncio.run(measure(env, worker, data, window, min(burst, boards)))


def plot(figures: list[Figures], path: Path) -> None:
    """The curve: a board's cost (calls, statements, CPU) and the resync's ratio to its bound, by size."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = [f.boards for f in figures]
    fig, (cost, time_axis) = pyplot.subplots(1, 2, figsize=(10, 3.6))
    cost.plot(
        sizes, [f.statements_per_board for f in figures], "o-", label="SQL statements a board reconcile"
    )
    cost.plot(sizes, [f.cpu_ms_per_board for f in figures], "s-", label="worker CPU ms a board")
    cost.plot(sizes, [f.calls_per_board for f in figures], "^-", label="Trello calls a board")
    cost.set_xlabel("boards in the workspace (2.5 members a board)")
    cost.set_ylim(bottom=0)
    cost.legend(fontsize=8)
    time_axis.plot(sizes, [f.resync_ratio for f in figures], "o-", label="resync time / limit's lower bound")
    time_axis.axhline(1.05, linestyle=":", color="grey", label="target 1.05")
    time_axis.plot(sizes, [f.rss_growth_mb for f in figures], "s-", label="worker RSS growth during it, MB")
    time_axis.set_xlabel("boards in the workspace")
    time_axis.set_ylim(bottom=0)
    time_axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    pyplot.close(fig)


def spread(values: list[float]) -> float:
    return max(values) / min(values) if min(values) > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 s windows; 100, 200 and 400 boards")
    parser.add_argument("--plot", type=Path, help="where the SVG goes [bench/large.svg; --quick: a temp dir]")
    args = parser.parse_args()
    # The README shows a full run's curve: a quick run must not draw over it.
    default = (
        Path(tempfile.gettempdir()) / "large-quick.svg"
        if args.quick
        else Path(__file__).with_name("large.svg")
    )
    args.plot = args.plot or default
    sizes, per_board, window, burst = (
        ((100, 200, 400), 10, 1.0, 20) if args.quick else ((200, 1000, 2000), 100, 10.0, 100)
    )
    figures: list[Figures] = []
    print(f"{'boards':>6} {'members':>7} {'calls/board':>11} {'resync s':>9} {'bound s':>8} {'ratio':>6} "
          f"{'stmts/board':>11} {'cpu ms/board':>12} {'peak MB':>8} {'growth MB':>9} {'burst s':>8} "
          f"{'calls/event':>11}")  # fmt: skip
    for boards in sizes:
        f = run_size(boards, per_board, window, burst)
        figures.append(f)
        print(f"{f.boards:6d} {f.members:7d} {f.calls_per_board:11.3f} {f.resync_s:9.1f} {f.bound_s:8.1f} "
              f"{f.resync_ratio:6.3f} {f.statements_per_board:11.2f} {f.cpu_ms_per_board:12.2f} "
              f"{f.peak_rss_mb:8.1f} {f.rss_growth_mb:9.1f} {f.burst_s:8.2f} {f.burst_calls_per_event:11.2f}",
              flush=True)  # fmt: skip
    plot(figures, args.plot)
    print(
        f"plot: {args.plot}; {window:.0f} s windows of {TOKEN_MAX} calls a token; {per_board} members a board"
    )
    print("figures: " + json.dumps([asdict(f) for f in figures]))
    last = figures[-1]
    print(
        f"result: large boards={last.boards} calls_per_board={last.calls_per_board:.3f} "
        f"resync_ratio={last.resync_ratio:.3f} statements_per_board={last.statements_per_board:.2f} "
        f"cpu_ms_per_board={last.cpu_ms_per_board:.2f} rss_growth_mb={last.rss_growth_mb:.1f} "
        f"peak_rss_mb={last.peak_rss_mb:.1f} burst_s={last.burst_s:.2f} "
        f"burst_calls_per_event={last.burst_calls_per_event:.2f} "
        f"statements_spread={spread([f.statements_per_board for f in figures]):.2f} "
        f"cpu_spread={spread([f.cpu_ms_per_board for f in figures]):.2f} "
        f"rejected={sum(f.rejected for f in figures)}"
    )


if __name__ == "__main__":
    main()
