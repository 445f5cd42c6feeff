"""`trellis orgs`: the workspaces Trellis follows, over their life: link, list, switch authority, unlink."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from trellis.cli import CLI_ACTOR, CliContext, in_store, main, pass_cli, with_trello

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from jobs.queue import JobQueue
    from membership.database import Database
    from workers.outside.trello import TrelloClient

TRELLO_ID = re.compile(r"[0-9a-fA-F]{24}")


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
    """Create the organization linked to TRELLO_ORG_ID (the workspace's id, not its name), checked with
    Trello first when credentials are configured."""
    from membership.directory import link_organization

    settings = cli.settings
    if settings.has_trello_credentials:
        with_trello(settings, lambda trello, _, __: check_workspace(trello, trello_org_id))
    else:
        click.echo("not checked with Trello (no TRELLIS_TRELLO_API_KEY, TRELLIS_TRELLO_TOKEN)", err=True)

    async def link(session: AsyncSession) -> str:
        organization = await link_organization(
            session, trello_org_id, name=name, owner_email=owner_email, authority=authority, actor=CLI_ACTOR
        )
        return (
            f"organization {organization.id} linked to Trello workspace {trello_org_id}, owner {owner_email}"
        )

    click.echo(in_store(settings, link))


async def check_workspace(trello: TrelloClient, given: str) -> None:
    """The workspace must exist for the token, and be named by its id: a name (slug) changes when the
    workspace is renamed, and the link would silently break."""
    from workers.outside import errors

    try:
        workspace = await trello.get(f"/organizations/{quote(given, safe='')}", {"fields": "id,name"})
    except errors.ABSENT:
        refuse(f"Trello has no workspace {given!r} that this token can see")
    if not TRELLO_ID.fullmatch(given):
        refuse(f"{given!r} is the workspace's name, which can change: link it by its id, {workspace['id']}")


@orgs.command("list")
@pass_cli
def orgs_list(cli: CliContext) -> None:
    """Each organization: its workspace, authority, boards, members, and (with Trello credentials) the
    health of its webhooks."""
    from membership.directory import organization_summaries

    settings = cli.settings
    summaries = in_store(settings, organization_summaries)
    health: dict[str, str] = {}
    if settings.has_trello_credentials and settings.callback_url:
        health = with_trello(
            settings,
            lambda trello, database, _: webhook_health(trello, database, settings.callback_url or ""),
        )
    if not summaries:
        click.echo("no organizations")
    for summary in summaries:
        organization = summary.organization
        workspace = organization.trello_org_id or "not linked"
        hooks = health.get(organization.trello_org_id or "", "webhooks not checked")
        click.echo(
            f"{organization.id:>4}  {workspace:24}  {organization.name[:30]:30}  {organization.authority:6}  "
            f"{summary.boards} board(s), {summary.members} member(s); {hooks}"
        )


async def webhook_health(trello: TrelloClient, database: Database, callback_url: str) -> dict[str, str]:
    """Per linked workspace: how many of its models (itself and its open boards) have an active webhook."""
    from membership.directory import workspace_boards
    from membership.workspaces import linked_organizations
    from workers.workflows.webhooks import webhook_status

    healthy = {
        status.model.id: status.healthy for status in await webhook_status(trello, database, callback_url)
    }
    async with database.transaction() as session:
        workspaces = [o.trello_org_id for o in await linked_organizations(session) if o.trello_org_id]
        watched = {w: [w, *await workspace_boards(session, w, open_only=True)] for w in workspaces}
    return {
        workspace: f"webhooks {sum(healthy.get(model, False) for model in models)}/{len(models)} active"
        for workspace, models in watched.items()
    }


@orgs.command("authority")
@click.argument("trello_org_id")
@click.argument("authority", type=click.Choice(["trello", "local"]))
@click.option("--yes", is_flag=True, help="Switch without asking (for scripts).")
@pass_cli
def orgs_authority(cli: CliContext, trello_org_id: str, authority: str, yes: bool) -> None:
    """Switch who is right for a workspace: `trello` (the store mirrors Trello) or `local` (Trello
    follows the store). Prints first what the next reconciles would change under the new authority."""
    from dataclasses import replace

    from membership.directory import set_authority, workspace_boards
    from trellis.cli.sync import describe_plan
    from trellis.wiring import reconcile_policy
    from workers.reconcile.board import reconcile_board
    from workers.reconcile.workspace import reconcile_workspace

    settings = cli.settings
    policy = replace(reconcile_policy(settings), as_if_authority=authority)  # type: ignore[arg-type]

    async def preview(trello: TrelloClient, database: Database, _: JobQueue) -> list[str]:
        async with database.transaction() as session:
            boards = await workspace_boards(session, trello_org_id, open_only=True)
        plans: list[tuple[str, str, Any]] = [("workspace", trello_org_id, reconcile_workspace)]
        plans += [("board", board, reconcile_board) for board in boards]
        lines: list[str] = []
        for kind, scope_id, reconcile in plans:
            report = await reconcile(trello, database, scope_id, cause="preview", apply=False, policy=policy)
            if report is not None and (kind == "workspace" or report.plan.changes):
                lines += describe_plan(f"{kind} {scope_id}", report.plan)
        return lines

    for line in with_trello(settings, preview):
        click.echo(line)
    if not yes and not click.confirm(f"switch workspace {trello_org_id} to authority {authority}?"):
        refuse("not switched")
    in_store(settings, lambda session: set_authority(session, trello_org_id, authority, actor=CLI_ACTOR))
    click.echo(f"workspace {trello_org_id}: authority {authority}; the next reconciles follow it")


@orgs.command("unlink")
@click.argument("trello_org_id")
@pass_cli
def orgs_unlink(cli: CliContext, trello_org_id: str) -> None:
    """Stop following a workspace: its webhooks to us are removed; its organization, members, boards
    and history stay in the store."""
    from membership.directory import unlink_organization

    settings = cli.settings
    if settings.has_trello_credentials and settings.callback_url:
        removed = with_trello(
            settings,
            lambda trello, database, _: remove_webhooks(
                trello, database, trello_org_id, settings.callback_url or ""
            ),
        )
        click.echo(f"{len(removed)} webhook(s) removed")
    else:
        click.echo(
            "webhooks not removed (no Trello credentials or callback URL): remove them by hand", err=True
        )
    in_store(settings, lambda session: unlink_organization(session, trello_org_id, actor=CLI_ACTOR))
    click.echo(f"workspace {trello_org_id} unlinked; its history is kept")


async def remove_webhooks(
    trello: TrelloClient, database: Database, trello_org_id: str, callback_url: str
) -> list[str]:
    from sqlalchemy import select

    from membership.directory import linked_organization
    from membership.models import Board
    from workers.workflows.webhooks import forget_webhooks

    async with database.transaction() as session:
        organization = await linked_organization(session, trello_org_id)
        boards = (
            await session.scalars(
                select(Board.trello_board_id).where(Board.organization_id == organization.id)
            )
        ).all()
    return await forget_webhooks(trello, callback_url, [trello_org_id, *[b for b in boards if b]])


def refuse(message: str) -> Any:
    click.echo(f"trellis: {message}", err=True)
    raise SystemExit(1)
