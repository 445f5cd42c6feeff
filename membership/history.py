"""Reading the audit log: who changed what, when, and why, for a person, a board or an organization.

`membership.audit` writes the log; this reads it. A person is named as operators know them (an email, a
Trello member id or username) and found by both their user and their Trello member id, since changes
about someone Trellis never linked to a user (a guest, someone offboarded) carry only the latter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import rules
from membership.audit import MEMBER_OFFBOARDED
from membership.boards import effective_access
from membership.errors import NotFound
from membership.invites import valid_email
from membership.members import find_member
from membership.models import AuditEntry, Board, EventLogEntry, Membership, Organization, User
from membership.paging import Page, paginate
from membership.rules import Actor
from membership.vocabulary import Access

TRELLO_ID = re.compile(r"^[0-9a-f]{24}$")
TRELLO_ACTION = re.compile(r"action:([0-9a-f]{24})")  # how a cause names the Trello action behind it


@dataclass(frozen=True)
class Person:
    """Whom a history is about: the store's user (if there is one) and the Trello member (if known)."""

    named: str
    user: User | None
    trello_member_id: str | None


@dataclass(frozen=True)
class AuditFilter:
    organization_id: int | None = None
    person: Person | None = None
    board_id: int | None = None  # the store's
    since: datetime | None = None


async def find_person(session: AsyncSession, who: str) -> Person:
    """The person `who` names: an email, a Trello member id or a Trello username. A Trello id the store
    has no user for still names someone: their history as Trello member."""
    who = who.strip()
    if "@" in who:
        user = await session.scalar(select(User).where(User.email == valid_email(who)))
    else:
        user = await session.scalar(
            select(User).where(or_(User.trello_member_id == who, User.trello_username == who.lstrip("@")))
        )
    if user is not None:
        return Person(who, user, user.trello_member_id)
    if TRELLO_ID.match(who):
        return Person(who, None, who)
    raise NotFound(f"no one known as {who!r}: give an email, a Trello member id or a Trello username")


async def find_board(session: AsyncSession, board: str) -> Board:
    """A linked board by its Trello id (or the store's id)."""
    found = await session.scalar(select(Board).where(Board.trello_board_id == board))
    if found is None and board.isdigit() and len(board) < 19:
        found = await session.get(Board, int(board))
    if found is None:
        raise NotFound(f"no board {board!r} in the store: give a linked board's Trello id")
    return found


def entries(where: AuditFilter) -> Select[AuditEntry]:
    """The entries `where` selects, newest first."""
    statement = select(AuditEntry)
    if where.organization_id is not None:
        statement = statement.where(AuditEntry.organization_id == where.organization_id)
    if where.person is not None:
        about = []
        if where.person.user is not None:
            about.append(AuditEntry.user_id == where.person.user.id)
        if where.person.trello_member_id is not None:
            about.append(AuditEntry.trello_member_id == where.person.trello_member_id)
        statement = statement.where(or_(*about))
    if where.board_id is not None:
        statement = statement.where(AuditEntry.board_id == where.board_id)
    if where.since is not None:
        statement = statement.where(AuditEntry.at >= where.since)
    return statement.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


async def organization_audit(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    *,
    member_id: int | None = None,
    trello_member_id: str | None = None,
    board_id: int | None = None,
    since: datetime | None = None,
    limit: int,
    offset: int,
) -> Page[AuditEntry]:
    """A page of one organization's audit log, newest first, for its owners and admins: about one member
    (by membership id, else by Trello member id), one board, from a time on."""
    rules.require_admin(actor)
    person = None
    if member_id is not None:
        user = (await find_member(session, organization_id, member_id)).user
        person = Person(str(member_id), user, user.trello_member_id)
    elif trello_member_id is not None:
        person = await find_person(session, trello_member_id)
    where = AuditFilter(organization_id=organization_id, person=person, board_id=board_id, since=since)
    return await audit_page(session, where, limit=limit, offset=offset)


@dataclass(frozen=True)
class Known:
    label: str  # a name, else an email, else an id
    handle: str | None  # what finds the person again (`find_person`): their email, else Trello member id


