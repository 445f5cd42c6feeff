"""Adopting a Trello workspace into an empty store: a first sync, Trello taken as it is.

Creates the linked organization with its first owner, its open boards, a user for every member (linked
by Trello member id: Trello shows nobody else's email), their workspace roles and their board access as
overrides (board admin or normal: write; observer: read).
"""

from __future__ import annotations

from membership.database import Database
from membership.directory import add_board, link_organization
from membership.members import BoardGrant
from membership.rules import Actor
from membership.vocabulary import board_access, grant_flags, store_role
from membership.workspaces import adopt_member, trello_user
from workers.outside.limiter import Priority
from workers.outside.trello import TrelloClient, has_observers

ADOPTER = Actor.system("adopt")


async def adopt_workspace(
    trello: TrelloClient,
    database: Database,
    trello_org_id: str,
    *,
    owner_email: str,
    authority: str = "trello",
) -> int:
    """Link the workspace and copy its membership into the store; returns the organization's id."""
    workspace = await trello.organization(trello_org_id)
    members = await trello.organization_memberships(trello_org_id, priority=Priority.BULK)
    boards = await trello.organization_boards(trello_org_id, priority=Priority.BULK)
    board_roles = {b["id"]: await trello.board_memberships(b["id"], priority=Priority.BULK) for b in boards}
    async with database.transaction() as session:
        organization = await link_organization(
            session,
            trello_org_id,
            name=workspace.get("displayName") or workspace.get("name") or trello_org_id,
            owner_email=owner_email,
            authority=authority,
            actor=ADOPTER,
        )
        local_boards = {
            b["id"]: await add_board(session, organization.id, name=b["name"], trello_board_id=b["id"])
            for b in boards
        }
        for row in members:
            member = row.get("member", {})
            user = await trello_user(
                session, row["idMember"], username=member.get("username"), full_name=member.get("fullName")
            )
            grants = [
                BoardGrant(local_boards[board_id].id, *grant_flags(board_access(r["memberType"])))
                for board_id, rows in board_roles.items()
                for r in rows
                if r["idMember"] == row["idMember"]
            ]
            await adopt_member(
                session, ADOPTER, organization.id, user, role=store_role(row["memberType"]), grants=grants,
                cause="adopt workspace",
            )  # fmt: skip
        organization.observers_allowed = has_observers(workspace)
        return organization.id
