"""The `trellis` command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from membership.rules import Actor
from trellis.logging import configure_logging
from trellis.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


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


@main.command()
@click.option("--host", default=None, help="Address to listen on [TRELLIS_HOST, default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [TRELLIS_PORT, default 8080].")
@pass_cli
def serve(cli: CliContext, host: str | None, port: int | None) -> None:
    """Run the receiver: Trello webhooks, the membership API, health and metrics."""
    import uvicorn

    from receiver.app import create_app

    settings = cli.settings
    config = uvicorn.Config(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run()


@main.command()
@pass_cli
def worker(cli: CliContext) -> None:
    """Run an arq worker: applies events and reconciles with Trello."""
    from arq.worker import Worker

    from workers.worker import worker_settings

    settings = cli.settings

    async def run() -> None:
        arq_worker = Worker(**worker_settings(settings))
        try:
            await arq_worker.async_run()
        except asyncio.CancelledError:
            pass  # a signal stopped it
        finally:
            await arq_worker.close()

    asyncio.run(run())


@main.command()
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
@pass_cli
def migrate(cli: CliContext, revision: str) -> None:
    """Create or upgrade the store's schema."""
    import logging

    from membership.database import upgrade

    settings = cli.settings
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    upgrade(settings.database_url, revision)
    click.echo(f"store at revision {revision}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--fixture", type=click.Path(exists=True, dir_okay=False), help="JSON state to start from.")
@click.option("--key", default="emulator-key", show_default=True, help="The API key it accepts.")
@click.option("--token", default="emulator-token", show_default=True, help="The token it accepts.")
@click.option(
    "--secret", default="emulator-secret", show_default=True, help="The secret it signs webhooks with."
)
@click.option(
    "--retry-delay", default=5.0, show_default=True, help="First pause before a failed delivery is retried."
)
def emulator(
    host: str, port: int, fixture: str | None, key: str, token: str, secret: str, retry_delay: float
) -> None:
    """Run the Trello and SCIM emulator (the built-in sample workspace unless --fixture)."""
    import uvicorn

    from emulator.app import EmulatorConfig, create_emulator
    from emulator.deliveries import DeliveryPolicy

    configure_logging(secrets=[key, token, secret])
    state = json.loads(Path(fixture).read_text()) if fixture else None
    config = EmulatorConfig(
        key=key,
        token=token,
        secret=secret,
        fixture=state,
        delivery=DeliveryPolicy(retry_base_delay=retry_delay),
    )
    uvicorn.run(create_emulator(config), host=host, port=port, log_config=None, server_header=False)


@main.command()
@click.option(
    "--board", "boards", multiple=True, required=True, help="A linked board's Trello id (repeatable)."
)
@pass_cli
def plan(cli: CliContext, boards: tuple[str, ...]) -> None:
    """Show what a reconcile of each board would change, changing nothing."""
    from membership.database import Database
    from workers.clients import build_clients
    from workers.queue import redis_client
    from workers.reconcile import reconcile_board

    settings = cli.settings
    if not settings.has_trello_credentials:
        click.echo("trellis: plan needs TRELLIS_TRELLO_API_KEY and TRELLIS_TRELLO_TOKEN", err=True)
        sys.exit(2)

    async def run() -> list[str]:
        redis = redis_client(settings.redis_url, timeout=settings.enqueue_timeout_seconds)
        clients = build_clients(settings, redis)
        database = Database(settings.database_url)
        lines = []
        try:
            assert clients.trello is not None
            for board in boards:
                report = await reconcile_board(clients.trello, database, board, cause="plan", apply=False)
                if report is None:
                    lines.append(f"board {board}: not linked in the store")
                    continue
                held = f" (held: {report.plan.held})" if report.plan.held else ""
                lines.append(f"board {board}: {len(report.plan.changes)} change(s){held}")
                lines += [
                    f"  {type(op).__name__} {op.member_id}: {op.reason}" for op in report.plan.operations
                ]
        finally:
            await clients.aclose()
            await database.dispose()
            await redis.aclose()
        return lines

    for line in asyncio.run(run()):
        click.echo(line)


@main.group()
def approvals() -> None:
    """What Trellis will not do without an operator: held plans."""


@approvals.command("list")
@pass_cli
def approvals_list(cli: CliContext) -> None:
    """List open approvals with what they would do."""
    from membership.approvals import open_approvals

    async def rows(session: AsyncSession) -> list[str]:
        lines = []
        for approval in await open_approvals(session):
            lines.append(f"{approval.id:>5}  {approval.kind:16} {approval.scope:40} {approval.summary}")
            for op in approval.payload.get("operations", []):
                lines.append(f"         {op['operation']} {op['member_id']}: {op['reason']}")
        return lines or ["no open approvals"]

    for line in in_store(cli.settings, rows):
        click.echo(line)


