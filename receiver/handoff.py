"""Changes made through the store, handed to the workers once their transaction has committed."""

from __future__ import annotations

import structlog

from jobs import builders
from jobs.queue import JobQueue

log = structlog.get_logger("receiver.handoff")


async def hand_to_workers(queue: JobQueue, change_ids: list[int]) -> None:
    """One job a change. A change whose job cannot be queued now stays pending in the outbox, which the
    workers sweep: it is late, never lost."""
    if not change_ids:
        return
    jobs = [builders.push_member_change(change_id) for change_id in change_ids]
    try:
        await queue.enqueue_many(jobs)
    except Exception as exc:
        log.warning("member changes left for the outbox sweep", changes=change_ids, error=type(exc).__name__)
