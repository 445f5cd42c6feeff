"""The safety net: every linked workspace and board reconciled again, the outbox swept, the webhooks
checked. Run by arq's cron (every `resync_interval_hours`) and by `trellis resync`; the outbox sweep
also runs on its own as each worker starts and every minute (`sweep_outbox`).

It does not reconcile anything itself: it marks every scope with bulk priority, so the reconciles are the
ordinary coalesced jobs, spread over all workers, each short (a job timeout covers one board, not a
workspace of hundreds), and an event for a board that is already queued by the resync adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs import builders, status
from jobs.deadletters import DeadLetters
from jobs.queue import JobQueue
from jobs.status import StatusBoard
from membership import outbox
from membership.database import Database
from membership.workspaces import linked_organizations, open_linked_boards
from workers.runtime.scopes import Scope, Scopes


@dataclass
class ResyncRequest:
    scopes: list[Scope] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)  # outbox changes queued again


async def linked_scopes(database: Database) -> list[Scope]:
    """Every linked workspace, then each open board of them: workspaces first, so that boards they
    link are known, and the plan's observers remembered, before the boards' reconciles run."""
    async with database.transaction() as session:
        workspaces = await linked_organizations(session)
        boards = await open_linked_boards(session)
    return [Scope("workspace", w.trello_org_id or "") for w in workspaces] + [
        Scope("board", b.trello_board_id or "") for b in boards
    ]


async def request_resync(
    database: Database, scopes: Scopes, queue: JobQueue, *, reason: str
) -> ResyncRequest:
    request = ResyncRequest(scopes=await linked_scopes(database))
    for scope in request.scopes:
        await scopes.mark(scope, reason=reason, bulk=True)
    request.changes = await sweep_outbox(database, queue)
    await queue.enqueue(builders.ensure_webhooks(reason))
    await StatusBoard(queue.redis).publish(
        status.RESYNC, reason=reason, scopes=len(request.scopes), changes=len(request.changes)
    )
    return request


async def sweep_outbox(database: Database, queue: JobQueue) -> list[int]:
    """Queue the push of each pending change: one whose push could not be queued when it was made (Redis
    was down) or whose job was lost goes out now. The job id dedupes one still queued or running; one
    whose push ended on the dead-letter list waits there for an operator (replayed, it runs again)."""
    async with database.transaction() as session:
        pending = [change.id for change in await outbox.pending(session)]
    jobs = [builders.push_member_change(change) for change in pending]
    dead = {letter.job_id for letter in await DeadLetters(queue.redis).list()}
    swept = [job for job in jobs if job.job_id not in dead]
    await queue.enqueue_many(swept)
    return [job.args[0] for job in swept]
