"""One benchmark worker process: TASKS tasks making token-scoped Trello calls back to back through the
shared limiter (a share of them at bulk priority), and EVENT_CALLERS more making an event call every
EVENT_EVERY seconds, as webhooks trickle in during a resync.

Prints one JSON line: calls served, when each started, permits, Redis round trips, and every wait by
priority.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from redis.asyncio import Redis

from trellis.logging import configure_logging
from workers.outside.limiter import Limit, Limiter, Priority
from workers.outside.remote import RetryPolicy
from workers.outside.trello import TrelloClient, TrelloLimits


class NotingLimiter(Limiter):
    """The shared limiter, noting when each permit let its request go: what Trello's windows count."""

    granted: list[float]

    @asynccontextmanager
    async def permit(self, limits: list[Limit], priority: Priority = Priority.EVENT) -> AsyncIterator[None]:
        async with super().permit(limits, priority):
            self.granted.append(time.time())
            yield


async def run(args: argparse.Namespace) -> dict[str, object]:
    redis = Redis.from_url(args.redis)
    limiter = NotingLimiter(redis, "bench")
    limiter.granted = []
    limits = TrelloLimits(key_max=args.key_max, token_max=args.token_max, window=args.window)
    async with httpx.AsyncClient(timeout=10) as http:
        client = TrelloClient(
            http,
            base_url=args.emulator + "/1",
            key=args.key,
            token=args.token,
            limiter=limiter,
            limits=limits,
            retry=RetryPolicy(attempts=3, base=0.05, cap=1),
        )
        board = (await http.get(f"{args.emulator}/_emulator/state")).json()["boards"][0]["id"]
        served = {p.name: 0 for p in Priority}
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        deadline = time.monotonic() + args.seconds

        async def call(priority: Priority) -> None:
            await client.board_memberships(board, priority=priority)
            # Only calls done inside the run count: one still waiting for a permit at the deadline
            # is granted in a window that the run does not pay for.
            if time.monotonic() < deadline:
                served[priority.name] += 1

        async def task(priority: Priority) -> None:
            while time.monotonic() < deadline:
                await call(priority)

        async def trickle() -> None:
            while time.monotonic() < deadline:
                await asyncio.gather(call(Priority.EVENT), asyncio.sleep(args.event_every))

        bulk = int(args.tasks * args.bulk_share)
        priorities = [Priority.BULK] * bulk + [Priority.EVENT] * (args.tasks - bulk)
        await asyncio.gather(*(task(p) for p in priorities), *(trickle() for _ in range(args.event_callers)))
        await limiter.aclose()
    await redis.aclose()
    return {
        "served": served,
        "granted": limiter.granted,
        "permits": limiter.stats.permits,
        "round_trips": limiter.stats.round_trips,
        "waits": {p.name: list(limiter.stats.waits[p]) for p in Priority},
    }


def main() -> None:
    configure_logging(level="warning", fmt="json")  # to stderr: stdout carries the one JSON line
    parser = argparse.ArgumentParser()
    for name in ("redis", "emulator", "key", "token"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--token-max", type=int, default=100)
    parser.add_argument("--key-max", type=int, default=300)
    parser.add_argument("--bulk-share", type=float, default=0)
    parser.add_argument("--event-callers", type=int, default=0)
    parser.add_argument("--event-every", type=float, default=0.5)
    parser.add_argument("--start-at", type=float, default=0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
