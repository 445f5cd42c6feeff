"""Notifications to a Slack-compatible incoming webhook, against a local HTTP receiver: once an occurrence
whatever the number of workers, retried when the receiver fails, never in the caller's way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from workers.outside.notify import Notifier


class Receiver:
    """An incoming webhook on loopback: answers `failures` times 500, then 200; keeps what it got."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, object]] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
        status = b"500 Internal Server Error" if self.failures > 0 else b"200 OK"
        if self.failures > 0:
            self.failures -= 1
        else:
            self.received.append(json.loads(body))
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    server = await asyncio.start_server(hook.handle, "127.0.0.1", 0)
    hook.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks/abc"
    async with server:
        yield hook


async def test_an_occurrence_seen_by_two_workers_is_sent_once(
    receiver: Receiver, redis_client: Redis
) -> None:
    async with httpx.AsyncClient() as http:
        workers = [Notifier(http, receiver.url, redis_client) for _ in range(2)]
        for notifier in workers:
            notifier.notify("held:7", "Trellis held a plan for board:b")
        await asyncio.gather(*(notifier.drain() for notifier in workers))
    assert receiver.received == [{"text": "Trellis held a plan for board:b"}]


async def test_a_failing_receiver_is_tried_again(receiver: Receiver, redis_client: Redis) -> None:
    receiver.failures = 2
    async with httpx.AsyncClient() as http:
        notifier = Notifier(http, receiver.url, redis_client)
        notifier.notify("dead:job-1", "Trellis gave up on reconcile_board")
        await notifier.drain()
    assert receiver.received == [{"text": "Trellis gave up on reconcile_board"}]


async def test_notifying_returns_at_once(receiver: Receiver, redis_client: Redis) -> None:
    async with httpx.AsyncClient() as http:
        notifier = Notifier(http, receiver.url, redis_client)
        started = asyncio.get_running_loop().time()
        notifier.notify("held:8", "later")
        assert asyncio.get_running_loop().time() - started < 0.01
        await notifier.drain()