@dataclass(frozen=True)
class Names:
    """What people and boards are called, for entries that name them by id."""

    users: dict[int, Known] = field(default_factory=dict)  # by user id
    members: dict[str, Known] = field(default_factory=dict)  # by Trello member id, for users linked to one
    boards: dict[int, str] = field(default_factory=dict)  # board id -> name
    trello_boards: dict[str, str] = field(default_factory=dict)  # Trello board id -> name, for linked boards
    actions: dict[str, str] = field(default_factory=dict)  # Trello action id -> its type, from the event log

    def cause(self, entry: AuditEntry) -> str:
        """The cause, with each Trello action it names told by its type (`action:6b11…` says nothing to
        a person; `Trello action removeMemberFromBoard 6b11…` does)."""
        return TRELLO_ACTION.sub(
            lambda found: (
                f"Trello action {self.actions[found[1]]} {found[1]}" if found[1] in self.actions else found[0]
            ),
            entry.cause,
        )

    def person(self, entry: AuditEntry) -> Known | None:
        """Whom the entry is about: by user if it names one, else by the Trello member it names (an
        entry Trellis wrote about a Trello operation), by name wherever the store knows it."""
        if entry.user_id is not None:
            return self.users.get(entry.user_id, Known(f"user {entry.user_id}", None))
        if entry.trello_member_id is not None:
            member = entry.trello_member_id
            return self.members.get(member, Known(f"Trello member {member}", member))
        return None

    def actor(self, entry: AuditEntry) -> str:
        """Who made the change, as a person reads it: a user by name, Trellis's own work as Trellis's."""
        user_id = acting_user(entry.actor)
        if user_id is not None and user_id in self.users:
            return self.users[user_id].label
        kind, _, rest = entry.actor.partition(":")
        return f"Trellis ({rest})" if kind == "system" else entry.actor

    def board(self, entry: AuditEntry) -> str | None:
        if entry.board_id is None:
            return None
        return self.boards.get(entry.board_id, f"board {entry.board_id}")

    def detail(self, entry: AuditEntry) -> str | None:
        """What an entry that changed many things in one step did: an offboarding names the boards it took
        the person off in Trello, and those Trello refused (a board the store does not link stays an id)."""
        offboarding = offboarding_boards(entry)
        if offboarding is None:
            return None
        removed, refused = (
            [self.trello_boards.get(board, board) for board in boards] for boards in offboarding
        )
        told = f"off {', '.join(removed)} in Trello" if removed else "on no board in Trello"
        return f"{told}; Trello refused {', '.join(refused)}" if refused else told


async def names_of(session: AsyncSession, entries: list[AuditEntry]) -> Names:
    """The names of the people and boards `entries` are about (boards by the store's id, or by Trello's
    where an offboarding names them), and of the Trello actions behind them, in three reads (gone ones
    stay ids)."""
    user_ids = {e.user_id for e in entries if e.user_id is not None}
    user_ids |= {user for e in entries if (user := acting_user(e.actor)) is not None}
    member_ids = {e.trello_member_id for e in entries if e.user_id is None and e.trello_member_id is not None}
    board_ids = {e.board_id for e in entries if e.board_id is not None}
    trello_board_ids = {board for e in entries for boards in offboarding_boards(e) or () for board in boards}
    users = (
        await session.execute(
            select(User.id, User.name, User.email, User.trello_member_id).where(
                or_(User.id.in_(user_ids), User.trello_member_id.in_(member_ids))
            )
        )
    ).all()
    boards = (
        await session.execute(
            select(Board.id, Board.name, Board.trello_board_id).where(
                or_(Board.id.in_(board_ids), Board.trello_board_id.in_(trello_board_ids))
            )
        )
    ).all()
    action_ids = {action for e in entries for action in TRELLO_ACTION.findall(e.cause)}
    actions = (
        await session.execute(
            select(EventLogEntry.action_id, EventLogEntry.type).where(EventLogEntry.action_id.in_(action_ids))
        )
    ).all()
    known = {id_: Known(name or email or f"user {id_}", email or member)
             for id_, name, email, member in users}  # fmt: skip
    return Names(
        users=known,
        members={member: known[id_] for id_, _, _, member in users if member is not None},
        boards={id_: name for id_, name, _ in boards if id_ in board_ids},
        trello_boards={trello_id: name for _, name, trello_id in boards if trello_id in trello_board_ids},
        actions={action: type_ for action, type_ in actions},
    )


