"""Reconciling one workspace: its members and their roles, and the list of its boards.

Reads Trello (the workspace, its members with their roles, its boards), then the store, plans with
`workers.workspace_plan` and applies. Offboardings are not applied here: each is a job of its own (one
call a board), so the report hands them to the caller, with the boards linked just now (they need
webhooks and a first reconcile). Knows nothing of arq.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from membership import audit
from membership.boards import membership_by_trello_ids
from membership.database import Database
from membership.workspaces import (
    TrelloBoard,
    adopt_member,
    organization_by_trello_id,
    set_synced_role,
    sync_boards,
    trello_user,
    workspace_view,
)
from workers import errors, metrics
from workers.limiter import Priority
from workers.plan import DEFAULT_POLICY, Policy, Skip
from workers.reconcile import RECONCILER, describe, has_observers, hold_for_approval, record_refusal
from workers.trello import TrelloClient
from workers.workspace_plan import (
    ActualWorkspace,
    AdoptMember,
    DesiredWorkspace,
    Offboard,
    RemoveFromWorkspace,
    SetStoreRole,
    SetWorkspaceRole,
    TrelloMember,
    WorkspaceOperation,
    WorkspacePlan,
    WorkspaceRole,
    plan_workspace,
)

log = structlog.get_logger("workers.reconcile_org")


@dataclass
class WorkspaceReport:
    workspace_id: str
    plan: WorkspacePlan
    applied: list[WorkspaceOperation] = field(default_factory=list)
    refused: list[tuple[WorkspaceOperation, str]] = field(default_factory=list)
    offboard: list[str] = field(default_factory=list)  # members for the caller to offboard
    boards: list[str] = field(default_factory=list)  # the workspace's open boards in Trello
    new_boards: list[str] = field(default_factory=list)  # linked by this run (or, planning, to link)
    approval_id: int | None = None


def trello_members(rows: list[dict[str, Any]]) -> dict[str, TrelloMember]:
    members = {}
    for row in rows:
        member = row.get("member") or {}
        role: WorkspaceRole = "admin" if row.get("memberType") == "admin" else "normal"
        members[row["idMember"]] = TrelloMember(
            role, member.get("username"), member.get("fullName"), bool(row.get("unconfirmed"))
        )
    return members


async def reconcile_org(
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
    # Trello first: the plan must not rest on a store read older than what Trello says.
    workspace = await trello.organization(trello_org_id, priority=priority)
    members = trello_members(await trello.organization_memberships(trello_org_id, priority=priority))
    boards = [
        TrelloBoard(b["id"], b.get("name") or b["id"], bool(b.get("closed")))
        for b in await trello.organization_boards(trello_org_id, filter="all", priority=priority)
    ]
    async with database.transaction() as session:
        organization = await organization_by_trello_id(session, trello_org_id)
        if organization is None:
            log.info("workspace not linked in the store: skipped", workspace=trello_org_id)
            return None
        view = await workspace_view(session, organization)
        if apply:
            # Facts about Trello, never guarded: the plan's observers and the boards that exist.
            organization.observers_allowed = has_observers(workspace)
            new_boards = await sync_boards(session, RECONCILER, organization, boards, cause=cause)
        else:
            new_boards = [b.id for b in boards if b.id not in view.boards]
    policy = replace(policy, authority="local" if organization.authority == "local" else "trello")
    desired = DesiredWorkspace(trello_org_id, view.roles, view.pending)  # type: ignore[arg-type]
    plan = plan_workspace(desired, ActualWorkspace(trello_org_id, members), policy)
    report = WorkspaceReport(
        trello_org_id, plan, boards=[b.id for b in boards if not b.closed], new_boards=new_boards
    )
    if not apply or not plan.changes:
        return report
    if plan.held is not None and not (approved_losing is not None and plan.losing <= approved_losing):
        report.approval_id = await hold_for_approval(
            database, organization_id=organization.id, scope=f"org:{trello_org_id}", held=plan.held,
            operations=plan.operations, losing=plan.losing, cause=cause,
        )  # fmt: skip
        return report
    for operation in plan.operations:
        if isinstance(operation, Offboard):
            report.offboard.append(operation.member_id)
        elif isinstance(operation, SetWorkspaceRole | RemoveFromWorkspace):
            await _apply_in_trello(trello, database, organization.id, operation, report, cause)
        elif isinstance(operation, AdoptMember | SetStoreRole):
            await _apply_in_store(database, organization.id, operation, report, cause)
        elif isinstance(operation, Skip):
            log.info("skipped", member=operation.member_id, reason=operation.reason)
    for operation in report.applied:
        metrics.PLAN_OPERATIONS.labels("workspace", type(operation).__name__).inc()
    log.info(
        "workspace reconciled", workspace=trello_org_id, applied=len(report.applied),
        refused=len(report.refused), offboard=len(report.offboard), new_boards=len(report.new_boards),
    )  # fmt: skip
    return report


async def _apply_in_trello(
    trello: TrelloClient,
    database: Database,
    organization_id: int,
    operation: SetWorkspaceRole | RemoveFromWorkspace,
    report: WorkspaceReport,
    cause: str,
) -> None:
    try:
        if isinstance(operation, SetWorkspaceRole):
            await trello.set_organization_member(report.workspace_id, operation.member_id, operation.role)
        else:
            await trello.remove_organization_member_everywhere(report.workspace_id, operation.member_id)
    except (errors.TrelloBadRequest, errors.TrelloNotFound, errors.TrelloForbidden, errors.LastAdmin) as exc:
        report.refused.append((operation, str(exc)))
        await record_refusal(
            database, organization_id, "trello_workspace", organization_id, operation, exc, cause
        )
        return
    async with database.transaction() as session:
        if isinstance(operation, RemoveFromWorkspace):
            # Whoever was let in by hand gets a user record, so that the audit trail can name them.
            await trello_user(session, operation.member_id, username=operation.username, full_name=None)
        audit.record(
            session, actor=RECONCILER, cause=cause, action=type(operation).__name__,
            entity="trello_workspace", entity_id=organization_id, organization_id=organization_id,
            after=describe(operation),
        )  # fmt: skip
    report.applied.append(operation)


async def _apply_in_store(
    database: Database,
    organization_id: int,
    operation: AdoptMember | SetStoreRole,
    report: WorkspaceReport,
    cause: str,
) -> None:
    async with database.transaction() as session:
        if isinstance(operation, AdoptMember):
            user = await trello_user(
                session, operation.member_id, username=operation.username, full_name=operation.full_name
            )
            await adopt_member(session, RECONCILER, organization_id, user, role=operation.role, cause=cause)
        else:
            _, membership = await membership_by_trello_ids(session, report.workspace_id, operation.member_id)
            assert membership is not None  # planned from this store a moment ago; the scope runs alone
            await set_synced_role(session, RECONCILER, membership, operation.role, cause=cause)
    report.applied.append(operation)
