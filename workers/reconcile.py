"""Reconciling one board: read Trello and the store, plan, apply each operation with its audit record.

Knows nothing of arq: `workers.jobs` calls it, and `trellis plan` calls it with `apply=False`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import structlog
from sqlalchemy import update

from membership import approvals, audit
from membership.boards import board_by_trello_id, board_view, set_board_access
from membership.database import Database
from membership.models import Organization
from membership.rules import Actor
from membership.workspaces import linked_memberships
from workers import errors, metrics
from workers.limiter import Priority
from workers.plan import (
    DEFAULT_POLICY,
    ActualBoard,
    DesiredBoard,
    Operation,
    Plan,
    Policy,
    RemoveFromTrello,
    SetStoreAccess,
    SetTrelloRole,
    Skip,
    plan_board,
)
from workers.trello import TrelloClient

log = structlog.get_logger("workers.reconcile")

RECONCILER = Actor.system("reconcile")


@dataclass
class BoardReport:
    board_id: str
    plan: Plan
    applied: list[Operation] = field(default_factory=list)
    refused: list[tuple[Operation, str]] = field(
        default_factory=list
    )  # Trello said no: reported, not retried
    approval_id: int | None = None


def has_observers(workspace: dict[str, Any]) -> bool:
    """Whether a workspace's plan has board observers: Trello lists it among its premium features."""
    return "observers" in workspace.get("premiumFeatures", [])


async def observers_allowed(
    trello: TrelloClient, database: Database, organization: Organization, priority: Priority
) -> bool:
    """What the store remembers of the workspace's plan (each workspace reconcile reads it again);
    Trello is asked only the first time, so that a resync costs one call a board."""
    if organization.observers_allowed is not None:
        return organization.observers_allowed
    allowed = has_observers(await trello.organization(organization.trello_org_id or "", priority=priority))
    await remember_observers(database, organization.id, allowed)
    return allowed


async def remember_observers(database: Database, organization_id: int, allowed: bool) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(observers_allowed=allowed)
        )


async def hold_for_approval(
    database: Database,
    *,
    organization_id: int,
    scope: str,
    held: str,
    operations: Iterable[Any],
    losing: frozenset[str],
    cause: str,
) -> int:
    """Record a plan the mass-change guard held as a pending approval (one open per scope)."""
    async with database.transaction() as session:
        approval = await approvals.request(
            session, kind="plan", organization_id=organization_id, scope=scope, summary=held,
            payload={"operations": [describe(op) for op in operations], "losing": sorted(losing)},
            actor=RECONCILER, cause=cause,
        )  # fmt: skip
    log.warning("plan held for an operator", scope=scope, reason=held, approval=approval.id)
    return approval.id


async def reconcile_board(
    trello: TrelloClient,
    database: Database,
    trello_board_id: str,
    *,
    cause: str,
    priority: Priority = Priority.EVENT,
    apply: bool = True,
    approved_losing: frozenset[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> BoardReport | None:
    """Make one board and the store agree; None when the board is not linked in the store.

    `approved_losing`: the members an operator approved taking access from; a held plan that takes it
    from no one else goes ahead. `policy` brings the configured rules; authority and observers are the
    workspace's own.
    """
    # Trello first: the plan must not rest on a store read older than what Trello says.
    roles = {
        row["idMember"]: row["memberType"]
        for row in await trello.board_memberships(trello_board_id, priority=priority)
    }
    async with database.transaction() as session:
        board = await board_by_trello_id(session, trello_board_id)
        if board is None:
            log.info("board not linked in the store: skipped", board=trello_board_id)
            return None
        view = await board_view(session, board)
    policy = replace(
        policy,
        authority="local" if view.organization.authority == "local" else "trello",
        observers_allowed=await observers_allowed(trello, database, view.organization, priority),
    )
    plan = plan_board(
        DesiredBoard(trello_board_id, view.access, view.pending), ActualBoard(trello_board_id, roles), policy
    )
    report = BoardReport(trello_board_id, plan)
    if not apply or not plan.changes:
        return report
    if plan.held is not None and not (approved_losing is not None and plan.losing <= approved_losing):
        report.approval_id = await hold_for_approval(
            database, organization_id=view.organization.id, scope=f"board:{trello_board_id}",
            held=plan.held, operations=plan.operations, losing=plan.losing, cause=cause,
        )  # fmt: skip
        return report
    for operation in plan.operations:
        if isinstance(operation, SetTrelloRole | RemoveFromTrello):
            await _apply_in_trello(
                trello, database, view.board.id, view.organization.id, operation, report, cause
            )
        elif isinstance(operation, Skip):
            log.info("skipped", member=operation.member_id, reason=operation.reason)
    store_operations = [op for op in plan.operations if isinstance(op, SetStoreAccess)]
    if store_operations:
        async with database.transaction() as session:
            board = await board_by_trello_id(session, trello_board_id)
            assert board is not None
            memberships = await linked_memberships(session, board.organization_id)
            for op in store_operations:
                membership = memberships.get(op.member_id)
                if membership is None:
                    # Offboarded between the plan and now: there is no access left to record.
                    log.info("skipped: no longer a member in the store", member=op.member_id)
                    continue
                await set_board_access(session, RECONCILER, membership, board.id, op.access, cause=cause)
                report.applied.append(op)
    for operation in report.applied:
        metrics.PLAN_OPERATIONS.labels("board", type(operation).__name__).inc()
    log.info(
        "board reconciled", board=trello_board_id, applied=len(report.applied), refused=len(report.refused)
    )
    return report


async def _apply_in_trello(
    trello: TrelloClient,
    database: Database,
    board_id: int,
    organization_id: int,
    operation: SetTrelloRole | RemoveFromTrello,
    report: BoardReport,
    cause: str,
) -> None:
    try:
        if isinstance(operation, SetTrelloRole):
            await trello.set_board_member(report.board_id, operation.member_id, operation.role)
        else:
            await trello.remove_board_member(report.board_id, operation.member_id)
    except (errors.LastAdmin, errors.TrelloNotFound, errors.TrelloForbidden) as exc:
        if isinstance(exc, errors.ObserversNotAllowed):
            # The plan changed since the store last read it: remembered, so the next run falls back.
            await remember_observers(database, organization_id, False)
        report.refused.append((operation, str(exc)))
        await record_refusal(database, organization_id, "trello_board", board_id, operation, exc, cause)
        return
    async with database.transaction() as session:
        audit.record(
            session, actor=RECONCILER, cause=cause, action=type(operation).__name__, entity="trello_board",
            entity_id=board_id, organization_id=organization_id, after=describe(operation),
        )  # fmt: skip
    report.applied.append(operation)


async def record_refusal(
    database: Database,
    organization_id: int,
    entity: str,
    entity_id: int,
    operation: Any,
    refusal: Exception,
    cause: str,
) -> None:
    """What Trello refused (the last admin, observers, a member gone) is recorded and reported, never
    retried: the same request would be refused again."""
    log.warning(
        "trello refused", member=operation.member_id, error=type(refusal).__name__, detail=str(refusal)
    )
    async with database.transaction() as session:
        audit.record(
            session, actor=RECONCILER, cause=cause, action="refused", entity=entity, entity_id=entity_id,
            organization_id=organization_id, after={**describe(operation), "refused": str(refusal)},
        )  # fmt: skip


def describe(operation: Any) -> dict[str, Any]:
    """An operation (a dataclass of a plan) as the audit log and approvals record it."""
    return {"operation": type(operation).__name__, **asdict(operation)}