def offboarding_boards(entry: AuditEntry) -> tuple[list[str], list[str]] | None:
    """The Trello boards an offboarding entry names: (those it took the person off, those Trello
    refused); None for any other entry."""
    if entry.action != MEMBER_OFFBOARDED or not isinstance(entry.after, dict):
        return None
    refused = [board for board, _ in entry.after.get("refused") or []]
    return list(entry.after.get("boards") or []), refused


def acting_user(actor: str) -> int | None:
    """The user an entry's actor names (`user:<id>`, a change made through the API or the console)."""
    kind, _, rest = actor.partition(":")
    return int(rest) if kind == "user" and rest.isdigit() and len(rest) < 19 else None


def action_words(action: str) -> str:
    """An entry's action as words: `board_access_synced` and `RemoveFromTrello` alike."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", action).replace("_", " ").lower()


def entry_line(entry: AuditEntry, names: Names | None = None) -> str:
    """One line: when, what, about whom and which board, by whom, and the cause; people and boards by
    name where `names` has them."""
    names = names or Names()
    person, board = names.person(entry), names.board(entry)
    subject = " ".join(part for part in (person and person.label, board and f"on {board}") if part)
    subject = subject or f"{entry.entity} {entry.entity_id or ''}".strip()
    detail = names.detail(entry)
    subject = f"{subject} ({detail})" if detail else subject
    return (
        f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.action:22} {subject:36} by {names.actor(entry)}  "
        f"cause: {names.cause(entry)}"
    )


def entry_record(entry: AuditEntry) -> dict[str, Any]:
    """The entry as plain JSON-ready data, as `trellis audit --json` and the API give it."""
    return {
        "id": entry.id, "at": entry.at.isoformat(), "organization_id": entry.organization_id,
        "actor": entry.actor, "cause": entry.cause, "action": entry.action, "entity": entry.entity,
        "entity_id": entry.entity_id, "user_id": entry.user_id, "trello_member_id": entry.trello_member_id,
        "board_id": entry.board_id, "before": entry.before, "after": entry.after,
    }  # fmt: skip


async def audit_page(
    session: AsyncSession, where: AuditFilter, *, limit: int, offset: int
) -> Page[AuditEntry]:
    """The newest entries first, a page at a time."""
    return await paginate(session, entries(where), limit, offset)


async def history(session: AsyncSession, where: AuditFilter, *, limit: int = 1000) -> list[AuditEntry]:
    """The `limit` latest entries, in the order they happened: oldest first."""
    newest = (await session.scalars(entries(where).limit(limit))).all()
    return list(reversed(newest))


@dataclass(frozen=True)
class StoredAccess:
    """A person's membership of one organization as the store has it, and the boards it gives access to."""

    organization_id: int
    organization: str
    trello_org_id: str | None
    role: str
    boards: dict[str, Access]  # board name -> read or write; boards with no access are left out


async def access_now(
    session: AsyncSession, person: Person, board_id: int | None = None
) -> list[StoredAccess]:
    """What the store gives the person now, organization by organization (one board's, with `board_id`)."""
    if person.user is None:
        return []
    memberships = (
        await session.scalars(
            select(Membership).where(Membership.user_id == person.user.id).order_by(Membership.id)
        )
    ).all()
    found = []
    for membership in memberships:
        organization = await session.get(Organization, membership.organization_id)
        assert organization is not None  # a membership's foreign key guarantees it
        statement = select(Board).where(Board.organization_id == organization.id).order_by(Board.name)
        if board_id is not None:
            statement = statement.where(Board.id == board_id)
        boards = {
            board.name: effective_access(membership, board.id)
            for board in (await session.scalars(statement)).all()
        }
        found.append(
            StoredAccess(organization.id, organization.name, organization.trello_org_id, membership.role,
                         {name: access for name, access in boards.items() if access != "none"})
        )  # fmt: skip
    return found
