"""Commands for operators: the doctor, approvals and dead letters."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from trellis.cli import CliContext, T, in_store, main, pass_cli, with_queue
from trellis.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from membership.models import PendingApproval


@main.command()
@pass_cli
def doctor(cli: CliContext) -> None:
    """Check Redis, the store, Trello (token and its expiry), every webhook, and what waits for a
    person. Exits 1 when something needs a person, 2 when something has failed."""
    from trellis.doctor import examine

    checks = asyncio.run(examine(cli.settings))
    marks = {"ok": "ok", "attention": "!!", "failed": "XX"}
    for check in checks:
        click.echo(f"{marks[check.status]}  {check.name[:32]:32} {check.detail}")
    statuses = {check.status for check in checks}
    sys.exit(2 if "failed" in statuses else 1 if "attention" in statuses else 0)


@main.group()
def approvals() -> None:
    """What Trellis will not do without an operator: held plans."""


@approvals.command("list")
@pass_cli
def approvals_list(cli: CliContext) -> None:
    """List open approvals with what they would do."""
    from membership.approvals import open_approvals

    async def rows(session: AsyncSession) -> list[str]:
        lines = []
        for approval in await open_approvals(session):
            lines.append(f"{approval.id:>5}  {approval.kind:16} {approval.scope:40} {approval.summary}")
            for op in approval.payload.get("operations", []):
                lines.append(f"         {op['operation']} {op['member_id']}: {op['reason']}")
            for member in approval.payload.get("members", []):  # a wave: who, and the boards at stake
                boards = approval.payload.get("boards", {}).get(member) or ["none in the store"]
                lines.append(f"         offboard {member}: {', '.join(boards)}")
        return lines or ["no open approvals"]

    for line in in_store(cli.settings, rows):
        click.echo(line)


@approvals.command("approve")
@click.argument("approval_id", type=int)
@pass_cli
def approvals_approve(cli: CliContext, approval_id: int) -> None:
    """Approve: a held plan's scope is reconciled again, and the plan goes ahead if it takes access
    from no one beyond those it named; a wave's offboardings run; an account deactivation is carried
    out."""
    approval = decide_and_follow(cli.settings, approval_id, approve=True)
    outcomes = {"scim_deactivate": "the account is deactivated", "wave": "their offboardings run"}
    outcome = outcomes.get(approval.kind, "it is reconciled again")
    click.echo(f"approval {approval_id} approved: {approval.scope}: {outcome}")


@approvals.command("reject")
@click.argument("approval_id", type=int)
@pass_cli
def approvals_reject(cli: CliContext, approval_id: int) -> None:
    """Reject: a held plan is not applied, nor held again until the state it was computed from
    changes; a wave's people stay on their boards (mirroring, the store lets them go)."""
    decide_and_follow(cli.settings, approval_id, approve=False)
    click.echo(f"approval {approval_id} rejected")


def decide_and_follow(settings: Settings, approval_id: int, *, approve: bool) -> PendingApproval:
    """Record the decision, then queue what it sets going (`jobs.builders.after_decision`)."""
    from jobs import builders
    from membership.approvals import decide

    approval = in_store(
        settings, lambda session: decide(session, approval_id, approve=approve, by="operator:cli")
    )
    jobs = builders.after_decision(
        approval.kind, approval.scope, approval.id, approval.payload, approved=approve
    )
    if jobs:
        with_queue(settings, lambda queue: queue.enqueue_many(jobs))
    return approval


@main.group("dead-letters")
def dead_letters() -> None:
    """Jobs that failed for good: list them, queue them again, or drop them."""


def with_dead_letters(settings: Settings, work: Callable[[Any, Any], Awaitable[T]]) -> T:
    from jobs.deadletters import DeadLetters

    return with_queue(settings, lambda queue: work(DeadLetters(queue.redis), queue))


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@pass_cli
def dead_letters_list(cli: CliContext, as_json: bool) -> None:
    """List dead letters, oldest first."""
    from dataclasses import asdict

    letters = with_dead_letters(cli.settings, lambda letters, _: letters.list())
    if not letters:
        click.echo("no dead letters")
    for letter in letters:
        if as_json:
            click.echo(json.dumps(asdict(letter)))
        else:
            click.echo(f"{letter.job_id}  {letter.function}  tries={letter.tries}  {letter.error}")


@dead_letters.command("replay")
@click.argument("job_ids", nargs=-1, required=True)
@pass_cli
def dead_letters_replay(cli: CliContext, job_ids: tuple[str, ...]) -> None:
    """Queue the given dead letters again (under new job ids) and take them off the list."""

    async def replay(letters: Any, queue: Any) -> list[bool]:
        return [await letters.replay(job_id, queue) for job_id in job_ids]

    outcomes = with_dead_letters(cli.settings, replay)
    for job_id, replayed in zip(job_ids, outcomes, strict=True):
        click.echo(f"{job_id}: {'queued again' if replayed else 'no such dead letter'}")
    if not all(outcomes):
        sys.exit(1)


@dead_letters.command("drop")
@click.argument("job_ids", nargs=-1, required=True)
@pass_cli
def dead_letters_drop(cli: CliContext, job_ids: tuple[str, ...]) -> None:
    """Forget the given dead letters."""

    async def drop(letters: Any, _: Any) -> list[bool]:
        return [await letters.drop(job_id) for job_id in job_ids]

    outcomes = with_dead_letters(cli.settings, drop)
    for job_id, dropped in zip(job_ids, outcomes, strict=True):
        click.echo(f"{job_id}: {'dropped' if dropped else 'no such dead letter'}")
    if not all(outcomes):
        sys.exit(1)
