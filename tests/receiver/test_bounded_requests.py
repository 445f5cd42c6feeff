"""Slow and oversized requests before authentication, against `trellis serve` as a process: each is cut
off at its bounds, the receiver's memory stays flat, and `/healthz` keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stack import wait_for
from tests.support import free_port

HEAD_TIMEOUT = 1.5


@pytest.fixture
def receiver(redis_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A receiver process: its port and pid."""
    port = free_port()
    env = {
        **os.environ, "TRELLIS_REDIS_URL": redis_url, "TRELLIS_DATABASE_URL": sqlite_url,
        "TRELLIS_PORT": str(port), "TRELLIS_REQUEST_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
    }  # fmt: skip
    with (tmp_path / "receiver.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "trellis", "serve"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(f"http://127.0.0.1:{port}/healthz", process)
        yield port, process.pid
        process.terminate()
        process.wait(20)


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kilobytes / 1024


async def endless_header(port: int, limit: int = 64 * 1024 * 1024) -> int:
    """Stream one header line without end; how many bytes went out before the receiver cut it off."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhooks/trello HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent, chunk = 0, b"a" * 65536
    try:
        while sent < limit:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            if reader.at_eof() or writer.is_closing():
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    writer.close()
    return sent


async def slow_head(port: int, every: float, cut_off: asyncio.Event | None = None) -> float:
    """A header line every `every` seconds; the seconds until the receiver closed the connection."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    try:
        while time.monotonic() - started < 30:
            try:
                if await asyncio.wait_for(reader.read(1024), timeout=every) == b"" or reader.at_eof():
                    break
            except TimeoutError:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass
    writer.close()
    return time.monotonic() - started


async def test_oversized_headers_are_cut_off_and_memory_stays_flat(receiver: tuple[int, int]) -> None:
    port, pid = receiver
    before = resident_mb(pid)
    sent = await asyncio.gather(*(endless_header(port) for _ in range(4)))
    after = resident_mb(pid)
    assert max(sent) < 4 * 1024 * 1024  # cut off near the 64 KiB bound, not after the 64 MB
    assert after - before < 30


async def test_slow_heads_are_closed_and_healthz_keeps_answering(receiver: tuple[int, int]) -> None:
    port, _ = receiver
    slow = [asyncio.create_task(slow_head(port, every=0.5)) for _ in range(85)]
    answers = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=1.0) as client:
        for _ in range(15):
            answers.append((await client.get("/healthz")).status_code)
            await asyncio.sleep(0.2)
    held = await asyncio.gather(*slow)
    assert set(answers) == {200}
    assert max(held) < HEAD_TIMEOUT + 2  # closed at the bound, not held for minutes


async def test_a_slow_second_head_on_a_kept_alive_connection_is_cut_off_at_the_bound(
    receiver: tuple[int, int],
) -> None:
    port, _ = receiver
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await reader.readuntil(b"}")  # {"status":"ok"}, the whole answer
    answered = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the second head, never finished
    while not reader.at_eof() and time.monotonic() - answered < 10:
        try:
            tail = await asyncio.wait_for(reader.read(1024), timeout=0.4)
        except TimeoutError:
            writer.write(b"X-Slow: 1\r\n")
            continue
        if not tail:
            break
        assert tail.startswith(b"HTTP/1.1 408")
    writer.close()
    held = time.monotonic() - answered
    assert first.startswith(b"HTTP/1.1 200")
    # The bound counts from the end of the previous answer; the timer armed for the first head must
    # neither cut the second one short nor let it run on.
    assert HEAD_TIMEOUT - 0.3 < held < HEAD_TIMEOUT + 1
