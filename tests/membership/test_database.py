"""Closing the store's connections when a process stops: bounded, even when the store went silent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

from membership.database import Database
from tests.support import free_port


class SilentRelay:
    """Forwards TCP connections to PostgreSQL until `silence()`: from then on it keeps every connection
    open and passes nothing either way, as a network that drops packets does."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.silent = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentRelay:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()

    def silence(self) -> None:
        self.silent.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, upstream_writer]
        await asyncio.gather(self._copy(reader, upstream_writer), self._copy(upstream_reader, writer))

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if self.silent.is_set():
                    await asyncio.Event().wait()  # swallow it, and everything after it
                writer.write(data)
                await writer.drain()


async def test_closing_connections_to_a_silent_store_gives_up_in_time(postgres_url: str) -> None:
    target = urlsplit(postgres_url)
    async with SilentRelay(target.hostname or "127.0.0.1", target.port or 5432) as relay:
        relayed = postgres_url.replace(f"@{target.netloc.split('@')[-1]}", f"@127.0.0.1:{relay.port}")
        database = Database(relayed)
        await database.ping()  # a connection in the pool, through the relay
        relay.silence()
        started = time.monotonic()
        await database.dispose(within=0.5)
        assert time.monotonic() - started < 2
