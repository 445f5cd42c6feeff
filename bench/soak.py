"""A soak: signed deliveries at a steady rate with bursts, for 10 minutes, against real processes.

A redis-server of its own, the emulator (Trello's own limits), a receiver and a worker, a SQLite store
set up as the emulator's sample workspace. The driver posts membership deliveries for the workspace's
boards at a steady rate, with a burst every minute, and records each answer's latency. At the end it
waits for the worker to drain the queue and counts the acknowledged deliveries that never reached the
event log (lost). Memory is each process's resident set after a warm-up minute (the baseline) and at
the end. `--quick`: 14 s, a burst every 5 s.

Ends with: result: soak delivered=D acked=A lost=L p99_ms=P rss_growth_mb=M
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
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
from bench.processes import free_port, python_module, redis_server, running
from jobs.connection import RedisTarget, connect
from membership.database import Database, migrate
from membership.directory import add_board, link_organization
from membership.models import EventLogEntry
from membership.rules import Actor

KEY, TOKEN, SECRET = "soak-key", "soak-token", "soak-secret"
QUEUE = "trellis:soak:queue"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def trello_id(n: int) -> str:
    return f"{int(time.time()):08x}{n:016x}"


def signed(body: bytes, callback: str) -> str:
    """Trello's X-Trello-Webhook over the body and the callback URL."""
    return base64.b64encode(
        hmac.new(SECRET.encode(), body + callback.encode(), hashlib.sha1).digest()
    ).decode()


async def link_store(store: str, state: dict[str, Any]) -> None:
    await migrate(store)
    database = Database(store)
    workspace = state["workspaces"][0]
    async with database.transaction() as session:
        organization = await link_organization(
            session, workspace["id"], name="Acme", owner_email="owner@acme.example", authority="trello",
            actor=Actor.system("soak"),
        )  # fmt: skip
        for board in state["boards"]:
            await add_board(session, organization.id, name=board["name"], trello_board_id=board["id"])
    await database.dispose()


class Driver:
    def __init__(self, callback: str, state: dict[str, Any]) -> None:
        self.callback = callback
        self.boards = [b["id"] for b in state["boards"]]
        self.people = [m["id"] for m in state["members"]]
        self.latencies: list[float] = []
        self.burst_latencies: list[float] = []
        self.acked: set[str] = set()
        self.delivered = 0
        self.refused = 0
        self.n = 0

    async def deliver(self, client: httpx.AsyncClient, *, in_burst: bool = False) -> None:
        self.n += 1
        action_id = trello_id(self.n)
        board, person = self.boards[self.n % len(self.boards)], self.people[self.n % len(self.people)]
        body = json.dumps({
            "action": {"id": action_id, "idMemberCreator": self.people[0], "type": "addMemberToBoard",
                       "date": "2026-11-23T00:00:00.000Z",
                       "data": {"board": {"id": board}, "idMemberAdded": person, "memberType": "normal"}},
            "model": {"id": board},
        }).encode()  # fmt: skip
        sent = [0.0]

        async def trace(event: str, info: dict[str, Any]) -> None:
            # From the moment the request goes out on its connection: the receiver's time to answer, not
            # the driver's wait for one of its own connections.
            if event == "http11.send_request_headers.started":
                sent[0] = time.perf_counter()

        self.delivered += 1
        headers = {"x-trello-webhook": signed(body, self.callback)}
        try:
            answer = await client.post(
                self.callback, content=body, headers=headers, extensions={"trace": trace}
            )
        except httpx.HTTPError:
            self.refused += 1
            return
        (self.burst_latencies if in_burst else self.latencies).append(time.perf_counter() - sent[0])
        if answer.status_code == 200:
            self.acked.add(action_id)
        else:
            self.refused += 1

    async def run(self, seconds: float, rate: float, burst: int, burst_every: float) -> None:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=30) as client:
            started = time.monotonic()
            next_burst = started + burst_every
            pending: set[asyncio.Task[None]] = set()
            tick = 1 / rate
            while time.monotonic() - started < seconds:
                task = asyncio.create_task(self.deliver(client))
                pending.add(task)
                task.add_done_callback(pending.discard)
                if time.monotonic() >= next_burst:
                    pending.update(
                        asyncio.create_task(self.deliver(client, in_burst=True)) for _ in range(burst)
                    )
                    next_burst += burst_every
                await asyncio.sleep(tick)
            await asyncio.gather(*pending)


