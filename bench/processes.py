"""Real processes for benchmarks: a Redis of their own, servers on free ports, stopped at the end; and a
PostgreSQL database made afresh (the tests use it too)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from trellis.supervisor import RedisUnavailable, free_port, start_local_redis, stop_process

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    port: int,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cores: set[int] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A process listening on `port`, stopped at the end. Its stderr goes to `log` (else a scratch file):
    a pipe nobody reads would stall a process that logs much, such as a receiver refusing deliveries.
    `cores`: the CPUs it may run on, set before it starts, so that every thread it makes has them."""
    pin = None if cores is None else lambda: os.sched_setaffinity(0, cores)
    with open(log, "a+b") if log is not None else tempfile.TemporaryFile() as sink:
        process = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=sink,
            preexec_fn=pin,  # safe: a benchmark's parent runs no threads
        )  # fmt: skip
        try:
            try:
                wait_for_port(port, process)
            except RuntimeError as exc:
                sink.seek(0)
                raise RuntimeError(f"{exc}: {sink.read()[-2000:].decode(errors='replace')}") from None
            yield process
        finally:
            stop_process(process)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of the benchmark's own: nothing else shares its keys or its CPU queue."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        process = start_local_redis(url)
    except RedisUnavailable as exc:
        sys.exit(f"bench: {exc}")
    try:
        yield url
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far (/proc/PID/stat, utime and stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_module(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def emulator_command(
    port: int, fixture: Path, *, key: str, token: str, secret: str, retry_delay: float = 0.5
) -> list[str]:
    """`trellis emulator` on `port`, seeded with `fixture`, signing its deliveries with `secret` and
    delivering a refused one again after `retry_delay` seconds."""
    return python_module(
        "trellis", "emulator", "--port", str(port), "--fixture", str(fixture), "--key", key, "--token", token,
        "--secret", secret, "--retry-delay", str(retry_delay),
    )  # fmt: skip


def start_worker(env: dict[str, str], log: Path, stack: contextlib.ExitStack) -> subprocess.Popen[bytes]:
    """A `trellis worker` with `env` on top of ours, its output in `log`, stopped when `stack` closes."""
    sink = stack.enter_context(log.open("wb"))
    process = subprocess.Popen(
        python_module("trellis", "worker"), env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT
    )
    stack.callback(process.wait, 15)
    stack.callback(process.terminate)
    return process
