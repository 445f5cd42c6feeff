"""The jobs that keep the whole in shape: the periodic resync, the outbox sweep, history pruning and the
webhook check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from jobs import status
from jobs.status import StatusBoard
from membership import retention
from workers import metrics
from workers.outside.errors import RemoteError
from workers.runtime import resync
from workers.runtime.context import WorkerContext, context_of
from workers.runtime.scopes import Scope
from workers.runtime.wrapper import job
from workers.workflows import webhooks

log = structlog.get_logger("workers.jobs")


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
    await StatusBoard(context.queue.redis).publish(
        status.WEBHOOKS, ok=len(report.ok), created=len(report.created), reactivated=len(report.reactivated),
        failed=len(report.failed), gone=len(report.gone),
    )  # fmt: skip
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
