"""The arq job functions. Each is thin and idempotent: it fetches its inputs, calls the core, records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from membership import approvals
from membership.database import Database
from membership.events import record_event
from membership.workspaces import workspace_of_model
from workers import accounts, contract, errors, offboard, push, reconcile, resync, webhooks
from workers import reconcile_org as reconcile_org_
from workers.actions import (
    BOARD_LIFECYCLE_ACTIONS,
    MEMBER_ACTIONS,
    ORGANIZATION_MEMBER_ACTIONS,
    Delivery,
    board_of,
    member_of,
    organization_of,
    parse_delivery,
)
from workers.clients import Clients
from workers.limiter import Priority
from workers.runner import job, will_retry
from workers.scopes import Scope, Scopes
from workers.trello import TrelloClient

log = structlog.get_logger("workers.jobs")

# Actions after which the workspace is looked at again: its members and roles, or its list of boards.
WORKSPACE_SCOPED = ORGANIZATION_MEMBER_ACTIONS | MEMBER_ACTIONS | BOARD_LIFECYCLE_ACTIONS


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
    """The reconciles an action calls for: its board's, its workspace's, and an offboarding for a
    member removed from a workspace."""
    reason = f"action:{delivery.action_id}"
    scopes: Scopes = ctx["scopes"]
    board = board_of(delivery.action)
    if board is not None:
        await scopes.mark(Scope("board", board), reason=reason)
    if delivery.type in WORKSPACE_SCOPED:
        workspace = organization_of(delivery.action)
        if workspace is None and delivery.model_id is not None:
            async with ctx["database"].transaction() as session:
                workspace = await workspace_of_model(session, delivery.model_id)
        if workspace is not None:
            await scopes.mark(Scope("org", workspace), reason=reason)
            member = member_of(delivery.action)
            if delivery.type == "removeMemberFromOrganization" and member is not None:
                await ctx["queue"].enqueue(contract.offboard(workspace, member, reason))


@job
async def offboard_member(ctx: dict[str, Any], trello_org_id: str, member_id: str, reason: str = "") -> str:
    """Take a member who left the workspace off every one of its boards (and, mirroring, out of the
    store); then the SCIM policy decides about their Atlassian account."""
    cause = f"offboard ({reason or 'requested'})"
    report = await offboard.offboard_member(
        trello_of(ctx), ctx["database"], trello_org_id, member_id, cause=cause
    )
    if report.skipped:
        return f"skipped: {report.skipped}"
    account = await accounts.after_offboarding(
        ctx["clients"].scim, ctx["database"], ctx["settings"].scim_deactivate, email=report.email,
        organization_id=report.organization_id, member_id=member_id, cause=cause,
    )  # fmt: skip
    boards = f"off {len(report.removed_from)} board(s), {len(report.refused)} refused"
    return f"{boards}; store: {report.store}; {account}"


@job
async def push_member_change(ctx: dict[str, Any], change_id: int) -> str:
    """Make Trello follow one change made through the membership API, then mark it done."""
    report = await push.push_member_change(trello_of(ctx), ctx["database"], change_id, policy=ctx["policy"])
    outcome = f"{report.outcome}: {len(report.boards)} board(s) reconciled"
    if report.removed_email is not None:
        account = await accounts.after_offboarding(
            ctx["clients"].scim, ctx["database"], ctx["settings"].scim_deactivate, email=report.removed_email,
            organization_id=report.organization_id, member_id=None, cause=f"change {change_id}",
        )  # fmt: skip
        outcome += f"; {account}"
    return outcome


@job
async def reconcile_board(
    ctx: dict[str, Any],
    trello_board_id: str,
    reason: str = "",
    approval_id: int | None = None,
    bulk: bool = False,
) -> str:
    """Make one board and the store agree, as `workers.reconcile` plans it; with `approval_id`, a plan
    the operator approved goes ahead as long as it takes access from no one they did not approve."""
    approved = await approved_members(ctx, approval_id)
    async with running(ctx, Scope("board", trello_board_id)):
        report = await reconcile.reconcile_board(
            trello_of(ctx), ctx["database"], trello_board_id, cause=f"reconcile ({reason or 'requested'})",
            priority=priority_of(bulk), approved_losing=approved, policy=ctx["policy"],
        )  # fmt: skip
    if report is None:
        return "board not linked"
    if report.approval_id is not None:
        return f"held for approval {report.approval_id}"
    return f"{len(report.applied)} applied, {len(report.refused)} refused"


@job
async def reconcile_org(
    ctx: dict[str, Any],
    trello_org_id: str,
    reason: str = "",
    approval_id: int | None = None,
    bulk: bool = False,
) -> str:
    """Make one workspace and the store agree: members, roles, boards. Offboardings it finds and boards
    it links are handed on: each offboarding is a job, each new board gets a webhook and a reconcile."""
    approved = await approved_members(ctx, approval_id)
    cause = f"reconcile ({reason or 'requested'})"
    async with running(ctx, Scope("org", trello_org_id)):
        report = await reconcile_org_.reconcile_org(
            trello_of(ctx), ctx["database"], trello_org_id, cause=cause,
            priority=priority_of(bulk), approved_losing=approved, policy=ctx["policy"],
        )  # fmt: skip
    if report is None:
        return "workspace not linked"
    for member in report.offboard:
        await ctx["queue"].enqueue(contract.offboard(trello_org_id, member, cause))
    if report.new_boards:
        await ctx["queue"].enqueue(contract.ensure_webhooks(f"new boards in {trello_org_id}"))
        for board in report.new_boards:
            await ctx["scopes"].mark(Scope("board", board), reason="linked by " + cause)
    if report.approval_id is not None:
        return f"held for approval {report.approval_id}"
    return (
        f"{len(report.applied)} applied, {len(report.refused)} refused, {len(report.offboard)} to offboard, "
        f"{len(report.new_boards)} new board(s)"
    )


@job
async def deactivate_account(ctx: dict[str, Any], approval_id: int) -> str:
    """Deactivate the Atlassian account an operator approved deactivating."""
    return await accounts.deactivate_approved(ctx["clients"].scim, ctx["database"], approval_id)


@job
async def full_resync(ctx: dict[str, Any], reason: str = "scheduled") -> str:
    """The safety net: every linked workspace and board reconciled at bulk priority, the outbox swept,
    the webhooks checked."""
    request = await resync.request_resync(
        ctx["database"], ctx["scopes"], ctx["queue"], reason=f"resync ({reason})"
    )
    return f"{len(request.scopes)} scope(s) marked, {len(request.changes)} pending change(s) queued"


@job
async def ensure_webhooks(ctx: dict[str, Any], reason: str = "") -> str:
    """Every linked workspace and open board has an active webhook to our callback URL."""
    callback_url = ctx["settings"].callback_url
    if not callback_url:
        return "no callback URL configured (TRELLIS_CALLBACK_URL): nothing to register"
    report = await webhooks.ensure_webhooks(trello_of(ctx), ctx["database"], callback_url)
    return (
        f"{len(report.ok)} ok, {len(report.created)} created, {len(report.reactivated)} reactivated, "
        f"{len(report.failed)} failed"
    )


@asynccontextmanager
async def running(ctx: dict[str, Any], scope: Scope) -> AsyncIterator[None]:
    """A scope's reconcile runs: marks from now on ask for one more run after it. A run that fails and
    will be tried again leaves the scope queued: its retry is the next run, and none may start beside it."""
    scopes: Scopes = ctx["scopes"]
    await scopes.started(scope)
    try:
        yield
    except BaseException as exc:
        # arq runs a cancelled job again (a worker shutting down cancels what it cannot finish).
        if isinstance(exc, asyncio.CancelledError) or (isinstance(exc, Exception) and will_retry(ctx, exc)):
            await scopes.retrying(scope)
        else:
            await scopes.finished(scope)
        raise
    await scopes.finished(scope)


async def approved_members(ctx: dict[str, Any], approval_id: int | None) -> frozenset[str] | None:
    if approval_id is None:
        return None
    async with ctx["database"].transaction() as session:
        return await approvals.approved_members(session, approval_id)


def priority_of(bulk: bool) -> Priority:
    return Priority.BULK if bulk else Priority.EVENT


def trello_of(ctx: dict[str, Any]) -> TrelloClient:
    clients: Clients = ctx["clients"]
    if clients.trello is None:  # not retried: it will not pass until an operator configures them
        raise errors.TrelloUnauthorized("no Trello credentials are configured")
    return clients.trello
