"""Commands that talk to Trello: plan (a dry run), resync, webhooks."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from trellis.cli import CliContext, main, pass_cli, with_queue, with_trello

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from jobs.queue import JobQueue
    from membership.database import Database
    from workers.outside.trello import TrelloClient
    from workers.reconcile.plan import Plan
    from workers.reconcile.runner import Report

    # A reconcile function (board or workspace), called here to plan only.
    Reconcile = Callable[..., Awaitable[Report[Any, Any] | None]]


@main.command()
@click.option("--org", "orgs", multiple=True, help="A linked workspace's Trello id (repeatable).")
@click.option("--board", "boards", multiple=True, help="A linked board's Trello id (repeatable).")
@pass_cli
def plan(cli: CliContext, orgs: tuple[str, ...], boards: tuple[str, ...]) -> None:
    """Show what a reconcile of each workspace and board would change, changing nothing."""
    from trellis.wiring import reconcile_policy
    from workers.reconcile.board import reconcile_board
    from workers.reconcile.workspace import reconcile_workspace

    if not orgs and not boards:
        raise click.UsageError("name at least one --org or --board")
    policy = reconcile_policy(cli.settings)

    async def run(trello: TrelloClient, database: Database, _: JobQueue) -> list[str]:
        lines = []
        scopes: list[tuple[str, str, Reconcile]] = [("workspace", o, reconcile_workspace) for o in orgs]
        scopes += [("board", board, reconcile_board) for board in boards]
        for kind, scope_id, reconcile in scopes:
            report = await reconcile(trello, database, scope_id, cause="plan", apply=False, policy=policy)
            if report is None:
                lines.append(f"{kind} {scope_id}: not linked in the store")
            else:
                lines += describe_plan(f"{kind} {scope_id}", report.plan)
        return lines

    for line in with_trello(cli.settings, run):
        click.echo(line)


def describe_plan(what: str, plan: Plan[Any, Any]) -> list[str]:
    """A plan as `trellis plan` prints it: its changes (and why it would be held), then each entry."""
    from workers.reconcile.plan import describe

    held = f" (held: {plan.held})" if plan.held else ""
    lines = [f"{what}: {len(plan.changes)} change(s){held}"]
    lines += [f"  {type(op).__name__} {op.member_id}: {op.reason}" for op in plan.operations]
    for fact in plan.facts:
        fields = ", ".join(f"{key}={value}" for key, value in describe(fact).items() if key != "operation")
        lines.append(f"  record {type(fact).__name__}: {fields}")
    return lines


@main.command()
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the reconciles to the end.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to follow them at most.")
@pass_cli
def resync(cli: CliContext, wait: bool, timeout: float) -> None:
    """Reconcile every linked workspace and board now (at bulk priority), sweep the outbox, check the
    webhooks: what the scheduled resync does. The workers do the work; this follows it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from membership.database import Database
    from workers.runtime.resync import request_resync
    from workers.runtime.scopes import Scopes

    settings = cli.settings

    async def run(queue: JobQueue) -> int:
        scopes = Scopes(queue.redis, queue, debounce=0)
        database = Database(settings.database_url)
        try:
            request = await request_resync(database, scopes, queue, reason="resync (trellis resync)")
        finally:
            await database.dispose()
        click.echo(
            f"{len(request.scopes)} workspace(s) and board(s) queued for a reconcile, "
            f"{len(request.changes)} pending change(s) pushed again, webhooks to be checked"
        )
        if not wait or not request.scopes:
            return 0
        if not await queue.redis.exists(f"{settings.queue_name}:health-check"):
            click.echo("no worker has reported in on this queue: start one with `trellis worker`", err=True)
        deadline = time.monotonic() + timeout
        columns = (TextColumn("reconciling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns) as progress:
            task = progress.add_task("resync", total=len(request.scopes))
            while True:
                left = sum(await scopes.pending(request.scopes))
                progress.update(task, completed=len(request.scopes) - left)
                if left == 0:
                    return 0
                if time.monotonic() > deadline:
                    click.echo(f"{left} still queued or running after {timeout:.0f} s", err=True)
                    return 1
                await asyncio.sleep(0.5)

    sys.exit(with_queue(settings, run))


@main.group()
def webhooks() -> None:
    """Trello webhooks to our callback URL: list, ensure, delete."""


def callback_url(cli: CliContext) -> str:
    if not cli.settings.callback_url:
        click.echo("trellis: set TRELLIS_CALLBACK_URL, the public URL Trello calls", err=True)
        sys.exit(2)
    return cli.settings.callback_url


@webhooks.command("list")
@pass_cli
def webhooks_list(cli: CliContext) -> None:
    """Each linked workspace and open board with its webhook: active, failures, or missing.
    Exits 1 when one is missing or inactive."""
    from workers.workflows.webhooks import webhook_status

    url = callback_url(cli)

    async def run(trello: TrelloClient, database: Database, _: JobQueue) -> list[Any]:
        return await webhook_status(trello, database, url)

    statuses = with_trello(cli.settings, run)
    for status in statuses:
        hook = status.webhook
        state = (
            "missing"
            if hook is None
            else f"{'active' if hook.get('active') else 'INACTIVE'} "
            f"failures={hook.get('consecutiveFailures', 0)} id={hook['id']}"
        )
        click.echo(f"{status.model.kind:9} {status.model.id}  {status.model.name[:30]:30}  {state}")
    if not statuses:
        click.echo("no linked workspace")
    sys.exit(0 if all(status.healthy for status in statuses) else 1)


@webhooks.command("ensure")
@pass_cli
def webhooks_ensure(cli: CliContext) -> None:
    """Create the missing webhooks and switch inactive ones on again. Exits 1 when one could not be."""
    from workers.workflows.webhooks import ensure_webhooks

    url = callback_url(cli)

    async def run(trello: TrelloClient, database: Database, _: JobQueue) -> Any:
        return await ensure_webhooks(trello, database, url)

    report = with_trello(cli.settings, run)
    click.echo(
        f"{len(report.ok)} ok, {len(report.created)} created, {len(report.reactivated)} reactivated, "
        f"{len(report.failed)} failed"
        + (
            f", {len(report.gone)} board(s) gone from Trello (let go of by their next reconcile)"
            if report.gone
            else ""
        )
    )
    for model, why in report.failed:
        click.echo(f"  {model}: {why}", err=True)
    sys.exit(1 if report.failed else 0)


@webhooks.command("delete")
@click.argument("webhook_ids", nargs=-1)
@click.option("--all", "delete_all", is_flag=True, help="Every webhook of the token to our callback URL.")
@pass_cli
def webhooks_delete(cli: CliContext, webhook_ids: tuple[str, ...], delete_all: bool) -> None:
    """Delete the given webhooks, or with --all every one calling our callback URL."""
    if not webhook_ids and not delete_all:
        raise click.UsageError("name webhook ids, or --all")
    url = callback_url(cli)

    async def run(trello: TrelloClient, database: Database, _: JobQueue) -> list[tuple[str, str]]:
        from workers.outside.errors import TrelloNotFound

        ids = list(webhook_ids)
        if delete_all:
            ids += [hook["id"] for hook in await trello.webhooks() if hook.get("callbackURL") == url]
        outcomes = []
        for webhook_id in ids:
            try:
                await trello.delete_webhook(webhook_id)
                outcomes.append((webhook_id, "deleted"))
            except TrelloNotFound:
                outcomes.append((webhook_id, "no such webhook"))
        return outcomes

    outcomes = with_trello(cli.settings, run)
    for webhook_id, outcome in outcomes:
        click.echo(f"{webhook_id}: {outcome}")
    click.echo(f"{sum(o == 'deleted' for _, o in outcomes)} webhook(s) deleted")
    sys.exit(0 if all(o == "deleted" for _, o in outcomes) else 1)
