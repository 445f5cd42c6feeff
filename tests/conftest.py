"""Fixtures shared by every test: real Redis on a database number of the tests' own, a store per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from redis.asyncio import Redis
from sqlalchemy import text
from starlette.applications import Starlette

from membership.database import Database, recreate_postgres_database, upgrade
from membership.models import Base
from tests.support import TEST_CALLBACK_URL, TEST_SECRET, RedisServer, worker_index
from trellis.settings import Settings
from trellis.wiring import receiver_app

# The store fixtures (a store on SQLite and on PostgreSQL, an organization with people): shared by the
# store's tests and the membership API's, which live in different folders.
pytest_plugins = ["tests.fixtures.store"]


# Each test process owns one Redis database number (the first from 13 on; Redis has 16) and empties it
# before and after each test that uses it, so parallel workers never see each other's keys.
REDIS_DB = int(os.environ.get("TRELLIS_TEST_REDIS_DB", "13")) + worker_index()
if REDIS_DB > 15:
    raise pytest.UsageError(
        f"Redis database {REDIS_DB} does not exist (0-15): fewer workers, or a lower TRELLIS_TEST_REDIS_DB"
    )
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
        yield REDIS_URL
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'trellis.db'}"


@pytest.fixture
def make_settings(redis_url: str, sqlite_url: str) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "database_url": sqlite_url,
            "queue_name": "trellis:test:queue",
            "trello_secret": TEST_SECRET,
            "callback_url": TEST_CALLBACK_URL,
            "enqueue_timeout_seconds": 1.0,
            "worker_metrics_port": 0,  # tests run many workers at once; the one that needs it says so
            "guard_wave_settle_seconds": 0.2,  # offboardings need not wait for waves; the wave test says so
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = receiver_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as http:
        yield http


@pytest.fixture
def client_for() -> Callable[[Settings], Any]:
    """Open a client on an app built from other settings than the default ones."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        application = receiver_app(settings)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as http:
                yield http

    return open_client


# And a PostgreSQL database of its own: the worker's number is added to the name from the second on.
POSTGRES_URL = os.environ.get(
    "TRELLIS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/trellis_test"
) + (f"_{worker_index()}" if worker_index() else "")


def _fresh_postgres() -> None:
    asyncio.run(recreate_postgres_database(POSTGRES_URL))
    upgrade(POSTGRES_URL)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    # First asked for from inside a running event loop: the set-up runs its own loop in a thread.
    with ThreadPoolExecutor(1) as thread:
        try:
            thread.submit(_fresh_postgres).result()
        except (OSError, asyncpg.PostgresError) as exc:
            if os.environ.get("CI"):
                raise
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


async def empty_postgres(url: str) -> None:
    """Empty every table after a test, so that the next one starts from nothing."""
    database = Database(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with database.transaction() as session:
        await session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await database.dispose()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop and start again."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()
