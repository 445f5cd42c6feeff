"""A replicated Redis on loopback for fault runs and benchmarks: a primary, a replica and three
Sentinels, each a `redis-server` of its own, which a run can kill and bring back as a supervisor would.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from trellis.supervisor import free_port

MASTER = "trellis"
# How long a primary may be silent before a Sentinel holds it down; the failover follows in a second or
# two. Production keeps Sentinel's default (30 s) or so: loopback has no slow networks to tolerate.
DOWN_AFTER_MS = 1000


class ReplicatedRedis:
    """Two redis-servers, one replicating the other, and three Sentinels watching them."""

    def __init__(self, workdir: Path, *, sentinels: bool = True) -> None:
        self.workdir = workdir
        self.binary = shutil.which("redis-server") or "redis-server"
        self.ports = [free_port(), free_port()]  # the first starts as the primary
        self.sentinel_ports = [free_port() for _ in range(3)] if sentinels else []
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        primary, replica = self.ports
        self._serve(primary)
        self._serve(replica, replica_of=primary)
        self._wait(lambda: self.replicas_of(primary) == 1, "the replica to follow the primary")
        for port in self.sentinel_ports:
            self._sentinel(port, primary)
        if self.sentinel_ports:
            self._wait(self._sentinels_agree, "the sentinels to know each other and the replica")

    def env(self) -> dict[str, str]:
        """The settings that point Trellis at this set: through the Sentinels when there are any, else at
        the primary directly."""
        if not self.sentinel_ports:
            return {"TRELLIS_REDIS_URL": f"redis://127.0.0.1:{self.ports[0]}/0"}
        return {
            "TRELLIS_REDIS_URL": "redis://127.0.0.1/0",
            "TRELLIS_REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "TRELLIS_REDIS_SENTINEL_MASTER": MASTER,
        }

    def primary(self) -> int:
        """The primary's port, as the Sentinels name it."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=2) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def kill_primary(self) -> int:
        """SIGKILL the primary, as a crash would: nothing flushed, nothing handed over. Its port."""
        port = self.primary()
        process = self.servers.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return port

    def freeze_primary(self, seconds: float) -> int:
        """SIGSTOP the primary for `seconds` and let it go on (a stalled VM, a long fork): the Sentinels
        fail over meanwhile, and it wakes up believing it is still the primary. Its port."""
        port = self.primary()
        process = self.servers[port]
        process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            process.send_signal(signal.SIGCONT)
        return port

    def wait_for_failover(self, old: int, timeout: float = 30.0) -> int:
        """The new primary's port once the Sentinels have promoted the replica."""
        self._wait(lambda: self.primary() != old, "the sentinels to promote the replica", timeout)
        return self.primary()

    def bring_back(self, port: int) -> None:
        """Start a killed server again as a replica of the current primary (what an init script does
        for a restarted Redis pod), and wait until it has caught up."""
        self._serve(port, replica_of=self.primary())
        self.wait_for_replica()

    def wait_for_replica(self) -> None:
        """Until the current primary has a replica in sync (after a failover, the old primary's return)."""
        self._wait(lambda: self.replicas_of(self.primary()) >= 1, "a replica to follow the primary")

    @contextlib.contextmanager
    def replica_paused(self) -> Iterator[None]:
        """The replica frozen (SIGSTOP) and thawed after: a replica that lags, as a slow disk or a
        congested link would make it."""
        primary = self.primary() if self.sentinel_ports else self.ports[0]
        (replica,) = (process for port, process in self.servers.items() if port != primary)
        replica.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            replica.send_signal(signal.SIGCONT)

    def replicas_of(self, port: int) -> int:
        try:
            with redis.Redis(port=port, socket_timeout=2) as client:
                info = client.info("replication")
        except redis.RedisError:
            return 0
        links = [value for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)]
        return sum(1 for link in links if link.get("state") == "online")

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.sentinels, *self.servers.values()]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()

    def _serve(self, port: int, *, replica_of: int | None = None) -> None:
        # A returning replica is synced at once: Redis's default waits 5 s for more replicas to join.
        # A replica writes the primary's snapshot to its directory as it syncs: each server has its own.
        directory = self.workdir / f"redis-{port}"
        directory.mkdir(exist_ok=True)
        argv = [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--repl-diskless-sync-delay", "0", "--dir", str(directory)]  # fmt: skip
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.servers[port] = self._start(argv, f"redis-{port}", port)

    def _sentinel(self, port: int, primary: int) -> None:
        config = self.workdir / f"sentinel-{port}.conf"  # Sentinel rewrites its file: one each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
        )
        self.sentinels.append(self._start([self.binary, str(config), "--sentinel"], f"sentinel-{port}", port))

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            with redis.Redis(port=port, socket_timeout=2) as sentinel:
                if len(sentinel.sentinel_sentinels(MASTER)) < len(self.sentinel_ports) - 1:
                    return False
                if len(sentinel.sentinel_slaves(MASTER)) < 1:
                    return False
        return True

    def _start(self, argv: list[str], name: str, port: int) -> subprocess.Popen[bytes]:
        """A server started and answering on `port`. One that exits instead (its port taken, an option
        refused) fails the start at once with its own words, not when the wait gives up."""
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self._log_tail(name)}")
            return _answers(port)

        self._wait(answering, f"{name} to answer on {port}")
        return process

    def _wait(self, done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                logs = "\n".join(self._log_tail(log.stem) for log in sorted(self.workdir.glob("*.log")))
                raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s; their logs:\n{logs}")
            time.sleep(0.1)

    def _log_tail(self, name: str, lines: int = 15) -> str:
        tail = (self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {name}: {line}" for line in tail)


def _answers(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False
