"""The `trellis` command: the group, its context and the helpers its commands share.

The commands live beside this module by concern: `service` (running things), `store` (organizations,
users, tokens, events), `sync` (plans, resyncs and webhooks: what talks to Trello) and `operate`
(approvals, dead letters).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from membership.rules import Actor
from trellis.logging import configure_logging
from trellis.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from jobs.queue import JobQueue
    from membership.database import Database
    from workers.outside.trello import TrelloClient


T = TypeVar("T")


class CliContext:
    """Settings are loaded on first use, so `--help` works with a broken environment."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except SettingsError as exc:
                click.echo(f"trellis: {exc}", err=True)
                sys.exit(2)
            configure_logging(
                level=self._settings.log_level,
                fmt=self._settings.log_format,
                secrets=self._settings.secret_values(),
            )
        return self._settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trellis")
def main() -> None:
    """Trellis keeps Trello workspace and board membership in step with a local membership store."""


def in_store(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one store transaction (migrating an embedded SQLite store first); a broken rule
    ends the command with one line."""

    async def run() -> T:
        database = await current_store(settings)
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    return run_command(run())


class StoreOutdated(Exception):
    """The store was never migrated, or is behind the code."""


async def current_store(settings: Settings) -> Database:
    """The store, its schema checked (an embedded SQLite store is migrated first)."""
    from membership.database import Database, head_revision, is_sqlite, migrate

    if is_sqlite(settings.database_url):
        await migrate(settings.database_url)
    database = Database(settings.database_url)
    if (current := await database.revision()) != (head := head_revision()):
        await database.dispose()
        raise StoreOutdated(f"the store's schema is at {current or 'nothing'}, this version needs {head}")
    return database


def run_command(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work; a broken rule, or a store never migrated or behind the code, ends it with
    one line."""
    from membership.errors import RuleViolation

    try:
        return asyncio.run(work)
    except RuleViolation as exc:
        click.echo(f"trellis: {exc.message}", err=True)
        sys.exit(1)
    except StoreOutdated as exc:
        click.echo(f"trellis: {exc}: run `trellis migrate`", err=True)
        sys.exit(2)


def queue_on(redis: Redis, settings: Settings) -> JobQueue:
    """The job queue as the settings describe it: its name, its timeout, the replicas a job needs."""
    from jobs.queue import JobQueue

    timeout, replicas = settings.enqueue_timeout_seconds, settings.redis_min_replicas
    return JobQueue(redis, settings.queue_name, timeout=timeout, min_replicas=replicas)


def with_queue(settings: Settings, work: Callable[[JobQueue], Awaitable[T]]) -> T:
    """Run `work` with the job queue (and, through it, Redis), closing the connection after."""
    from jobs.connection import connect

    async def run() -> T:
        redis = connect(settings.redis_target(), timeout=settings.enqueue_timeout_seconds)
        try:
            return await work(queue_on(redis, settings))
        finally:
            await redis.aclose()

    return asyncio.run(run())


def with_trello(settings: Settings, work: Callable[[TrelloClient, Database, JobQueue], Awaitable[T]]) -> T:
    """Run `work` with a Trello client (under the limiter every worker shares), the store and the
    queue; without Trello credentials the command ends with one line saying which settings it needs."""
    from jobs.connection import connect
    from trellis.wiring import clients_config
    from workers.outside.clients import build_clients

    if not settings.has_trello_credentials:
        click.echo("trellis: this command needs TRELLIS_TRELLO_API_KEY and TRELLIS_TRELLO_TOKEN", err=True)
        sys.exit(2)

    async def run() -> T:
        database = await current_store(settings)
        redis = connect(settings.redis_target(), timeout=settings.enqueue_timeout_seconds)
        clients = build_clients(clients_config(settings), redis)
        try:
            assert clients.trello is not None
            return await work(clients.trello, database, queue_on(redis, settings))
        finally:
            await clients.aclose()
            await database.dispose()
            await redis.aclose()

    return run_command(run())


CLI_ACTOR = Actor.system("cli")


# The commands register themselves on `main` when their modules are imported.
from trellis.cli import history, operate, orgs, service, store, sync  # noqa: E402

__all__ = [
    "CLI_ACTOR",
    "CliContext",
    "history",
    "in_store",
    "main",
    "operate",
    "orgs",
    "pass_cli",
    "service",
    "store",
    "sync",
    "with_queue",
    "with_trello",
]
