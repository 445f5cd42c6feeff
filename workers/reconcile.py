"""Reconciling one board: read Trello and the store, plan, apply each operation with its audit record.

Knows nothing of arq: `workers.jobs` calls it, and `trellis plan` calls it with `apply=False`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from membership import approvals, audit
from membership.boards import board_by_trello_id, board_view, set_board_access
from membership.database import Database
from membership.rules import Actor
from workers import errors
from workers.limiter import Priority
from workers.plan import (
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


async def observers_allowed(trello: TrelloClient, trello_org_id: str) -> bool:
    """Whether the workspace's plan has observers: Trello lists it among its premium features."""
    organization = await trello.organization(trello_org_id)
    return "observers" in organization.get("premiumFeatures", [])


async def reconcile_board(
    trello: TrelloClient,
    database: Database,
    trello_board_id: str,
    *,
    cause: str,
    priority: Priority = Priority.EVENT,
    apply: bool = True,
    approved_losing: frozenset[str] | None = None,
    observers: bool | None = None,
) -> BoardReport | None:
    """Make one board and the store agree; None when the board is not linked in the store.

    `approved_losing`: the members an operator approved taking access from; a held plan that takes it
    from no one else goes ahead. `observers`: whether the workspace's plan has observers, when the
    caller already knows (it reconciles several of its boards); else Trello is asked.
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
    trello_org_id = view.organization.trello_org_id or ""
    policy = Policy(
        authority="local" if view.organization.authority == "local" else "trello",
        observers_allowed=observers
        if observers is not None
        else await observers_allowed(trello, trello_org_id),
    )
    plan = plan_board(
        DesiredBoard(trello_board_id, view.access, view.pending), ActualBoard(trello_board_id, roles), policy
    )
    report = BoardReport(trello_board_id, plan)
    if not apply or not plan.changes:
        return report
    if plan.held is not None and not (approved_losing is not None and plan.losing <= approved_losing):
        async with database.transaction() as session:
            approval = await approvals.request(
                session, kind="plan", organization_id=view.organization.id, scope=f"board:{trello_board_id}",
                summary=plan.held, payload={"operations": [describe(op) for op in plan.operations],
                                            "losing": sorted(plan.losing)},
                actor=RECONCILER, cause=cause,
            )  # fmt: skip
        report.approval_id = approval.id
        log.warning(
            "plan held for an operator", board=trello_board_id, reason=plan.held, approval=approval.id
        )
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
            memberships = (await board_view(session, board)).memberships
            for op in store_operations:
                await set_board_access(
                    session, RECONCILER, memberships[op.member_id], board.id, op.access, cause=cause
                )
        report.applied += store_operations
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
    except (
        errors.LastAdmin,
        errors.ObserversNotAllowed,
        errors.TrelloNotFound,
        errors.TrelloForbidden,
    ) as exc:
        report.refused.append((operation, str(exc)))
        log.warning("trello refused", member=operation.member_id, error=type(exc).__name__, detail=str(exc))
        return
    async with database.transaction() as session:
        audit.record(
            session, actor=RECONCILER, cause=cause, action=type(operation).__name__, entity="trello_board",
            entity_id=board_id, organization_id=organization_id, after=describe(operation),
        )  # fmt: skip
    report.applied.append(operation)


def describe(operation: Operation) -> dict[str, Any]:
    return {"operation": type(operation).__name__, **asdict(operation)}
