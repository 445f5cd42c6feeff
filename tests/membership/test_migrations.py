"""The migration chain builds the schema from nothing, matches the models, and comes down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from membership.database import Database, downgrade, head_revision, migrate, upgrade
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
    assert head_revision() == "0007"


async def test_postgres_chain_downgrades_and_upgrades_again(postgres_url: str) -> None:
    import asyncio

    await asyncio.to_thread(downgrade, postgres_url, "base")
    await migrate(postgres_url)
    database = Database(postgres_url)
    async with database.engine.connect() as connection:
        names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    await database.dispose()
    assert set(Base.metadata.tables) <= names


async def test_audit_entries_written_before_subjects_get_their_board_and_user(sqlite_url: str) -> None:
    import asyncio

    await asyncio.to_thread(upgrade, sqlite_url, "0006")
    database = Database(sqlite_url)
    async with database.engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO organizations (id, name, authority, created_at, updated_at)"
            " VALUES (1, 'acme', 'trello', '2026-01-01', '2026-01-01');"
        ))  # fmt: skip
        await connection.execute(text(
            "INSERT INTO users (id, email, created_at, updated_at)"
            " VALUES (7, 'a@x.example', '2026-01-01', '2026-01-01')"
        ))  # fmt: skip
        await connection.execute(text(
            "INSERT INTO memberships (id, organization_id, user_id, role, can_read_all_boards,"
            " can_write_all_boards, created_at, updated_at)"
            " VALUES (3, 1, 7, 'member', false, false, '2026-01-01', '2026-01-01')"
        ))  # fmt: skip
        for entity, entity_id in (("board", 5), ("trello_board", 6), ("membership", 3), ("membership", 99)):
            await connection.execute(
                text("INSERT INTO audit_log (at, organization_id, actor, cause, action, entity, entity_id)"
                     " VALUES ('2026-01-01', 1, 'system', 't', 'x', :entity, :id)"),
                {"entity": entity, "id": entity_id},
            )  # fmt: skip
    await migrate(sqlite_url)
    async with database.engine.connect() as connection:
        rows = (
            await connection.execute(text("SELECT entity, board_id, user_id FROM audit_log ORDER BY id"))
        ).all()
    await database.dispose()
    # A membership gone since (99) cannot be told: it stays without a user.
    assert [tuple(row) for row in rows] == [
        ("board", 5, None),
        ("trello_board", 6, None),
        ("membership", None, 7),
        ("membership", None, None),
    ]
