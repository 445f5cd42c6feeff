"""Jobs about a delivered action: record it once, and mark what it calls for looking at again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from jobs import builders
from jobs.actions import WORKSPACE_SCOPED, Delivery, board_of, member_of, organization_of, parse_delivery
from membership.events import record_event
from membership.workspaces import workspace_of_model
from workers.runtime.context import WorkerContext, context_of
from workers.runtime.scopes import Scope
from workers.runtime.wrapper import job

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
