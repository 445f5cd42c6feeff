"""The migration chain builds the schema from nothing, matches the models, and comes down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from membership.database import Database, downgrade, head_revision, migrate
from membership.models import Base


async def test_upgraded_schema_matches_the_models(store_url: str) -> None:
    database = Database(store_url)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with database.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    await database.dispose()
    assert diff == []


async def test_chain_upgrades_an_empty_database_and_downgrades_to_nothing(sqlite_url: str) -> None:
    import asyncio

    await migrate(sqlite_url)
    database = Database(sqlite_url)

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with database.engine.connect() as connection:
        assert set(Base.metadata.tables) <= await connection.run_sync(tables)
    await asyncio.to_thread(downgrade, sqlite_url, "base")
    async with database.engine.connect() as connection:
        assert await connection.run_sync(tables) == {"alembic_version"}
    await database.dispose()
    assert head_revision() == "0006"


async def test_postgres_chain_downgrades_and_upgrades_again(postgres_url: str) -> None:
    import asyncio

    await asyncio.to_thread(downgrade, postgres_url, "base")
    await migrate(postgres_url)
    database = Database(postgres_url)
    async with database.engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await database.dispose()
    assert set(Base.metadata.tables) <= names
