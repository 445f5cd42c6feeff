"""The arq job functions. Each is thin and idempotent: it fetches its inputs, calls the core, records.

Their names and arguments are the job contract's (`jobs.builders`): a test binds every builder's job
to the function of the same name here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from jobs import builders
from jobs.actions import WORKSPACE_SCOPED, Delivery, board_of, member_of, organization_of, parse_delivery
from membership import approvals, retention
from membership.events import record_event
from membership.workspaces import workspace_of_model
from workers import metrics
from workers.outside.errors import RemoteError
from workers.outside.limiter import Priority
from workers.reconcile.board import reconcile_board as reconcile_board_
from workers.reconcile.board_plan import still_in_trello
from workers.reconcile.plan import Plan
from workers.reconcile.workspace import linked_boards, offboardings
from workers.reconcile.workspace import reconcile_workspace as reconcile_workspace_
from workers.runtime import resync, waves
from workers.runtime.context import WorkerContext, context_of
from workers.runtime.scopes import Scope
from workers.runtime.serial import serialised
from workers.runtime.wrapper import job, will_retry
from workers.workflows import accounts, offboard, push, webhooks

log = structlog.get_logger("workers.jobs")


@job
async def apply_event(ctx: dict[str, Any], body: dict[str, Any]) -> str:
    """Record a delivered action in the event log, once however often it is delivered."""
    context = context_of(ctx)
    delivery = parse_delivery(body)
    with structlog.contextvars.bound_contextvars(action_id=delivery.action_id, action_type=delivery.type):
        async with context.database.transaction() as session:
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
        if context.clients.trello is not None:
            await follow_up(context, delivery, first=recorded)
    return "recorded" if recorded else "duplicate"


async def follow_up(context: WorkerContext, delivery: Delivery, *, first: bool) -> None:
    """The reconciles an action calls for: its board's, its workspace's, and an offboarding for a
    member removed from a workspace.

    Only reconciles follow an action seen before (`first` False: a retried or replayed delivery) or
    one older than `max_event_age` (Trello signs no time, so a captured delivery can be replayed at
    will): they read Trello as it is now. An offboarding acts on what the action says, so it follows
    only a fresh action's first delivery; a departure it misses is still found by the workspace's
    reconcile."""
    reason = f"action:{delivery.action_id}"
    board = board_of(delivery.action)
    if board is not None:
        await context.scopes.mark(Scope("board", board), reason=reason)
    if delivery.type in WORKSPACE_SCOPED:
        workspace = organization_of(delivery.action)
        if workspace is None and delivery.model_id is not None:
            async with context.database.transaction() as session:
                workspace = await workspace_of_model(session, delivery.model_id)
        if workspace is not None:
            await context.scopes.mark(Scope("workspace", workspace), reason=reason)
            member = member_of(delivery.action)
            if delivery.type == "removeMemberFromOrganization" and member is not None:
                if first and is_fresh(delivery, context.config.max_event_age_seconds):
                    await request_offboarding(context, workspace, member, reason)
                else:
                    log.info("no offboarding for a repeated or old delivery", member=member)


async def request_offboarding(context: WorkerContext, workspace: str, member: str, reason: str) -> None:
    """Note the departure for the wave guard, and queue its offboarding once the wave has settled."""
    await context.departures.note(workspace, member)
    defer = context.config.waves.settle_seconds
    await context.queue.enqueue(builders.offboard_member(workspace, member, reason, defer=defer))


def is_fresh(delivery: Delivery, max_age_seconds: float) -> bool:
    """Whether the action happened within `max_age_seconds` (by the date Trello gave it)."""
    when = delivery.date
    if when is None:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds() <= max_age_seconds


@job
async def offboard_member(ctx: dict[str, Any], workspace_id: str, member_id: str, reason: str = "") -> str:
    """Take a member who left the workspace off every one of its boards (and, mirroring, out of the
    store); then the SCIM policy decides about their Atlassian account."""
    context = context_of(ctx)
    cause = f"offboard ({reason or 'requested'})"
    wave = await waves.verdict(context.database, context.departures, workspace_id, member_id)
    if wave.outcome == "held":
        context.notify(
            f"held:{wave.approval_id}",
            f"Trellis held a wave of departures from workspace {workspace_id}: their board removals and "
            f"account deactivations wait for `trellis approvals approve {wave.approval_id}` (or reject).",
        )
        return f"held: one of a wave of departures (approval {wave.approval_id})"
    if wave.outcome == "rejected":
        # The operator rejected the wave: Trello is left as it is; the store, mirroring, lets them go.
        cause += f", wave rejected (approval {wave.approval_id})"
    report = await offboard.offboard_member(
        context.trello, context.database, workspace_id, member_id, cause=cause,
        from_boards=wave.outcome == "go",
    )  # fmt: skip
    if report.skipped:
        return f"skipped: {report.skipped}"
    if wave.outcome == "rejected":
        return f"wave rejected (approval {wave.approval_id}): boards left as they are; store: {report.store}"
    person = accounts.Person(report.email, member_id, report.user_id)
    account = await accounts.after_offboarding(
        context.clients.scim, context.trello, context.database, context.config.scim_deactivate, person,
        organization_id=report.organization_id, cause=cause,
    )  # fmt: skip
    boards = f"off {len(report.removed_from)} board(s), {len(report.refused)} refused"
    return f"{boards}; store: {report.store}; {account}"


@job
async def push_member_change(ctx: dict[str, Any], change_id: int) -> str:
    """Make Trello follow one change made through the membership API, then mark it done."""
    context = context_of(ctx)
    hold = float(context.config.job_timeout_seconds)
    report = await push.push_member_change(
        context.trello, context.database, change_id, policy=context.config.policy,
        invitations_of=lambda ws: serialised(context.queue.redis, f"invitations:{ws}", hold=hold),
        board_held=lambda board: context.scopes.holding(Scope("board", board), patience=hold),  # its lease
    )  # fmt: skip
    outcome = f"{report.outcome}: {len(report.boards)} board(s) reconciled"
    if report.removed is not None:
        account = await accounts.after_offboarding(
            context.clients.scim, context.trello, context.database, context.config.scim_deactivate,
            report.removed, organization_id=report.organization_id, cause=f"change {change_id}",
        )  # fmt: skip
        outcome += f"; {account}"
    return outcome


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
    if (token := await context.scopes.start(scope)) is None:
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
    if (token := await context.scopes.start(scope)) is None:
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


@job
async def deactivate_account(ctx: dict[str, Any], approval_id: int) -> str:
    """Deactivate the Atlassian account an operator approved deactivating."""
    context = context_of(ctx)
    return await accounts.deactivate_approved(
        context.clients.scim, context.trello, context.database, approval_id
    )


@job
async def full_resync(ctx: dict[str, Any], reason: str = "scheduled") -> str:
    """The safety net: every linked workspace and board reconciled at bulk priority, the outbox swept,
    the webhooks checked."""
    context = context_of(ctx)
    request = await resync.request_resync(
        context.database, context.scopes, context.queue, reason=f"resync ({reason})"
    )
    metrics.LAST_RESYNC.set_to_current_time()
    if context.clients.trello is not None:
        await watch_token_expiry(context)
    return f"{len(request.scopes)} scope(s) marked, {len(request.changes)} pending change(s) queued"


TOKEN_WARNING = timedelta(days=14)


async def watch_token_expiry(context: WorkerContext) -> None:
    """Read when the token expires (one call): a gauge for the alerts, and a person told two weeks ahead."""
    try:
        expires = (await context.trello.token_info()).get("dateExpires")
    except RemoteError as exc:  # the reconciles will say more; the resync goes on
        log.warning("token expiry not read", error=type(exc).__name__)
        return
    if not expires:
        metrics.TOKEN_EXPIRES.set(0)
        return
    when = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    metrics.TOKEN_EXPIRES.set(when.timestamp())
    if when - datetime.now(UTC) < TOKEN_WARNING:
        context.notify(
            f"token-expiry:{expires}",
            f"Trellis's Trello token expires on {expires}: make a new one and set TRELLIS_TRELLO_TOKEN.",
            remember=int(TOKEN_WARNING.total_seconds()) + 86400,
        )


@job
async def sweep_outbox(ctx: dict[str, Any], reason: str = "scheduled") -> str:
    """Queue the push of every change still pending in the outbox: run as each worker starts and every
    minute, so that a change made while Redis was away reaches Trello within a minute of its return."""
    context = context_of(ctx)
    changes = await resync.sweep_outbox(context.database, context.queue)
    log.info("outbox swept", reason=reason, queued=len(changes))
    return f"{len(changes)} pending change(s) queued"


@job
async def prune_history(ctx: dict[str, Any], reason: str = "scheduled") -> str:
    """Delete event log and audit log rows older than they are kept, in short batches (daily)."""
    context = context_of(ctx)
    now, config = datetime.now(UTC), context.config
    kept = {"event_log": config.event_retention_days, "audit_log": config.audit_retention_days}
    done = [
        await retention.prune(context.database, table, now - timedelta(days=days))
        for table, days in kept.items()
    ]
    for pruned in done:
        log.info("history pruned", reason=reason, table=pruned.table, deleted=pruned.deleted,
                 batches=pruned.batches, longest_batch_s=round(pruned.longest_batch_s, 3))  # fmt: skip
    return "; ".join(f"{p.table}: {p.deleted} row(s) deleted in {p.batches} batch(es)" for p in done)


@job
async def ensure_webhooks(ctx: dict[str, Any], reason: str = "") -> str:
    """Every linked workspace and open board has an active webhook to our callback URL."""
    context = context_of(ctx)
    callback_url = context.config.callback_url
    if not callback_url:
        return "no callback URL configured (TRELLIS_CALLBACK_URL): nothing to register"
    report = await webhooks.ensure_webhooks(context.trello, context.database, callback_url)
    for board in report.gone:
        await context.scopes.mark(Scope("board", board), reason=f"{reason or 'webhook check'}: board gone")
    if report.reactivated:
        metrics.WEBHOOKS_REACTIVATED.inc(len(report.reactivated))
        day = datetime.now(UTC).date().isoformat()
        context.notify(
            f"webhooks-off:{day}:{','.join(sorted(report.reactivated))}",
            f"Trello had switched off {len(report.reactivated)} of Trellis's webhooks (their deliveries kept "
            f"failing): switched on again. Models: {', '.join(sorted(report.reactivated))}.",
        )
    return (
        f"{len(report.ok)} ok, {len(report.created)} created, {len(report.reactivated)} reactivated, "
        f"{len(report.failed)} failed, {len(report.gone)} board(s) gone"
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