@approvals.command("approve")
@click.argument("approval_id", type=int)
@pass_cli
def approvals_approve(cli: CliContext, approval_id: int) -> None:
    """Approve a held plan: its board is reconciled again, and the plan goes ahead if it takes access
    from no one beyond those it named."""
    from membership.approvals import decide
    from workers.queue import Job, JobQueue, redis_client

    settings = cli.settings
    approval = in_store(
        settings, lambda session: decide(session, approval_id, approve=True, by="operator:cli")
    )
    kind, _, subject = approval.scope.partition(":")
    if approval.kind == "plan" and kind == "board":

        async def queue() -> None:
            redis = redis_client(settings.redis_url, timeout=settings.enqueue_timeout_seconds)
            try:
                job = Job(
                    "reconcile_board",
                    (subject,),
                    {"reason": f"approval {approval_id}", "approval_id": approval_id},
                )
                await JobQueue(redis, settings.queue_name).enqueue(job)
            finally:
                await redis.aclose()

        asyncio.run(queue())
    click.echo(f"approval {approval_id} approved: {approval.scope} is reconciled again")


@approvals.command("reject")
@click.argument("approval_id", type=int)
@pass_cli
def approvals_reject(cli: CliContext, approval_id: int) -> None:
    """Reject a held plan: nothing is applied (a later event or resync plans afresh)."""
    from membership.approvals import decide

    in_store(cli.settings, lambda session: decide(session, approval_id, approve=False, by="operator:cli"))
    click.echo(f"approval {approval_id} rejected")


@main.group("dead-letters")
def dead_letters() -> None:
    """Jobs that failed for good: list them, queue them again, or drop them."""


