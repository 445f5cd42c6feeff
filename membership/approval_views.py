"""Pending approvals as a person reads them: who would lose or gain what, on which board, and why the
plan was held. The console shows these; `membership.approvals` records and decides them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import rules
from membership.models import Board, Organization, PendingApproval, User
from membership.rules import Actor

# What each operation of a held plan does, in words; `{role}` and `{access}` are the operation's own.
CHANGES = {
    "RemoveFromTrello": "taken off the board in Trello",
    "SetTrelloRole": "made board {role} in Trello",
    "SetStoreAccess": "store access set to {access}",
    "SetStoreRole": "store role set to {role}",
    "SetWorkspaceRole": "made workspace {role} in Trello",
    "RemoveFromWorkspace": "taken out of the workspace and its boards in Trello",
    "Offboard": "let go: out of the store and off every board of the workspace",
    "AdoptMember": "taken into the store as {role}",
}


@dataclass(frozen=True)
class Change:
    person: str  # a name, else an email, else the Trello member id
    change: str
    reason: str
    loses: bool  # takes access from the person (what the guard counts)


@dataclass(frozen=True)
class ApprovalView:
    id: int
    kind: str
    subject: str  # the board or workspace it is about, by name where the store knows it
    held_because: str
    created_at: datetime
    changes: list[Change]


async def open_approvals_of(session: AsyncSession, actor: Actor, organization_id: int) -> list[ApprovalView]:
    """The organization's open approvals, oldest first, each as a readable list of changes."""
    rules.require_admin(actor)
    pending = (
        await session.scalars(
            select(PendingApproval)
            .where(PendingApproval.organization_id == organization_id, PendingApproval.decided_at.is_(None))
            .order_by(PendingApproval.id)
        )
    ).all()
    member_ids = {member for approval in pending for member in _members_named(approval)}
    people = await _people(session, member_ids)
    return [await _view(session, approval, people) for approval in pending]


async def _view(session: AsyncSession, approval: PendingApproval, people: dict[str, str]) -> ApprovalView:
    payload = approval.payload
    if approval.kind == "wave":
        changes = [
            Change(
                people.get(member, member),
                "offboarded: off " + (", ".join(payload.get("boards", {}).get(member, [])) or "every board"),
                f"left workspace {payload.get('workspace', '')}",
                loses=True,
            )
            for member in payload.get("members", [])
        ]
    elif approval.kind == "scim_deactivate":
        who = payload.get("email") or people.get(payload.get("member_id") or "", payload.get("member_id", ""))
        changes = [Change(str(who), "Atlassian account deactivated (every Atlassian product)", "offboarded",
                          loses=True)]  # fmt: skip
    else:
        losing = set(payload.get("losing", []))
        changes = [_change(op, people, losing) for op in payload.get("operations", [])]
    subject, trello_id = await _subject(session, approval.scope), approval.scope.partition(":")[2]
    return ApprovalView(
        id=approval.id,
        kind=approval.kind,
        subject=subject,
        # The guard's summary names the board by its Trello id: by name here, as the heading does.
        held_because=approval.summary.replace(f"board {trello_id}", subject)
        if trello_id
        else approval.summary,
        created_at=approval.created_at,
        changes=changes,
    )


def _change(operation: dict[str, Any], people: dict[str, str], losing: set[str]) -> Change:
    member = str(operation.get("member_id", ""))
    template = CHANGES.get(str(operation.get("operation")))
    if template is None:  # an operation this page does not know yet: shown as recorded
        fields = {k: v for k, v in operation.items() if k not in ("operation", "member_id", "reason")}
        change = f"{operation.get('operation')} {fields}"
    else:
        change = template.format(role=operation.get("role", ""), access=operation.get("access", ""))
    return Change(people.get(member, member), change, str(operation.get("reason", "")), member in losing)


def _members_named(approval: PendingApproval) -> Iterable[str]:
    payload = approval.payload
    yield from payload.get("members", [])
    yield from (str(op.get("member_id")) for op in payload.get("operations", []) if op.get("member_id"))
    if payload.get("member_id"):
        yield str(payload["member_id"])


async def _people(session: AsyncSession, trello_member_ids: set[str]) -> dict[str, str]:
    """Trello member id -> the name (else email) of the user linked to it, in one read."""
    if not trello_member_ids:
        return {}
    rows = await session.execute(
        select(User.trello_member_id, User.name, User.email).where(
            User.trello_member_id.in_(trello_member_ids)
        )
    )
    return {member: name or email or member for member, name, email in rows if member is not None}


async def _subject(session: AsyncSession, scope: str) -> str:
    """A scope ("board:<Trello id>", "workspace:<Trello id>", "account:<who>") by its name in the store."""
    kind, _, trello_id = scope.partition(":")
    if kind == "board":
        name = await session.scalar(select(Board.name).where(Board.trello_board_id == trello_id))
        return f"board {name}" if name else scope
    if kind in ("workspace", "org"):
        name = await session.scalar(select(Organization.name).where(Organization.trello_org_id == trello_id))
        return f"workspace {name}" if name else scope
    return scope
