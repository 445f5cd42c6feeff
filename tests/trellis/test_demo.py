"""`trellis demo` and `trellis run` without credentials: the story plays, and nothing is left behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        path = Path(f"/proc/{stack.pop()}/task")
        for task in path.iterdir() if path.exists() else []:
            for child in (task / "children").read_text().split():
                found.add(int(child))
                stack.append(int(child))
    return found


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def clean_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRELLIS_")}
    return {**env, "TRELLIS_REDIS_URL": redis_url, "COLUMNS": "120"}


def test_demo_ends_with_the_removed_member_on_no_board(redis_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trellis", "demo", "--exit"],
        env=clean_env(redis_url), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Trello invited her by email, Trellis" in result.stdout
    assert "she is a workspace admin in Trello" in result.stdout
    assert "Trello removed her from the workspace only: still on Hiring, Roadmap, Support" in result.stdout
    assert "Annie Easley is on 0 boards" in result.stdout
    assert "Skip Gus Guest: not a member in the store (a guest" in result.stdout
    assert "Gus Guest listed under guests (workspace_member: false)" in result.stdout
    assert "0 refused with 429" in result.stdout


@contextmanager
def demo_running(redis_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`trellis run` without credentials, once its story is told; stopped whatever happens."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "trellis", "run"], env=clean_env(redis_url), stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops them all" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_without_credentials_plays_the_demo_and_stopping_leaves_no_process(
    redis_url: str, tmp_path: Path, stop: signal.Signals
) -> None:
    log = tmp_path / "run.log"
    with demo_running(redis_url, log) as process:
        children = descendants(process.pid)
        assert len(children) >= 3  # emulator, receiver, worker
        process.send_signal(stop)
        assert process.wait(60) == 0
    assert "playing the demo" in log.read_text()
    time.sleep(0.5)
    assert not [pid for pid in children if alive(pid)]


def test_the_demo_prints_a_console_and_a_token_that_signs_in_to_its_story(
    redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "run.log"
    with demo_running(redis_url, log):
        found = re.search(r"The web console: (\S+) \(sign in with (\S+)\)", log.read_text())
        assert found is not None, log.read_text()
        console, token = found.groups()
        with httpx.Client(base_url=console, follow_redirects=False) as browser:
            form = browser.get("sign-in")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            signed_in = browser.post("sign-in", data={"csrf": csrf.group(1), "token": token})
            audit = browser.get("audit", params={"person": "annie.easley@acme.example"})

    assert signed_in.status_code == 303
    assert audit.status_code == 200
    told = re.findall(r"<td>([a-z ]+)</td>", audit.text)  # the story as the audit log tells it, newest first
    story = ["invite created", "invite accepted", "role changed", "member offboarded"]
    assert [action for action in reversed(told) if action in story] == story
