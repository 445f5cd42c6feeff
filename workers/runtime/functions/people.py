"""Jobs about one person: an offboarding, a change made through the membership API pushed to Trello,
and an approved Atlassian account deactivation."""

from __future__ import annotations

from typing import Any

import structlog

from workers.runtime import waves
from workers.runtime.context import context_of
from workers.runtime.scopes import Scope
from workers.runtime.serial import serialised
from workers.runtime.wrapper import job
from workers.workflows import accounts, offboard, push

log = structlog.get_logger("workers.jobs")


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
async def deactivate_account(ctx: dict[str, Any], approval_id: int) -> str:
    """Deactivate the Atlassian account an operator approved deactivating."""
    context = context_of(ctx)
    return await accounts.deactivate_approved(
        context.clients.scim, context.trello, context.database, approval_id
    )
