"""Retention: the event log and the audit log pruned of rows older than they are kept, a batch at a time.

Both tables only grow, in id order, with their time column rising with the id; so rows are read oldest
first through the primary key (no scan of the time column, which has no index of its own) and deleted
in batches of `batch` ids, each its own short transaction: a prune never holds the store for long, and
one interrupted resumes where it stopped. Pruning the event log cannot reopen replays: an action older
than the retention is far older than `TRELLIS_MAX_EVENT_AGE`, which starts no offboarding by itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from membership.database import Database
from membership.models import AuditEntry, Base, EventLogEntry, as_utc


@dataclass
class Pruned:
    table: str
    deleted: int = 0
    batches: int = 0
    longest_batch_s: float = 0.0  # the longest any one transaction held its rows


# Each kept table and the column that says how old a row is.
KEPT: dict[str, tuple[type[Base], str]] = {
    "event_log": (EventLogEntry, "received_at"),
    "audit_log": (AuditEntry, "at"),
}


async def prune(database: Database, table: str, older_than: datetime, *, batch: int = 2000) -> Pruned:
    """Delete the table's rows older than `older_than` (with its zone), oldest first, `batch` rows a
    transaction."""
    model, column = KEPT[table]
    key, when = model.__table__.c.id, model.__table__.c[column]
    report = Pruned(table)
    while True:
        started = time.monotonic()
        async with database.transaction() as session:
            rows = (await session.execute(select(key, when).order_by(key).limit(batch))).all()
            old = [row[0] for row in rows if as_utc(row[1]) < older_than]
            if old:
                await session.execute(delete(model).where(key.in_(old)))
        report.longest_batch_s = max(report.longest_batch_s, time.monotonic() - started)
        report.deleted += len(old)
        report.batches += 1 if old else 0
        if len(old) < batch:  # a younger row reached, or the table's end: the rest is kept
            return report


async def sizes(database: Database) -> dict[str, int]:
    """Rows in each kept table."""
    async with database.transaction() as session:
        return {
            table: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for table, (model, _) in KEPT.items()
        }
