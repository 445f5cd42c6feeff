"""Fault runs: the real processes (emulator, receivers, workers) on a Redis of the run's own, which a
test may stop and start, and the store; helpers to wait until the store and Trello agree.

`TRELLIS_TEST_LONG=1` runs the longer versions; CI runs the short ones.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.redis_ha import ReplicatedRedis
from tests.stack import (
    KEY,
    QUEUE,
    SECRET,
    TOKEN,
    store_and_trello_differences,
    store_like_trello,
    wait_for,
)
from tests.support import RedisServer, free_port

LONG = bool(os.environ.get("TRELLIS_TEST_LONG"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every fault run is `slow`: `pytest -m "not slow"` leaves them out of a quick local run."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


class Stack:
    """The emulator, a receiver and workers as processes, all on one private Redis and one store."""

    def __init__(self, tmp: Path, redis: RedisServer | ReplicatedRedis, store_url: str) -> None:
        self.tmp, self.redis, self.store_url = tmp, redis, store_url
        self.emulator_port, self.receiver_port = free_port(), free_port()
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        self.callback = f"http://127.0.0.1:{self.receiver_port}/webhooks/trello"
        self.env = {
            **os.environ, **redis.env(), "TRELLIS_DATABASE_URL": store_url,
            "TRELLIS_QUEUE_NAME": QUEUE, "TRELLIS_TRELLO_BASE_URL": self.emulator + "/1",
            "TRELLIS_TRELLO_API_KEY": KEY, "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET,
            "TRELLIS_CALLBACK_URL": self.callback, "TRELLIS_PORT": str(self.receiver_port),
            "TRELLIS_WORKER_METRICS_PORT": "0", "TRELLIS_RECONCILE_DEBOUNCE_SECONDS": "0.3",
            "TRELLIS_JOB_RETRY_BASE_SECONDS": "0.2", "TRELLIS_JOB_RETRY_CAP_SECONDS": "2",
            "TRELLIS_LOG_FORMAT": "json",
        }  # fmt: skip
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "trellis", *argv], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)  # fmt: skip
        self.processes.append(process)
        return process

    def up(self, *, workers: int = 1, retry_delay: float = 0.5) -> None:
        argv = ["emulator", "--port", str(self.emulator_port), "--key", KEY, "--token", TOKEN,
                "--secret", SECRET, "--retry-delay", str(retry_delay)]  # fmt: skip
        emulator = self.start("emulator", *argv)
        wait_for(self.emulator + "/_emulator/state", emulator)
        self.receiver = self.start("receiver", "serve")
        wait_for(f"http://127.0.0.1:{self.receiver_port}/healthz", self.receiver)
        for _ in range(workers):
            self.start_worker()

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self.start(f"worker-{len(self.workers)}", "worker")
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        self.workers.remove(worker)

    def down(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    async def state(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            state: dict[str, Any] = (await client.get(self.emulator + "/_emulator/state")).json()
        return state

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.emulator, timeout=60) as client:
            answer = await client.request(method, path, **kwargs)
            return answer.json() if answer.content else None

    async def change_by_hand(self, state: dict[str, Any], i: int) -> None:
        """The i-th of a run of changes someone makes in Trello: a person put on a board, or made its
        admin. Additions and promotions only: two demotions at once would be held by the mass-change
        guard."""
        boards = [b["id"] for b in state["boards"]]
        people = [m["id"] for m in state["members"] if m["username"] not in ("trellis_admin", "ada.lovelace")]
        role = ("normal", "admin")[(i // len(people)) % 2]
        board, person = boards[i % len(boards)], people[i % len(people)]
        await self.admin("PUT", f"/_emulator/boards/{board}/members/{person}", json={"type": role})

    async def linked_and_watched(self) -> dict[str, Any]:
        """The store as Trello is, and a webhook on the workspace and each board."""
        state = await self.state()
        await store_like_trello(self.store_url, state)
        for model in [state["workspaces"][0]["id"], *(b["id"] for b in state["boards"])]:
            await self.admin("POST", "/1/webhooks", params={"key": KEY, "token": TOKEN},
                             json={"callbackURL": self.callback, "idModel": model})  # fmt: skip
        return state

    async def converged(self, within: float = 60.0) -> list[str]:
        """Wait until the store and Trello agree; the differences left when time ran out."""
        await self.admin("POST", "/_emulator/deliveries/settle", params={"timeout": within})
        differences: list[str] = []
        for _ in range(int(within / 0.25)):
            differences = await store_and_trello_differences(self.store_url, await self.state())
            if not differences:
                break
            await asyncio.sleep(0.25)
        return differences


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Stack]:
    # Durable, as production Redis must be (AOF): the queue outlives a restart.
    redis = RedisServer(data_dir=tmp_path)
    redis.start()
    running = Stack(tmp_path, redis, sqlite_url)
    try:
        yield running
    finally:
        running.down()
        redis.stop()
