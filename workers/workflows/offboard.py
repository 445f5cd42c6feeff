"""Finishing the offboarding Trello leaves half done: out of the workspace, but still on its boards.

Level-triggered like every reconcile: Trello is asked whether the member is really out of the workspace
before anything is removed, so a late, repeated or forged delivery cannot take anyone off a board.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from sqlalchemy import select

from membership import audit, members
from membership.boards import membership_by_trello_ids
from membership.database import Database
from membership.errors import RuleViolation
from membership.models import User
from membership.rules import Actor
from workers.outside import errors
from workers.outside.trello import TrelloClient

log = structlog.get_logger("workers.offboard")

OFFBOARDER = Actor.system("offboard")
# Trello's refusals, and a board the token may not change (its private board the admin cannot see).
OFFBOARD_REFUSALS: tuple[type[errors.TrelloError], ...] = (*errors.REFUSALS, errors.TrelloUnauthorized)


@dataclass
class OffboardReport:
    member_id: str
    skipped: str | None = None
    removed_from: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (board, why)
    store: str = "unchanged"
    organization_id: int | None = None
    email: str | None = None  # the person's email, when the store knows it (for the SCIM policy)
    user_id: int | None = None  # the store's user, when it knows them


async def offboard_member(
    trello: TrelloClient,
    database: Database,
    trello_org_id: str,
    member_id: str,
    *,
    cause: str,
    from_boards: bool = True,
) -> OffboardReport:
    """`from_boards` False: the store's side only (an operator rejected the removals from boards)."""
    report = OffboardReport(member_id)
    workspace = await trello.organization_memberships(trello_org_id)
    if any(row["idMember"] == member_id for row in workspace):
        report.skipped = "still a member of the workspace in Trello"
        return report
    async with database.transaction() as session:
        organization, membership = await membership_by_trello_ids(session, trello_org_id, member_id)
        if organization is None:
            report.skipped = "workspace not linked in the store"
            return report
        if membership is not None and organization.authority == "local":
            # Enforce: the store still wants them; the workspace reconcile reverts the drift instead.
            report.skipped = "the store (authoritative) still has them as a member"
            return report
        report.organization_id = organization.id
        user = await session.scalar(select(User).where(User.trello_member_id == member_id))
        if user is not None:
            report.email, report.user_id = user.email, user.id
        if membership is not None:
            try:
                await members.remove_member(
                    session, OFFBOARDER, organization.id, membership.id, cause=cause, push=False
                )
                report.store = "membership removed"
            except RuleViolation as violation:  # the last owner: the store keeps them, Trello still offboards
                report.store = f"kept: {violation.message}"
        organization_id = organization.id
    # One call a board, not a read and a delete: removing someone who is not there is refused harmlessly.
    boards = await trello.organization_boards(trello_org_id, filter="all") if from_boards else []
    for board in boards:
        try:
            await trello.remove_board_member(board["id"], member_id)
        except errors.ABSENT:
            continue  # not on this board
        except OFFBOARD_REFUSALS as exc:
            report.refused.append((board["id"], str(exc)))
            log.warning("trello refused a removal", board=board["id"], error=type(exc).__name__)
            continue
        report.removed_from.append(board["id"])
    async with database.transaction() as session:
        audit.record(
            session, actor=OFFBOARDER, cause=cause, action=audit.MEMBER_OFFBOARDED, entity="trello_member",
            entity_id=None, organization_id=organization_id,
            after={"member_id": member_id, "boards": report.removed_from, "refused": report.refused,
                   "store": report.store}, trello_member_id=member_id,
        )  # fmt: skip
    log.info(
        "member offboarded", member=member_id, boards=len(report.removed_from), refused=len(report.refused)
    )
    return report
