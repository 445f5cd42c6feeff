"""Reconciling one workspace: its members and their roles, and the list of its boards.

`WorkspaceSubject` is the workspace's side of `runner.reconcile`: it reads Trello (the workspace, its
members with their roles, its boards), then the store, and plans with `workspace_plan`. Offboardings are
not applied here: each is a job of its own (one call a board), so `offboardings` hands them to the
caller, and `linked_boards` the boards linked just now (they need webhooks and a first reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import structlog

from membership.boards import boards_filed_elsewhere, membership_by_trello_ids
from membership.database import Database
from membership.models import Organization
from membership.vocabulary import trello_workspace_role
from membership.workspaces import (
    adopt_member,
    link_board,
    organization_by_trello_id,
    set_synced_role,
    trello_user,
    update_board,
    workspace_view,
)
from workers.outside import errors
from workers.outside.limiter import Priority
from workers.outside.trello import TrelloClient, has_observers
from workers.reconcile.board import record_departure
from workers.reconcile.board_plan import MoveBoard, UnlinkBoard, plan_departure
from workers.reconcile.plan import DEFAULT_POLICY, Policy
from workers.reconcile.runner import RECONCILER, Observation, Report, audit_change, reconcile
from workers.reconcile.workspace_plan import (
    ActualWorkspace,
    AdoptMember,
    DesiredWorkspace,
    LinkBoard,
    Offboard,
    RecordWorkspaceObservers,
    RemoveFromWorkspace,
    SetStoreRole,
    TrelloBoard,
    TrelloMember,
    UpdateBoard,
    WorkspaceFact,
    WorkspaceOperation,
    board_facts,
    plan_workspace,
)

log = structlog.get_logger("workers.reconcile.workspace")

WorkspaceReport = Report[WorkspaceOperation, WorkspaceFact]


def trello_members(rows: list[dict[str, Any]]) -> dict[str, TrelloMember]:
    members = {}
    for row in rows:
        member = row.get("member") or {}
        role = trello_workspace_role(row.get("memberType"))
        members[row["idMember"]] = TrelloMember(
            role, member.get("username"), member.get("fullName"), bool(row.get("unconfirmed"))
        )
    return members


@dataclass
class WorkspaceSubject:
    trello: TrelloClient
    database: Database
    workspace_id: str  # Trello's
    policy: Policy = DEFAULT_POLICY
    priority: Priority = Priority.EVENT
    kind: str = "workspace"
    _observation: Observation[WorkspaceOperation, WorkspaceFact] | None = None

    async def observe(self) -> Observation[WorkspaceOperation, WorkspaceFact] | None:
        # Trello first: the plan must not rest on a store read older than what Trello says.
        trello, priority = self.trello, self.priority
        workspace = await trello.organization(self.workspace_id, priority=priority)
        members = trello_members(await trello.organization_memberships(self.workspace_id, priority=priority))
        boards = [
            TrelloBoard(b["id"], b.get("name") or b["id"], bool(b.get("closed")))
            for b in await trello.organization_boards(self.workspace_id, filter="all", priority=priority)
        ]
        async with self.database.transaction() as session:
            organization = await organization_by_trello_id(session, self.workspace_id)
            if organization is None:
                return None
            view = await workspace_view(session, organization)
            elsewhere = await boards_filed_elsewhere(session, organization.id, [b.id for b in boards])
        known = {id_: TrelloBoard(id_, board.name, board.closed) for id_, board in view.boards.items()}
        facts = board_facts(self.workspace_id, known, boards, elsewhere)
        facts += await self._departures(set(known) - {b.id for b in boards})
        if organization.observers_allowed != has_observers(workspace):
            facts.append(RecordWorkspaceObservers(has_observers(workspace)))
        policy = replace(self.policy, authority=self.policy.for_workspace(organization.authority))
        desired = DesiredWorkspace(self.workspace_id, view.roles, view.pending)  # type: ignore[arg-type]
        plan = plan_workspace(desired, ActualWorkspace(self.workspace_id, members), policy)
        self._observation = Observation(
            replace(plan, facts=facts), organization.id, "trello_workspace", organization.id
        )
        return self._observation

    async def _departures(self, missing: set[str]) -> list[WorkspaceFact]:
        """Boards the store has here that Trello no longer lists here: each is asked after (rare, one
        call each), to tell a deleted board from one that moved."""
        facts: list[WorkspaceFact] = []
        for board_id in sorted(missing):
            try:
                state = await self.trello.board_state(board_id, priority=self.priority)
            except errors.ABSENT:
                facts.append(plan_departure(board_id, self.workspace_id, None, False, exists=False))
                continue
            except errors.TrelloUnauthorized:  # moved where the token cannot see: left for a person
                log.warning("board no longer visible to the token", board=board_id)
                continue
            now = state.get("idOrganization")
            if now != self.workspace_id:
                async with self.database.transaction() as session:
                    linked = now is not None and await organization_by_trello_id(session, now) is not None
                facts.append(plan_departure(board_id, self.workspace_id, now, linked))
        return facts

    async def record(self, facts: list[WorkspaceFact], cause: str) -> None:
        assert self._observation is not None
        organization_id = self._observation.organization_id
        for departed in facts:
            if isinstance(departed, UnlinkBoard | MoveBoard):
                await record_departure(self.database, departed, cause)
        async with self.database.transaction() as session:
            for fact in facts:
                if isinstance(fact, UnlinkBoard | MoveBoard):
                    continue
                if isinstance(fact, LinkBoard):
                    await link_board(
                        session, RECONCILER, organization_id, fact.board_id, name=fact.name,
                        closed=fact.closed, cause=cause,
                    )  # fmt: skip
                elif isinstance(fact, UpdateBoard):
                    await update_board(session, fact.board_id, name=fact.name, closed=fact.closed)
                else:
                    organization = await session.get(Organization, organization_id)
                    assert organization is not None
                    organization.observers_allowed = fact.allowed

    async def apply(self, operation: WorkspaceOperation, cause: str) -> bool:
        if isinstance(operation, Offboard):
            return False  # handed to the caller: each offboarding is a job of its own
        if isinstance(operation, AdoptMember | SetStoreRole):
            await self._apply_in_store(operation, cause)
            return True
        if isinstance(operation, RemoveFromWorkspace):
            await self.trello.remove_organization_member_everywhere(self.workspace_id, operation.member_id)
        else:
            await self.trello.set_organization_member(self.workspace_id, operation.member_id, operation.role)
        assert self._observation is not None
        async with self.database.transaction() as session:
            if isinstance(operation, RemoveFromWorkspace):
                # Whoever was let in by hand gets a user record, so that the audit trail can name them.
                await trello_user(session, operation.member_id, username=operation.username, full_name=None)
            audit_change(session, self._observation, operation, cause)
        return True

    async def refused(self, operation: WorkspaceOperation, refusal: errors.TrelloError) -> None:
        return None  # nothing to remember: the report and the audit log say it

    async def _apply_in_store(self, operation: AdoptMember | SetStoreRole, cause: str) -> None:
        assert self._observation is not None
        async with self.database.transaction() as session:
            if isinstance(operation, AdoptMember):
                user = await trello_user(
                    session, operation.member_id, username=operation.username, full_name=operation.full_name
                )
                await adopt_member(
                    session, RECONCILER, self._observation.organization_id, user, role=operation.role,
                    cause=cause,
                )  # fmt: skip
            else:
                _, membership = await membership_by_trello_ids(
                    session, self.workspace_id, operation.member_id
                )
                assert membership is not None  # planned from this store a moment ago; the scope runs alone
                await set_synced_role(session, RECONCILER, membership, operation.role, cause=cause)


def offboardings(report: WorkspaceReport) -> list[str]:
    """The members whose offboarding the plan calls for, once it went ahead (not held, not a dry run)."""
    if report.approval_id is not None:
        return []
    return [op.member_id for op in report.plan.operations if isinstance(op, Offboard)]


def linked_boards(report: WorkspaceReport) -> list[str]:
    """The boards the plan links or moves here (just now, or, planning, to be)."""
    here = report.plan.scope.removeprefix("workspace:")
    return [
        fact.board_id
        for fact in report.plan.facts
        if isinstance(fact, LinkBoard) or (isinstance(fact, MoveBoard) and fact.workspace_id == here)
    ]


async def reconcile_workspace(
    trello: TrelloClient,
    database: Database,
    trello_org_id: str,
    *,
    cause: str,
    priority: Priority = Priority.EVENT,
    apply: bool = True,
    approved_losing: frozenset[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> WorkspaceReport | None:
    """Make one workspace and the store agree; None when the workspace is not linked in the store."""
    subject = WorkspaceSubject(trello, database, trello_org_id, policy, priority)
    return await reconcile(subject, database, cause=cause, apply=apply, approved_losing=approved_losing)
