"""Engines, sessions and schema migrations for the store.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is the production store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")
# How long closing the store's connections may take when a process stops.
DISPOSE_TIMEOUT_SECONDS = 5.0

log = structlog.get_logger("membership.database")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    if not is_sqlite(url):
        # Bounded waits: a store that stops answering (a network that drops packets) must fail a job,
        # which is then retried, not hang it.
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10,
            connect_args={"timeout": 10, "command_timeout": 30},
        )  # fmt: skip
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
        # isolation_level=None stops the driver from issuing its own BEGIN, so the "begin" hook below
        # decides how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin_immediate(conn):  # type: ignore[no-untyped-def]
        # Take the write lock at BEGIN: two deferred transactions that both read and then write would
        # otherwise fail with "database is locked" instead of waiting their turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """An engine and its session factory, created once and passed down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits at the end of the block, or rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def revision(self) -> str | None:
        """The schema revision the store is at; None when it was never migrated."""

        def current(connection: Connection) -> str | None:
            return MigrationContext.configure(connection).get_current_revision()

        async with self.engine.connect() as conn:
            return await conn.run_sync(current)

    async def dispose(self, within: float = DISPOSE_TIMEOUT_SECONDS) -> None:
        """Close the pool's connections, waiting at most `within` seconds: a connection whose peer went
        away without a word (a network that drops packets) never answers a graceful close, and a process
        stopping must not wait for it. Whatever is left open then goes with the process."""
        try:
            async with asyncio.timeout(within):
                await self.engine.dispose()
        except TimeoutError:
            log.warning("store connections not closed in time", within=within)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`. Blocking: call it from a thread inside an event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def migrate(url: str, revision: str = "head") -> None:
    # Alembic's async env runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def recreate_postgres_database(url: str) -> None:
    """Drop and create the PostgreSQL database `url` names, empty (its server's `postgres` database must
    be reachable): for a test run or a benchmark that wants a store of its own."""
    import asyncpg  # type: ignore[import-untyped]

    name = url.rsplit("/", 1)[1]
    admin = url.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)[0] + "/postgres"
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
