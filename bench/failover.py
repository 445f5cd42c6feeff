"""A Redis failover under a steady stream of deliveries: how long the receiver refuses, and what it loses.

Starts a primary, a replica and three Sentinels (`redis-server`), a receiver and two workers with
TRELLIS_REDIS_MIN_REPLICAS=1, and sends signed deliveries at a steady rate, each a new action. A third
of the way in, the primary is killed with SIGKILL; the Sentinels promote the replica, and the dead
server is started again as a replica of the new primary (as Kubernetes or systemd would restart it).
A refused delivery (503) is sent again a second later, as Trello does. At the end every acknowledged
action must be in the store's event log exactly once.

    python bench/failover.py [--quick] [--fault kill|freeze] [--rate 100] [--seconds 60] [--logs DIR]

`--fault freeze` stops the primary (SIGSTOP) past the Sentinels' patience instead, and lets it go on.
Prints the time from the kill to the first delivery sent and taken after it (recovery), against the
baseline of the Sentinels' own promotion time in the same run, the old primary's return as a replica,
and the deliveries refused meanwhile; then: result: failover lost=N recovery_s=S refused=R ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select

from bench.processes import free_port, python_module, running
from bench.redis_ha import DOWN_AFTER_MS, ReplicatedRedis
from membership.database import Database
from membership.models import EventLogEntry

SECRET = "bench-failover-secret"  # noqa: S105 (signs the benchmark's own deliveries)
CALLBACK = "https://trellis.bench/webhooks/trello"
BOARD = "5f0b0a4d0b0a4d0b0a4d0b0a"


def signed(action_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "action": {
                "id": action_id,
                "type": "addMemberToBoard",
                "date": "2026-12-01T10:00:00.000Z",
                "idMemberCreator": "5f0c0ffee0c0ffee0c0ffee0",
                "data": {"board": {"id": BOARD, "name": "Roadmap"}, "idMemberAdded": action_id[-24:]},
                "member": {"id": action_id[-24:], "username": "someone"},
            },
            "model": {"id": BOARD, "name": "Roadmap"},
        }
    ).encode()
    digest = hmac.new(SECRET.encode(), body + CALLBACK.encode(), hashlib.sha1).digest()
    return body, {"content-type": "application/json", "x-trello-webhook": base64.b64encode(digest).decode()}


@dataclass
class Sender:
    """Sends each delivery until it is taken, a second between tries, as Trello retries."""

    url: str
    killed_at: float | None = None
    first_ack_after_kill: float | None = None
    acked: set[str] = field(default_factory=set)
    refused: int = 0  # answers other than 2xx, including no answer
    refused_actions: set[str] = field(default_factory=set)

    async def deliver(self, client: httpx.AsyncClient, action_id: str) -> None:
        body, headers = signed(action_id)
        while True:
            sent_at = time.monotonic()
            try:
                status = (await client.post(self.url, content=body, headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            if 400 <= status < 500:
                raise SystemExit(f"bench: the receiver refused a delivery for good ({status})")
            if 200 <= status < 300:
                self.acked.add(action_id)
                # Recovery: the first delivery both sent and taken after the kill.
                after_kill = self.killed_at is not None and sent_at > self.killed_at
                if after_kill and self.first_ack_after_kill is None:
                    self.first_ack_after_kill = time.monotonic()
                return
            self.refused += 1
            self.refused_actions.add(action_id)
            await asyncio.sleep(1.0)

    async def run(self, rate: float, seconds: float) -> None:
        prefix = f"{int(time.time()):08x}"
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as client:
            tasks = []
            start = time.monotonic()
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                tasks.append(asyncio.create_task(self.deliver(client, f"{prefix}{i:016x}")))
            await asyncio.gather(*tasks)


async def recorded(store: str) -> set[str]:
    database = Database(store)
    async with database.transaction() as session:
        ids = set((await session.scalars(select(EventLogEntry.action_id))).all())
    await database.dispose()
    return ids


async def caught_up(store: str, acked: set[str], within: float) -> set[str]:
    """The acknowledged actions not in the event log once the workers are done (or time is up)."""
    deadline = time.monotonic() + within
    missing = acked
    while time.monotonic() < deadline:
        missing = acked - await recorded(store)
        if not missing:
            break
        await asyncio.sleep(0.5)
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="15 s of deliveries (under a minute in all)")
    parser.add_argument("--rate", type=float, default=100.0, help="deliveries a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--fault", choices=("kill", "freeze"), default="kill",
        help="kill: SIGKILL the primary, restart it as a replica; freeze: SIGSTOP it past the Sentinels' "
        "patience, then let it go on (it wakes up a primary no more)",
    )  # fmt: skip
    parser.add_argument("--logs", type=Path, help="keep the processes' logs and the store here")
    args = parser.parse_args()
    seconds = 15.0 if args.quick else args.seconds
    # Stopped from outside (a timeout), still stop what it started: an orphaned worker would go on
    # taking jobs from whichever Redis later gets its Sentinels' ports.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: stopped"))

    with tempfile.TemporaryDirectory(prefix="trellis-failover-") as scratch, ExitStack() as stack:
        tmp = args.logs or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        redis = ReplicatedRedis(tmp)
        redis.start()
        stack.callback(redis.stop)
        port, store = free_port(), f"sqlite+aiosqlite:///{tmp}/store.db"
        env = {
            **redis.env(), "TRELLIS_REDIS_MIN_REPLICAS": "1", "TRELLIS_DATABASE_URL": store,
            "TRELLIS_TRELLO_SECRET": SECRET, "TRELLIS_CALLBACK_URL": CALLBACK, "TRELLIS_PORT": str(port),
            "TRELLIS_WORKER_METRICS_PORT": "0", "TRELLIS_LOG_LEVEL": "warning", "TRELLIS_LOG_FORMAT": "json",
        }  # fmt: skip
        receiver_argv = python_module("trellis", "serve")
        receiver = stack.enter_context(running(receiver_argv, port, env, log=tmp / "receiver.log"))
        workers = []
        for n in range(2):
            with (tmp / f"worker-{n}.log").open("ab") as log:
                worker = subprocess.Popen(python_module("trellis", "worker"), env={**os.environ, **env},
                                          stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            stack.callback(worker.wait, 20)
            stack.callback(worker.terminate)
            workers.append(worker)
        sender = Sender(f"http://127.0.0.1:{port}/webhooks/trello")
        timeline: dict[str, float] = {}

        def fail_over() -> None:
            time.sleep(seconds / 3)
            killed_at = time.monotonic()
            sender.killed_at = killed_at
            if args.fault == "freeze":
                frozen = redis.freeze_primary(DOWN_AFTER_MS / 1000 * 4)
                redis.wait_for_failover(frozen)
                timeline["promoted_s"] = time.monotonic() - killed_at
                redis.wait_for_replica()  # the frozen primary, demoted, follows the new one
            else:
                killed = redis.kill_primary()
                redis.wait_for_failover(killed)
                timeline["promoted_s"] = time.monotonic() - killed_at
                redis.bring_back(killed)
            timeline["replica_back_s"] = time.monotonic() - killed_at

        async def run() -> None:
            await asyncio.gather(sender.run(args.rate, seconds), asyncio.to_thread(fail_over))

        asyncio.run(run())
        missing = asyncio.run(caught_up(store, sender.acked, within=60))
        processes = {"receiver": receiver, **{f"worker-{n}": worker for n, worker in enumerate(workers)}}
        ended = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
        for name, code in ended.items():
            print(f"{name} ended with {code}; the end of its log:")
            print("\n".join((tmp / f"{name}.log").read_text(errors="replace").splitlines()[-15:]))
        alive = not ended
        # A loaded machine can make the Sentinels fail over a second time (a busy new primary missing
        # its pings): counted, as the run must survive that too.
        failovers = (tmp / f"sentinel-{redis.sentinel_ports[0]}.log").read_text().count("+switch-master")

    assert sender.killed_at is not None
    recovery = (sender.first_ack_after_kill or float("nan")) - sender.killed_at
    print(f"{args.rate:.0f} deliveries/s for {seconds:.0f} s; primary killed at {seconds / 3:.0f} s")
    print(f"sentinels promoted the replica after {timeline['promoted_s']:.1f} s; the old primary followed it "
          f"after {timeline['replica_back_s']:.1f} s")  # fmt: skip
    print(f"first 2xx after the kill: {recovery:.1f} s; refused answers meanwhile: {sender.refused} "
          f"({len(sender.refused_actions)} deliveries, each taken later)")  # fmt: skip
    print(f"acknowledged {len(sender.acked)}, not in the event log {len(missing)}; processes alive: {alive}")
    print(
        f"result: failover lost={len(missing)} recovery_s={recovery:.2f} refused={sender.refused} "
        f"promoted_s={timeline['promoted_s']:.2f} replica_back_s={timeline['replica_back_s']:.2f} "
        f"acked={len(sender.acked)} alive={int(alive)} failovers={failovers}"
    )


if __name__ == "__main__":
    main()
