"""The arq job functions. Each is thin and idempotent: it fetches its inputs, calls the core, records."""

from __future__ import annotations

from typing import Any

import structlog

from membership import approvals
from membership.database import Database
from membership.events import record_event
from workers import errors, offboard, push, reconcile
from workers.actions import Delivery, board_of, member_of, organization_of, parse_delivery
from workers.clients import Clients
from workers.queue import Job
from workers.runner import job
from workers.scopes import Scope, Scopes
from workers.trello import TrelloClient

log = structlog.get_logger("workers.jobs")


@job
async def apply_event(ctx: dict[str, Any], body: dict[str, Any]) -> str:
    """Record a delivered action in the event log, once however often it is delivered."""
    delivery = parse_delivery(body)
    database: Database = ctx["database"]
    with structlog.contextvars.bound_contextvars(action_id=delivery.action_id, action_type=delivery.type):
        async with database.transaction() as session:
            recorded = await record_event(
                session,
                action_id=delivery.action_id,
                type=delivery.type,
                model_id=delivery.model_id,
                action_date=delivery.date,
                payload=delivery.body,
            )
        log.info("event recorded" if recorded else "event already recorded")
        # Level-triggered: the action only says where to look again. Marking again for a duplicate is
        # harmless (marks coalesce) and covers a first run that died between recording and marking.
        if ctx["clients"].trello is not None:
            await follow_up(ctx, delivery)
    return "recorded" if recorded else "duplicate"


async def follow_up(ctx: dict[str, Any], delivery: Delivery) -> None:
    """The reconciles an action calls for: its board's, and an offboarding for a workspace removal."""
    reason = f"action:{delivery.action_id}"
    board = board_of(delivery.action)
    if board is not None:
        await ctx["scopes"].mark(Scope("board", board), reason=reason)
    organization, member = organization_of(delivery.action), member_of(delivery.action)
    if delivery.type == "removeMemberFromOrganization" and organization and member:
        # One offboarding a member at a time: the job id dedupes repeated deliveries while it waits.
        offboarding = Job(
            "offboard_member",
            (organization, member),
            {"reason": reason},
            job_id=f"offboard:{organization}:{member}",
        )
        await ctx["queue"].enqueue(offboarding)


@job
async def offboard_member(ctx: dict[str, Any], trello_org_id: str, member_id: str, reason: str = "") -> str:
    """Take a member who left the workspace off every one of its boards (and, mirroring, out of the store)."""
    report = await offboard.offboard_member(
        trello_of(ctx), ctx["database"], trello_org_id, member_id, cause=f"offboard ({reason or 'requested'})"
    )
    if report.skipped:
        return f"skipped: {report.skipped}"
    return f"off {len(report.removed_from)} board(s), {len(report.refused)} refused; store: {report.store}"


@job
async def push_member_change(ctx: dict[str, Any], change_id: int) -> str:
    """Make Trello follow one change made through the membership API, then mark it done."""
    report = await push.push_member_change(trello_of(ctx), ctx["database"], change_id)
    return f"{report.outcome}: {len(report.boards)} board(s) reconciled"


@job
async def reconcile_board(
    ctx: dict[str, Any], trello_board_id: str, reason: str = "", approval_id: int | None = None
) -> str:
    """Make one board and the store agree, as `workers.reconcile` plans it; with `approval_id`, a plan
    the operator approved goes ahead as long as it takes access from no one they did not approve."""
    trello = trello_of(ctx)
    approved = None
    if approval_id is not None:
        async with ctx["database"].transaction() as session:
            approved = await approvals.approved_members(session, approval_id)
    scopes: Scopes = ctx["scopes"]
    scope = Scope("board", trello_board_id)
    await scopes.started(scope)
    try:
        report = await reconcile.reconcile_board(
            trello,
            ctx["database"],
            trello_board_id,
            cause=f"reconcile ({reason or 'requested'})",
            approved_losing=approved,
        )
    finally:
        await scopes.finished(scope)
    if report is None:
        return "board not linked"
    if report.approval_id is not None:
        return f"held for approval {report.approval_id}"
    return f"{len(report.applied)} applied, {len(report.refused)} refused"


def trello_of(ctx: dict[str, Any]) -> TrelloClient:
    clients: Clients = ctx["clients"]
    if clients.trello is None:  # not retried: it will not pass until an operator configures them
        raise errors.TrelloUnauthorized("no Trello credentials are configured")
    return clients.trello
