"""The reconcile jobs of a board and of a workspace, each run under its scope's lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from jobs import builders
from membership import approvals
from workers.outside.limiter import Priority
from workers.reconcile.board import reconcile_board as reconcile_board_
from workers.reconcile.board_plan import still_in_trello
from workers.reconcile.plan import Plan
from workers.reconcile.workspace import linked_boards, offboardings
from workers.reconcile.workspace import reconcile_workspace as reconcile_workspace_
from workers.runtime.context import WorkerContext, context_of
from workers.runtime.functions.events import request_offboarding
from workers.runtime.scopes import Scope
from workers.runtime.wrapper import job, will_retry
from workers.workflows import webhooks

log = structlog.get_logger("workers.jobs")


@job
async def reconcile_board(
    ctx: dict[str, Any],
    board_id: str,
    reason: str = "",
    approval_id: int | None = None,
    bulk: bool = False,
) -> str:
    """Make one board and the store agree; with `approval_id`, a plan the operator approved goes ahead as
    long as it takes access from no one they did not approve."""
    context = context_of(ctx)
    approved = await approved_members(context, approval_id)
    scope = Scope("board", board_id)
    if (token := await context.scopes.start(scope, holder=ctx.get("job_id"))) is None:
        return await wait_turn(context, scope, reason, bulk, approval_id)
    async with running(ctx, scope, token):
        report = await reconcile_board_(
            context.trello, context.database, board_id, cause=f"reconcile ({reason or 'requested'})",
            priority=priority_of(bulk), approved_losing=approved, policy=context.config.policy,
        )  # fmt: skip
    if report is None:
        return "board not linked"
    await forget(context, still_in_trello(report.plan.facts))
    if report.approval_id is not None:
        return held(context, report.approval_id, report.rejected, report.plan)
    return f"{len(report.applied)} applied, {len(report.refused)} refused"


@job
async def reconcile_workspace(
    ctx: dict[str, Any],
    workspace_id: str,
    reason: str = "",
    approval_id: int | None = None,
    bulk: bool = False,
) -> str:
    """Make one workspace and the store agree: members, roles, boards. Offboardings it finds and boards
    it links are handed on: each offboarding is a job, each new board gets a webhook and a reconcile."""
    context = context_of(ctx)
    approved = await approved_members(context, approval_id)
    cause = f"reconcile ({reason or 'requested'})"
    scope = Scope("workspace", workspace_id)
    if (token := await context.scopes.start(scope, holder=ctx.get("job_id"))) is None:
        return await wait_turn(context, scope, reason, bulk, approval_id)
    async with running(ctx, scope, token):
        report = await reconcile_workspace_(
            context.trello, context.database, workspace_id, cause=cause,
            priority=priority_of(bulk), approved_losing=approved, policy=context.config.policy,
        )  # fmt: skip
    if report is None:
        return "workspace not linked"
    leaving, new_boards = offboardings(report), linked_boards(report)
    await forget(context, still_in_trello(report.plan.facts))
    for member in leaving:
        await request_offboarding(context, workspace_id, member, cause)
    if new_boards:
        await context.queue.enqueue(builders.ensure_webhooks(f"new boards in {workspace_id}"))
        for board in new_boards:
            await context.scopes.mark(Scope("board", board), reason="linked by " + cause)
    if report.approval_id is not None:
        return held(context, report.approval_id, report.rejected, report.plan)
    return (
        f"{len(report.applied)} applied, {len(report.refused)} refused, {len(leaving)} to offboard, "
        f"{len(new_boards)} new board(s)"
    )


@asynccontextmanager
async def running(ctx: dict[str, Any], scope: Scope, token: str) -> AsyncIterator[None]:
    """A scope's reconcile runs under its lease (`token`), renewed meanwhile: marks from now on ask for
    one more run after it. A run that fails and will be tried again leaves the scope queued: its retry
    is the next run."""
    scopes = context_of(ctx).scopes
    try:
        async with scopes.renewing(scope, token):
            yield
    except BaseException as exc:
        # arq runs a cancelled job again (a worker shutting down cancels what it cannot finish).
        if isinstance(exc, asyncio.CancelledError) or (isinstance(exc, Exception) and will_retry(ctx, exc)):
            await scopes.retrying(scope, token)
        else:
            await scopes.finished(scope, token)
        raise
    await scopes.finished(scope, token)


async def wait_turn(
    context: WorkerContext, scope: Scope, reason: str, bulk: bool, approval_id: int | None
) -> str:
    """Another run holds the scope (two jobs of one scope were queued: a backlog outlived the queued
    state, or a worker died holding it): this job runs later, not beside it."""
    defer = context.scopes.lease / 3
    await context.queue.enqueue(
        builders.reconcile(scope.kind, scope.id, reason, defer=defer, bulk=bulk, approval_id=approval_id)
    )
    log.info("scope busy: deferred", scope=str(scope), retry_in=defer)
    return f"{scope} is being reconciled by another run: deferred {defer:.0f} s"


async def approved_members(context: WorkerContext, approval_id: int | None) -> frozenset[str] | None:
    if approval_id is None:
        return None
    async with context.database.transaction() as session:
        return await approvals.approved_members(session, approval_id)


async def forget(context: WorkerContext, board_ids: list[str]) -> None:
    """Our webhooks on boards a reconcile let go of that live on elsewhere."""
    if board_ids and context.config.callback_url:
        await webhooks.forget_webhooks(context.trello, context.config.callback_url, board_ids)


def held(context: WorkerContext, approval_id: int, rejected: bool, plan: Plan[Any, Any]) -> str:
    if rejected:
        return f"left as it is: the operator rejected this plan (approval {approval_id})"
    context.notify(
        f"held:{approval_id}",
        f"Trellis held a plan for {plan.scope}: {plan.held}. See `trellis approvals list` "
        f"(approval {approval_id}).",
    )
    return f"held for approval {approval_id}"


def priority_of(bulk: bool) -> Priority:
    return Priority.BULK if bulk else Priority.EVENT
