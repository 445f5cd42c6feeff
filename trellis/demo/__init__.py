"""`trellis demo`: the whole loop against the emulator, no credentials needed.

Starts the emulator, a receiver and a worker as child processes on free ports, adopts the emulator's
sample workspace into a fresh store, registers webhooks, and plays a short story, showing what happens:
someone is invited through the membership API and accepts (Trello invites them, Trellis links them), is
promoted, is added to two more boards by hand in Trello (the store follows), then is removed from the
workspace while still on three boards (Trellis takes them off every one), and ends with that person's
story as the audit log tells it. The processes are here; the story is `trellis.demo.story`. Ctrl-C stops
everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from membership.database import migrate
from trellis.demo.story import DemoFailed, tell
from trellis.settings import Settings
from trellis.supervisor import free_port, start_local_redis, stop_process

KEY, TOKEN, SECRET = "demo-key", "demo-token", "demo-secret"


@contextmanager
def child(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop_process(process)


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"the {what} stopped at start (exit {process.returncode})")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise DemoFailed(f"the {what} did not answer at {url}")


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, exit_after: bool, console: Console | None = None) -> int:
    console = console or Console()
    # SIGTERM (systemd, docker stop, kill) must stop the children like Ctrl-C does: Python's default
    # would end this process at once and leave them running. SIGINT gets the same handler, set here
    # because a process started in the background of a shell inherits SIGINT ignored, and would miss
    # the Ctrl-C its children obey.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    local_redis = start_local_redis(settings.redis_url)
    try:
        with tempfile.TemporaryDirectory(prefix="trellis-demo-") as tmp:
            return _run(settings, Path(tmp), exit_after, console)
    except DemoFailed as failure:
        console.print(f"[red]demo failed:[/red] {failure}")
        return 1
    except KeyboardInterrupt:
        console.print("\nstopped")
        return 0
    finally:
        if local_redis is not None:
            local_redis.terminate()
            local_redis.wait(10)


def _run(settings: Settings, tmp: Path, exit_after: bool, console: Console) -> int:
    emulator_port, receiver_port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{emulator_port}"
    receiver = f"http://127.0.0.1:{receiver_port}"
    store = f"sqlite+aiosqlite:///{tmp / 'demo.db'}"
    env = {
        **os.environ,
        "TRELLIS_REDIS_URL": settings.redis_url,
        "TRELLIS_DATABASE_URL": store,
        # A queue of the run's own: two demos on one Redis must not take each other's jobs.
        "TRELLIS_QUEUE_NAME": f"trellis:demo:{uuid.uuid4().hex[:12]}",
        "TRELLIS_TRELLO_BASE_URL": emulator + "/1",
        "TRELLIS_TRELLO_API_KEY": KEY,
        "TRELLIS_TRELLO_TOKEN": TOKEN,
        "TRELLIS_TRELLO_SECRET": SECRET,
        "TRELLIS_CALLBACK_URL": receiver + "/webhooks/trello",
        "TRELLIS_PORT": str(receiver_port),
        "TRELLIS_RECONCILE_DEBOUNCE_SECONDS": "0.3",
        "TRELLIS_GUARD_WAVE_SETTLE_SECONDS": "1",  # one person leaves in the story: no wave to wait for
        "TRELLIS_LOG_FORMAT": "json",
    }
    trellis = [sys.executable, "-m", "trellis"]
    emulator_argv = [*trellis, "emulator", "--port", str(emulator_port), "--key", KEY, "--token", TOKEN,
                     "--secret", SECRET, "--retry-delay", "0.5"]  # fmt: skip
    console.rule("[bold]Trellis demo[/bold]: the whole loop against the emulator")
    asyncio.run(migrate(store))
    with (
        child(emulator_argv, env, tmp / "emulator.log") as emulator_process,
        child([*trellis, "serve"], env, tmp / "receiver.log") as receiver_process,
        child([*trellis, "worker"], env, tmp / "worker.log") as worker_process,
    ):
        wait_for(emulator + "/_emulator/state", emulator_process, "emulator")
        wait_for(receiver + "/healthz", receiver_process, "receiver")
        console.print(
            f"emulator {emulator}, receiver {receiver}, worker pid {worker_process.pid}, store {store}"
        )
        story_settings = settings.model_copy(update=_overrides(env))
        token = asyncio.run(tell(story_settings, emulator, receiver, store, console))
        if exit_after:
            return 0
        # Unwrapped, so that the URL and the token can be copied whole.
        console.print(f"\nThe web console: {receiver}/console/ (sign in with {token})", soft_wrap=True)
        console.print("The services keep running for you to look around; Ctrl-C stops them all.")
        while all(p.poll() is None for p in (emulator_process, receiver_process, worker_process)):
            time.sleep(0.5)
        raise DemoFailed("a service stopped; its log was in " + str(tmp))


def _overrides(env: dict[str, str]) -> dict[str, Any]:
    from pydantic import SecretStr

    return {
        "trello_base_url": env["TRELLIS_TRELLO_BASE_URL"],
        "trello_api_key": SecretStr(KEY),
        "trello_token": SecretStr(TOKEN),
        "database_url": env["TRELLIS_DATABASE_URL"],
    }
