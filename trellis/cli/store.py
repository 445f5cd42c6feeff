"""Commands on the store: organizations, users, API tokens, the event log."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import click

from trellis.cli import CLI_ACTOR, CliContext, in_store, main, pass_cli

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


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
