"""Helpers for tests: Trello-shaped deliveries, signed the way Trello signs them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from trellis.supervisor import start_local_redis


def worker_index() -> int:
    """Which of pytest-xdist's parallel workers this process is (gw0, gw1, ...); 0 when run alone."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


# Ports for the processes a test starts. The kernel's choice (`trellis.supervisor.free_port`) is unique
# only within one process: under two test workers, one may be offered a port the other has just probed
# and not yet bound. So each worker takes ports from a range of its own, below the kernel's ephemeral
# range (32768 and up), where the kernel hands out nothing either.
PORTS_PER_WORKER = 3000
_first_port = 20_000 + PORTS_PER_WORKER * worker_index()
_next_ports = itertools.count(_first_port)


def free_port() -> int:
    """A TCP port nothing listens on now, from this test worker's own range, never handed out twice."""
    for port in _next_ports:
        if port >= _first_port + PORTS_PER_WORKER:
            break
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken by something else on this machine
        return port
    raise RuntimeError("this test worker has used up its range of ports")


TEST_SECRET = "test-webhook-secret-0123456789abcdef"
TEST_CALLBACK_URL = "https://trellis.example.com/webhooks/trello"

_counter = itertools.count()


def trello_id(at: float | None = None) -> str:
    """A fresh Trello-style id: 8 hex digits of creation time, then 16 more that make it unique."""
    seconds = int(time.time() if at is None else at)
    return f"{seconds:08x}{os.getpid() & 0xFFFF:04x}{next(_counter):012x}"


def delivery(action_type: str = "addMemberToBoard", **action_fields: Any) -> dict[str, Any]:
    board = {"id": trello_id(), "name": "Roadmap", "shortLink": "abcd1234"}
    member = {"id": trello_id(), "username": "zoe", "fullName": "Zoë Çelik"}
    action: dict[str, Any] = {
        "id": trello_id(),
        "idMemberCreator": trello_id(),
        "type": action_type,
        "date": "2026-11-22T10:00:00.000Z",
        "data": {"board": board, "idMemberAdded": member["id"], "memberType": "normal"},
        "member": member,
        "memberCreator": {"id": trello_id(), "username": "admin", "fullName": "Admin"},
    }
    action.update(action_fields)
    return {"action": action, "model": {"id": board["id"], "name": board["name"]}, "webhook": {}}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def trello_signature(body: bytes, secret: str = TEST_SECRET, callback_url: str = TEST_CALLBACK_URL) -> str:
    """Written out here rather than imported, so a mistake in the receiver's version cannot hide."""
    mac = hmac.new(secret.encode("utf-8"), body + callback_url.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signed_headers(body: bytes, **kwargs: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-trello-webhook": trello_signature(body, **kwargs)}


class RedisServer:
    """A redis-server of a test's own, on a free port, that the test can stop and start again."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = data_dir  # with one, an append-only file keeps every write across a restart
        self._process: Any = None

    def env(self) -> dict[str, str]:
        return {"TRELLIS_REDIS_URL": self.url}

    def start(self) -> None:
        self._process = start_local_redis(self.url, data_dir=self.data_dir)
        if self._process is None:
            raise RuntimeError(f"something else answers at {self.url}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


class Relay:
    """Forwards TCP connections to a target (the store, in the tests). Two faults: `cut()` drops every
    connection and refuses new ones; `silence()` keeps them all open and passes nothing either way, as a
    network that drops packets does."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.silent = False

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in list(self.pipes):
            pipe.cancel()
        await self.server.wait_closed()  # from Python 3.12 it waits for the connections too
        self.server = None

    def silence(self) -> None:
        self.silent = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        tasks = [
            asyncio.ensure_future(self._copy(reader, upstream_writer)),
            asyncio.ensure_future(self._copy(upstream_reader, writer)),
        ]
        self.pipes.update(tasks)
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            pass
        finally:
            self.pipes.difference_update(tasks)
            for w in (writer, upstream_writer):
                w.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                if self.silent:
                    await asyncio.Event().wait()  # swallow it, and all after it, until cut
                writer.write(data)
                await writer.drain()
