"""The real processes: `trellis run` supervises a receiver and a worker that take a delivery end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import TEST_CALLBACK_URL, TEST_SECRET, delivery, encode, free_port, signed_headers


def wait_until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def service_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TRELLIS_REDIS_URL": redis_url,
        "TRELLIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}",
        "TRELLIS_TRELLO_SECRET": TEST_SECRET,
        "TRELLIS_CALLBACK_URL": TEST_CALLBACK_URL,
        "TRELLIS_QUEUE_NAME": "trellis:test:queue",
        "TRELLIS_PORT": str(free_port()),
        "TRELLIS_LOG_FORMAT": "json",
        # With credentials `trellis run` supervises the service (without, it plays the demo); nothing
        # listens at this address, so no call leaves the machine.
        "TRELLIS_TRELLO_API_KEY": "k",
        "TRELLIS_TRELLO_TOKEN": "t",
        "TRELLIS_TRELLO_BASE_URL": "http://127.0.0.1:9/1",
    }


@pytest.fixture
def service(service_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "trellis", "run"], env=service_env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{service_env['TRELLIS_PORT']}"
    try:
        wait_until(lambda: _ready(base))
        yield process
    finally:  # also when start-up failed: nothing may outlive the test
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        log.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def recorded_events(env: dict[str, str]) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "trellis", "events", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def test_delivery_to_the_receiver_ends_in_the_event_log(
    service: subprocess.Popen[bytes], service_env: dict[str, str]
) -> None:
    payload = delivery("removeMemberFromOrganization")
    body = encode(payload)
    url = f"http://127.0.0.1:{service_env['TRELLIS_PORT']}/webhooks/trello"

    response = httpx.post(url, content=body, headers=signed_headers(body))

    assert response.status_code == 200
    wait_until(lambda: [e["action_id"] for e in recorded_events(service_env)] == [payload["action"]["id"]])


def test_supervisor_restarts_a_receiver_that_dies(
    service: subprocess.Popen[bytes], service_env: dict[str, str]
) -> None:
    before = children(service.pid)
    assert len(before) == 2
    [receiver] = [pid for pid in before if "serve" in Path(f"/proc/{pid}/cmdline").read_text().split("\0")]
    os.kill(receiver, signal.SIGKILL)

    wait_until(lambda: len(children(service.pid)) == 2 and receiver not in children(service.pid))
    # The new receiver takes a moment to listen: deliveries are taken again once it says it is ready.
    base = f"http://127.0.0.1:{service_env['TRELLIS_PORT']}"
    wait_until(lambda: _ready(base))
    payload = delivery()
    body = encode(payload)
    response = httpx.post(f"{base}/webhooks/trello", content=body, headers=signed_headers(body))
    assert response.status_code == 200
    wait_until(lambda: any(e["action_id"] == payload["action"]["id"] for e in recorded_events(service_env)))


def test_sigterm_stops_the_supervisor_and_its_children(service: subprocess.Popen[bytes]) -> None:
    pids = children(service.pid)
    service.send_signal(signal.SIGTERM)
    assert service.wait(60) == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
