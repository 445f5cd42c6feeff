"""Closing the store's connections when a process stops: bounded, even when the store went silent."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from membership.database import Database
from tests.support import Relay


async def test_closing_connections_to_a_silent_store_gives_up_in_time(postgres_url: str) -> None:
    target = urlsplit(postgres_url)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 5432)
    await relay.open()
    try:
        relayed = postgres_url.replace(f"@{target.netloc.split('@')[-1]}", f"@127.0.0.1:{relay.port}")
        database = Database(relayed)
        await database.ping()  # a connection in the pool, through the relay
        relay.silence()
        started = time.monotonic()
        await database.dispose(within=0.5)
        assert time.monotonic() - started < 2
    finally:
        await relay.cut()