async def lost(store: str, acked: set[str], redis_url: str, within: float) -> int:
    """Acknowledged deliveries not in the event log once the queue has drained."""
    redis = connect(RedisTarget(redis_url), timeout=5)
    database = Database(store)
    deadline = time.monotonic() + within
    missing = len(acked)
    try:
        while time.monotonic() < deadline:
            async with database.transaction() as session:
                recorded = set((await session.scalars(select(EventLogEntry.action_id))).all())
            missing = len(acked - recorded)
            if not missing and not await redis.zcard(QUEUE):
                break
            await asyncio.sleep(0.5)
    finally:
        await database.dispose()
        await redis.aclose()
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="14 s, a burst every 5 s")
    quick = parser.parse_args().quick
    seconds, burst_every, warmup = (14.0, 5.0, 4.0) if quick else (600.0, 60.0, 60.0)
    rate, burst = 50.0, 300
    with (
        tempfile.TemporaryDirectory(prefix="trellis-soak-") as tmp,
        redis_server() as redis_url,
        ExitStack() as stack,
    ):
        emulator_port, receiver_port = free_port(), free_port()
        emulator, callback = (
            f"http://127.0.0.1:{emulator_port}",
            f"http://127.0.0.1:{receiver_port}/webhooks/trello",
        )
        store = f"sqlite+aiosqlite:///{tmp}/store.db"
        env = {
            "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": store, "TRELLIS_QUEUE_NAME": QUEUE,
            "TRELLIS_TRELLO_BASE_URL": emulator + "/1", "TRELLIS_TRELLO_API_KEY": KEY,
            "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET, "TRELLIS_CALLBACK_URL": callback,
            "TRELLIS_PORT": str(receiver_port), "TRELLIS_WORKER_METRICS_PORT": str(free_port()),
            "TRELLIS_LOG_LEVEL": "warning",
        }  # fmt: skip
        argv = python_module(
            "trellis",
            "emulator",
            "--port",
            str(emulator_port),
            "--key",
            KEY,
            "--token",
            TOKEN,
            "--secret",
            SECRET,
        )
        processes = {"emulator": stack.enter_context(running(argv, emulator_port))}
        state = httpx.get(emulator + "/_emulator/state").json()
        asyncio.run(link_store(store, state))
        processes["receiver"] = stack.enter_context(
            running(python_module("trellis", "serve"), receiver_port, env)
        )
        worker = subprocess.Popen(python_module("trellis", "worker"), env={**os.environ, **env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        stack.callback(worker.wait, 15)
        stack.callback(worker.terminate)
        processes["worker"] = worker
        driver = Driver(callback, state)

        async def soak() -> dict[str, float]:
            warm = asyncio.create_task(driver.run(seconds, rate, burst, burst_every))
            await asyncio.sleep(warmup)
            baseline = {name: rss_mb(p.pid) for name, p in processes.items()}
            await warm
            return baseline

        baseline = asyncio.run(soak())
        missing = asyncio.run(lost(store, driver.acked, redis_url, within=120))
        end = {name: rss_mb(p.pid) for name, p in processes.items()}
        counters = httpx.get(emulator + "/_emulator/counters").json()
        worker_metrics = httpx.get(f"http://127.0.0.1:{env['TRELLIS_WORKER_METRICS_PORT']}/metrics").text
    jobs = sum(
        float(line.rsplit(" ", 1)[1])
        for line in worker_metrics.splitlines()
        if line.startswith("trellis_jobs_total{")
    )
    calls = sum(v for k, v in counters["requests"].items() if k.startswith("token:"))
    rejected = sum(v for k, v in counters["rejected"].items() if k.startswith("token:"))
    everything = driver.latencies + driver.burst_latencies
    p50, p99, p999 = (percentile(everything, p) * 1000 for p in (50, 99, 99.9))
    steady = [percentile(driver.latencies, p) * 1000 for p in (50, 99)]
    bursts = [percentile(driver.burst_latencies, p) * 1000 for p in (50, 99)]
    growth = max(end[name] - baseline[name] for name in ("receiver", "worker"))
    print(f"{seconds:.0f} s at {rate:.0f}/s with a burst of {burst} every {burst_every:.0f} s")
    acked = len(driver.acked)
    print(f"deliveries {driver.delivered}, acknowledged {acked}, refused {driver.refused}, lost {missing}")
    print(f"ack latency p50 {p50:.1f} ms, p99 {p99:.1f} ms, p99.9 {p999:.1f} ms")
    print(f"  steady deliveries: p50 {steady[0]:.1f} ms, p99 {steady[1]:.1f} ms")
    print(f"  burst deliveries (300 at once): p50 {bursts[0]:.1f} ms, p99 {bursts[1]:.1f} ms")
    print(f"jobs {jobs:.0f}, Trello API calls {calls}, 429s {rejected}")
    for name in processes:
        print(f"memory {name:8} {baseline[name]:.1f} MB after warm-up -> {end[name]:.1f} MB at the end")
    print(
        f"result: soak delivered={driver.delivered} acked={acked} lost={missing} p99_ms={p99:.1f} "
        f"rss_growth_mb={growth:.1f} p999_ms={p999:.1f} rejected={rejected} steady_p99_ms={steady[1]:.1f}"
    )


if __name__ == "__main__":
    main()