def with_dead_letters(settings: Settings, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    from workers.deadletters import DeadLetters
    from workers.queue import JobQueue, redis_client

    async def run() -> T:
        redis = redis_client(settings.redis_url, timeout=settings.enqueue_timeout_seconds)
        try:
            return await work(DeadLetters(redis), JobQueue(redis, settings.queue_name))
        finally:
            await redis.aclose()

    return asyncio.run(run())


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@pass_cli
def dead_letters_list(cli: CliContext, as_json: bool) -> None:
    """List dead letters, oldest first."""
    from dataclasses import asdict

    letters = with_dead_letters(cli.settings, lambda letters, _: letters.list())
    if not letters:
        click.echo("no dead letters")
    for letter in letters:
        if as_json:
            click.echo(json.dumps(asdict(letter)))
        else:
            click.echo(f"{letter.job_id}  {letter.function}  tries={letter.tries}  {letter.error}")


@dead_letters.command("replay")
@click.argument("job_ids", nargs=-1, required=True)
@pass_cli
def dead_letters_replay(cli: CliContext, job_ids: tuple[str, ...]) -> None:
    """Queue the given dead letters again (under new job ids) and take them off the list."""

    async def replay(letters: Any, queue: Any) -> list[bool]:
        return [await letters.replay(job_id, queue) for job_id in job_ids]

    outcomes = with_dead_letters(cli.settings, replay)
    for job_id, replayed in zip(job_ids, outcomes, strict=True):
        click.echo(f"{job_id}: {'queued again' if replayed else 'no such dead letter'}")
    if not all(outcomes):
        sys.exit(1)


@dead_letters.command("drop")
@click.argument("job_ids", nargs=-1, required=True)
@pass_cli
def dead_letters_drop(cli: CliContext, job_ids: tuple[str, ...]) -> None:
    """Forget the given dead letters."""

    async def drop(letters: Any, _: Any) -> list[bool]:
        return [await letters.drop(job_id) for job_id in job_ids]

    outcomes = with_dead_letters(cli.settings, drop)
    for job_id, dropped in zip(job_ids, outcomes, strict=True):
        click.echo(f"{job_id}: {'dropped' if dropped else 'no such dead letter'}")
    if not all(outcomes):
        sys.exit(1)


def in_store(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one store transaction (migrating an embedded SQLite store first); a broken rule
    ends the command with one line."""
    from membership.database import Database, is_sqlite, migrate
    from membership.errors import RuleViolation

    async def run() -> T:
        if is_sqlite(settings.database_url):
            await migrate(settings.database_url)
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except RuleViolation as exc:
        click.echo(f"trellis: {exc.message}", err=True)
        sys.exit(1)


CLI_ACTOR = Actor.system("cli")


@main.group()
def orgs() -> None:
    """Organizations linked to Trello workspaces."""


@orgs.command("link")
@click.argument("trello_org_id")
@click.option("--name", required=True, help="The organization's name.")
@click.option("--owner", "owner_email", required=True, help="Email of its first owner (created if new).")
@click.option("--authority", type=click.Choice(["trello", "local"]), default="trello", show_default=True)
@pass_cli
def orgs_link(cli: CliContext, trello_org_id: str, name: str, owner_email: str, authority: str) -> None:
    """Create the organization linked to TRELLO_ORG_ID (the workspace's id, not its name)."""
    from membership.directory import link_organization

    async def link(session: AsyncSession) -> str:
        organization = await link_organization(
            session, trello_org_id, name=name, owner_email=owner_email, authority=authority, actor=CLI_ACTOR
        )
        return (
            f"organization {organization.id} linked to Trello workspace {trello_org_id}, owner {owner_email}"
        )

    click.echo(in_store(cli.settings, link))


@main.group()
def users() -> None:
    """Users of the store."""


@users.command("create")
@click.argument("email")
@click.option("--name", default=None)
@pass_cli
def users_create(cli: CliContext, email: str, name: str | None) -> None:
    """Create a user with no membership (someone to invite)."""
    from membership.directory import create_user

    async def create(session: AsyncSession) -> str:
        user = await create_user(session, email, name, actor=CLI_ACTOR)
        return f"user {user.id} {user.email}"

    click.echo(in_store(cli.settings, create))


@users.command("list")
@pass_cli
def users_list(cli: CliContext) -> None:
    """List every user with their linked Trello member."""
    from membership.directory import list_users

    async def rows(session: AsyncSession) -> list[str]:
        return [
            f"{u.id:>6}  {u.email or '-':40} {u.name or '-':24} {u.trello_member_id or '-'}"
            for u in await list_users(session)
        ]

    for row in in_store(cli.settings, rows):
        click.echo(row)


@main.group()
def tokens() -> None:
    """Bearer tokens for the membership API."""


@tokens.command("create")
@click.argument("email")
@pass_cli
def tokens_create(cli: CliContext, email: str) -> None:
    """Print a new API token for EMAIL. It is shown this once: only its hash is kept."""
    from membership.directory import create_token

    async def create(session: AsyncSession) -> tuple[int, str]:
        token, plain = await create_token(session, email)
        return token.id, plain

    token_id, plain = in_store(cli.settings, create)
    click.echo(f"token {token_id} for {email} (shown once):", err=True)
    click.echo(plain)


@tokens.command("revoke")
@click.argument("token_id", type=int)
@pass_cli
def tokens_revoke(cli: CliContext, token_id: int) -> None:
    """Revoke the API token TOKEN_ID."""
    from membership.directory import revoke_token

    in_store(cli.settings, lambda session: revoke_token(session, token_id))
    click.echo(f"token {token_id} revoked")


@main.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@pass_cli
def events(cli: CliContext, limit: int, as_json: bool) -> None:
    """List the newest recorded Trello actions."""
    from membership.database import Database
    from membership.events import newest_events

    async def read() -> list[dict[str, Any]]:
        database = Database(cli.settings.database_url)
        try:
            async with database.transaction() as session:
                entries = await newest_events(session, limit)
        finally:
            await database.dispose()
        return [
            {
                "action_id": e.action_id,
                "type": e.type,
                "model_id": e.model_id,
                "date": e.action_date.isoformat() if e.action_date else None,
                "received_at": e.received_at.isoformat(),
            }
            for e in entries
        ]

    rows = asyncio.run(read())
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("no events recorded")
    for row in rows:
        click.echo(f"{row['date'] or '-':32} {row['action_id']}  {row['type']:34} {row['model_id'] or '-'}")


@main.command()
@click.option("--exit", "exit_after", is_flag=True, help="Stop once the story is told.")
@pass_cli
def demo(cli: CliContext, exit_after: bool) -> None:
    """The whole loop against the emulator: no Trello credentials needed."""
    from trellis.demo import run_demo
    from trellis.supervisor import RedisUnavailable

    try:
        sys.exit(run_demo(cli.settings, exit_after=exit_after))
    except RedisUnavailable as exc:
        click.echo(f"trellis: {exc}", err=True)
        sys.exit(1)


@main.command()
@pass_cli
def run(cli: CliContext) -> None:
    """Run a receiver and a worker under one supervisor; without Trello credentials, play the demo."""
    from trellis.supervisor import Child, RedisUnavailable, Supervisor, start_local_redis, trellis_command

    settings = cli.settings
    if not settings.has_trello_credentials:
        click.echo("No Trello credentials (TRELLIS_TRELLO_API_KEY, TRELLIS_TRELLO_TOKEN): playing the demo.")
        click.get_current_context().invoke(demo, exit_after=False)
        return
    try:
        local_redis = start_local_redis(settings.redis_url)
    except RedisUnavailable as exc:
        click.echo(f"trellis: {exc}", err=True)
        sys.exit(1)
    try:
        supervisor = Supervisor(
            [Child("receiver", trellis_command("serve")), Child("worker", trellis_command("worker"))]
        )
        code = supervisor.run()
    finally:
        if local_redis is not None:
            local_redis.terminate()
            local_redis.wait(10)
    sys.exit(code)
