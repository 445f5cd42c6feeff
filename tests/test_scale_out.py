"""Past one machine, on one: 2 receivers and 2 workers share Redis and PostgreSQL, against the emulator.

Events spread over both receivers (half the webhooks call each: behind a load balancer they would share
one URL), jobs over both workers; the shared limiter holds (no 429), each event is recorded once, and
the store ends as Trello is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import empty_postgres
from tests.stack import (
    KEY,
    QUEUE,
    SECRET,
    TOKEN,
    emulator_state,
    events_recorded_once_caught_up,
    store_and_trello_differences,
    wait_for,
)
from tests.support import free_port


@pytest.fixture
async def cluster(redis_url: str, postgres_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    emulator_port = free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    receivers = [free_port(), free_port()]
    common = {
        **os.environ, "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": postgres_url,
        "TRELLIS_QUEUE_NAME": QUEUE, "TRELLIS_TRELLO_BASE_URL": emulator + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY, "TRELLIS_TRELLO_TOKEN": TOKEN, "TRELLIS_TRELLO_SECRET": SECRET,
        "TRELLIS_WORKER_METRICS_PORT": "0",
        "TRELLIS_RECONCILE_DEBOUNCE_SECONDS": "0.3", "TRELLIS_LOG_FORMAT": "json",
        "TRELLIS_GUARD_WAVE_SETTLE_SECONDS": "0.2",
    }  # fmt: skip
    callbacks = [f"http://127.0.0.1:{port}/webhooks/trello" for port in receivers]
    logs: list[Path] = []
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "trellis", *argv], env=env, stdout=out,
                                       stderr=subprocess.STDOUT)  # fmt: skip
        processes.append(process)
        return process

    try:
        emulator_process = start("emulator", ["emulator", "--port", str(emulator_port), "--key", KEY,
                                              "--token", TOKEN, "--secret", SECRET, "--retry-delay", "0.2"],
                                 common)  # fmt: skip
        wait_for(emulator + "/_emulator/state", emulator_process)
        for i, (port, callback) in enumerate(zip(receivers, callbacks, strict=True)):
            env = {**common, "TRELLIS_PORT": str(port), "TRELLIS_CALLBACK_URL": callback}
            wait_for(f"http://127.0.0.1:{port}/healthz", start(f"receiver-{i}", ["serve"], env))
        workers = [
            start(f"worker-{i}", ["worker"], {**common, "TRELLIS_CALLBACK_URL": callbacks[0]})
            for i in range(2)
        ]
        yield {
            "emulator": emulator, "callbacks": callbacks, "receivers": receivers,
            "worker_logs": [tmp_path / "worker-0.log", tmp_path / "worker-1.log"], "workers": workers,
        }  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        await empty_postgres(postgres_url)


def jobs_done(log: Path) -> int:
    """Jobs the worker finished, from arq's "← job" lines in its JSON log."""
    done = 0
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            done += "←" in str(json.loads(line).get("event", ""))
    return done


async def queued_by(receiver_port: int) -> float:
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{receiver_port}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("trellis_webhooks_total{") and 'outcome="queued"' in line
    )


@pytest.mark.timeout(180)
async def test_two_receivers_and_two_workers_share_the_work_and_end_where_trello_is(
    cluster: dict[str, Any], postgres_url: str
) -> None:
    from tests.stack import store_like_trello

    state = await emulator_state({"emulator": cluster["emulator"]})
    await store_like_trello(postgres_url, state)
    workspace = state["workspaces"][0]["id"]
    boards = [b["id"] for b in state["boards"]]
    people = [m["id"] for m in state["members"] if m["username"] not in ("trellis_admin", "ada.lovelace")]
    async with httpx.AsyncClient(base_url=cluster["emulator"]) as admin:
        models = [workspace, *boards]
        for i, model in enumerate(models):  # half the webhooks call each receiver
            watch = {"callbackURL": cluster["callbacks"][i % 2], "idModel": model}
            hook = await admin.post("/1/webhooks", params={"key": KEY, "token": TOKEN}, json=watch)
            assert hook.status_code == 200, hook.text
        # People put on boards by hand (below the mass-change guard: nobody loses access but the one
        # offboarded), and made admins of others.
        for round_ in range(4):
            for i, person in enumerate(people):
                board = boards[(i + round_) % len(boards)]
                role = ("normal", "admin")[round_ % 2]
                await admin.put(f"/_emulator/boards/{board}/members/{person}", json={"type": role})
        await admin.delete(f"/_emulator/organizations/{workspace}/members/{people[0]}")  # an offboarding

        differences: list[str] = ["not looked yet"]
        for _ in range(120):  # the workers catch up
            await asyncio.sleep(0.5)
            differences = await store_and_trello_differences(postgres_url, await emulator_state(cluster))
            if not differences:
                break
        assert differences == []
        # What the offboarding did in Trello is delivered too: every acknowledged delivery, once each.
        assert (await admin.post("/_emulator/deliveries/settle")).json()["settled"]
        attempts = (await admin.get("/_emulator/deliveries")).json()
        delivered = {attempt["action_id"] for attempt in attempts if attempt["status"] == 200}
        rejected = (await admin.get("/_emulator/counters")).json()["rejected"]

    recorded = await events_recorded_once_caught_up(postgres_url, len(delivered), within=10)
    assert recorded == len(delivered)
    assert all([await queued_by(port) > 0 for port in cluster["receivers"]])
    assert all(jobs_done(log) > 0 for log in cluster["worker_logs"])
    assert rejected == {}  # the shared limiter held: no 429 at all
