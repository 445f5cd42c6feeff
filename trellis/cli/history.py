"""Reading the audit trail: `trellis audit` (the log, filtered) and `trellis why` (one person's story)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from trellis.cli import CliContext, in_store, main, pass_cli, with_trello

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from membership.history import AuditFilter, Names, Person, StoredAccess
    from membership.models import AuditEntry


@main.command()
@click.option("--member", help="Only changes about this person: an email, a Trello member id or username.")
@click.option("--board", help="Only changes to this board (its Trello id).")
@click.option("--since", type=click.DateTime(), help="Only changes from this date or time on (UTC).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@pass_cli
def audit(
    cli: CliContext, member: str | None, board: str | None, since: datetime | None, limit: int, as_json: bool
) -> None:
    """Who changed what, when, and the cause of each change (newest first)."""
    from membership.history import audit_page, entry_line, entry_record, names_of

    async def read(session: AsyncSession) -> tuple[list[AuditEntry], Names]:
        where = await audit_filter(session, member, board, since)
        entries = (await audit_page(session, where, limit=limit, offset=0)).items
        return entries, await names_of(session, entries)

    entries, names = in_store(cli.settings, read)
    if not entries and not as_json:
        click.echo("no audit entries match")
    for entry in entries:
        click.echo(json.dumps(entry_record(entry)) if as_json else entry_line(entry, names))


@main.command()
@click.argument("who")
@click.option("--board", help="Only this board (its Trello id).")
@pass_cli
def why(cli: CliContext, who: str, board: str | None) -> None:
    """A person's access now, in the store and in Trello, and the history that led there (oldest first).
    WHO is an email, a Trello member id or a Trello username."""
    from membership.history import (
        AuditFilter,
        access_now,
        entry_line,
        find_board,
        find_person,
        history,
        names_of,
    )

    async def read(session: AsyncSession) -> tuple[Person, list[StoredAccess], list[str], str | None]:
        person = await find_person(session, who)
        found = None if board is None else await find_board(session, board)
        where = AuditFilter(person=person, board_id=None if found is None else found.id)
        stored = await access_now(session, person, where.board_id)
        entries = await history(session, where)
        names = await names_of(session, entries)
        trello_board = None if found is None else found.trello_board_id
        return person, stored, [entry_line(entry, names) for entry in entries], trello_board

    person, stored, lines, trello_board = in_store(cli.settings, read)
    user = person.user
    known = [f"user {user.id}" if user else "no user in the store"]
    known.append(f"Trello member {person.trello_member_id}" if person.trello_member_id else "not in Trello")
    title = (user.name or user.email) if user and (user.name or user.email) else person.named
    click.echo(f"{title}: {', '.join(known)}")
    click.echo("In the store:")
    for access in stored:
        boards = ", ".join(f"{name} ({level})" for name, level in access.boards.items()) or "no board"
        click.echo(f"  {access.organization} ({access.role}): {boards}")
    if not stored:
        click.echo("  no membership")
    click.echo("In Trello:")
    for line in trello_boards(cli, person, trello_board):
        click.echo(f"  {line}")
    click.echo("How it came to be, oldest first:")
    for line in lines:
        click.echo(f"  {line}")
    if not lines:
        click.echo("  nothing in the audit log")


async def audit_filter(
    session: AsyncSession, member: str | None, board: str | None, since: datetime | None
) -> AuditFilter:
    from membership.history import AuditFilter, find_board, find_person

    return AuditFilter(
        person=None if member is None else await find_person(session, member),
        board_id=None if board is None else (await find_board(session, board)).id,
        since=None if since is None else since.replace(tzinfo=since.tzinfo or UTC),
    )


def trello_boards(cli: CliContext, person: Person, board: str | None) -> list[str]:
    """The open boards Trello has the person on (only `board`, if given), asked under the shared limit."""
    if person.trello_member_id is None:
        return ["not linked to a Trello member"]
    if not cli.settings.has_trello_credentials:
        return ["not asked: no Trello credentials (TRELLIS_TRELLO_API_KEY, TRELLIS_TRELLO_TOKEN)"]
    member = person.trello_member_id

    async def ask(trello: Any, *_: Any) -> list[dict[str, Any]]:
        boards: list[dict[str, Any]] = await trello.member_boards(member)
        return boards

    found = [b for b in with_trello(cli.settings, ask) if board is None or b["id"] == board]
    return [f"on {b.get('name') or b['id']} ({b['id']})" for b in found] or [
        "on no open board this token sees"
    ]
