"""The arq job functions. Each is thin and idempotent: it fetches its inputs, calls the core, records."""

from __future__ import annotations

from typing import Any

import structlog

from membership.database import Database
from membership.events import record_event
from workers.actions import parse_delivery
from workers.runner import job

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
    return "recorded" if recorded else "duplicate"
