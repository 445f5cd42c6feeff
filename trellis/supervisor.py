"""`trellis run`: a receiver and a worker under one supervisor, for a small install.

Children are separate processes (`trellis serve`, `trellis worker`), so a crash in one does not take the
other down: a child that dies is started again after a growing pause. SIGINT and SIGTERM are passed on,
and the supervisor waits for both children to finish what they are doing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import structlog

log = structlog.get_logger("trellis.supervisor")

RESTART_PAUSE_MAX = 30.0
# A child that ran this long before dying is considered to have been healthy: its pause starts over.
HEALTHY_RUN_SECONDS = 60.0
STOP_GRACE_SECONDS = 75.0


class RedisUnavailable(Exception):
    """Redis cannot be reached and cannot be started here; the message says what to do."""


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause: float = 0.5
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv)
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("child started", child=self.name, pid=self.process.pid)


class Supervisor:
    def __init__(self, children: Sequence[Child]) -> None:
        self.children = list(children)
        self.stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            child.start()
        while not self.stopping:
            self._watch()
            time.sleep(0.2)
        return self._stop_all()

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    child.start()
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if now - child.started_at > HEALTHY_RUN_SECONDS:
                child.pause = 0.5
            log.error(
                "child exited, restarting",
                child=child.name,
                code=code,
                pause=child.pause,
                restarts=child.restarts,
            )
            child.restart_at = now + child.pause
            child.pause = min(child.pause * 2, RESTART_PAUSE_MAX)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _stop_all(self) -> int:
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.info("stopped")
        return 0


def trellis_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "trellis", *args]


# Ports already handed out by this process: the kernel may offer a port again as soon as its probe
# socket closes, before the child it was meant for has bound it, and two children on one port fail late.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port nothing listens on right now and that this process has not handed out before, for a
    child process to take."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    # "-NOAUTH" still means a Redis is there; the client will authenticate from the URL.
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_local_redis(url: str, *, data_dir: Path | None = None) -> subprocess.Popen[bytes] | None:
    """Make sure a Redis answers at `url`; start `redis-server` from PATH for a local URL if none does.

    Without `data_dir` it keeps nothing on disk (a demo's or a benchmark's Redis); with it, every write
    goes to an append-only file there first, as a production Redis should, so a restart loses nothing.
    Returns the process started, which the caller stops at exit, or None when one was already there.
    """
    if redis_answers(url):
        return None
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise RedisUnavailable(f"Redis is not reachable at {host}:{port} (TRELLIS_REDIS_URL)")
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailable(
            f"Redis is not running at {host}:{port} and redis-server is not installed: "
            "install it (apt-get install redis-server, brew install redis) or set TRELLIS_REDIS_URL"
        )
    persistence = ["--appendonly", "no"]
    if data_dir is not None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data_dir)]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RedisUnavailable(f"redis-server did not start on {host}:{port}")
        time.sleep(0.1)
    log.info("started a local redis-server for this run", port=port, pid=process.pid)
    return process
