"""Retention on a large event log: pruned in short batches, against one DELETE of the same rows.

A PostgreSQL database of its own gets an event log of 1,000,000 rows (`--quick`: 100,000), four in five
older than the 90 days kept, made by the server itself (`generate_series`). Then:

1. `membership.retention.prune`, the daily job's own code: total time, batches, and the longest any
   one transaction held its rows (the longest lock it takes).
2. The baseline, on the same rows made again: one `DELETE ... WHERE received_at < cutoff`, which holds
   every row it deletes until it commits.

Ends with: result: retention rows=N deleted=D total_s=T longest_lock_s=L single_delete_s=S
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from membership.database import Database, recreate_postgres_database, upgrade
from membership.models import utcnow
from membership.retention import prune

POSTGRES_URL = os.environ.get(
    "TRELLIS_BENCH_RETENTION_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/trellis_bench_retention",
)
FILL = """
INSERT INTO event_log (action_id, type, model_id, action_date, received_at, payload)
SELECT 'action-' || n, 'addMemberToBoard', 'board-' || (n % 500), now() - make_interval(days => d),
       now() - make_interval(days => d), '{"action": {"type": "addMemberToBoard"}}'::json
FROM (SELECT n, CASE WHEN n <= :old THEN 200 - n * 100 / :old ELSE 30 END AS d
      FROM generate_series(1, :rows) AS n) AS made
"""


async def fill(database: Database, rows: int) -> None:
    async with database.transaction() as session:
        await session.execute(text("TRUNCATE event_log RESTART IDENTITY"))
        await session.execute(text(FILL), {"rows": rows, "old": rows * 4 // 5})


async def measure(rows: int) -> dict[str, float]:
    await recreate_postgres_database(POSTGRES_URL)
    await asyncio.to_thread(upgrade, POSTGRES_URL)
    database = Database(POSTGRES_URL)
    cutoff = utcnow() - timedelta(days=90)
    try:
        await fill(database, rows)
        started = time.monotonic()
        pruned = await prune(database, "event_log", cutoff)
        total = time.monotonic() - started
        print(
            f"batched: {pruned.deleted:,} of {rows:,} rows deleted in {total:.1f} s, in {pruned.batches} "
            f"batches; the longest transaction held its rows {pruned.longest_batch_s * 1000:.0f} ms"
        )
        await fill(database, rows)
        started = time.monotonic()
        async with database.transaction() as session:
            await session.execute(
                text("DELETE FROM event_log WHERE received_at < :cutoff"), {"cutoff": cutoff}
            )
        single = time.monotonic() - started
        print(f"baseline: one DELETE of the same rows held them all for {single:.2f} s")
    finally:
        await database.dispose()
    return {
        "deleted": pruned.deleted,
        "total_s": total,
        "longest_lock_s": pruned.longest_batch_s,
        "single_delete_s": single,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    rows = 100_000 if parser.parse_args().quick else 1_000_000
    f = asyncio.run(measure(rows))
    print(
        f"result: retention rows={rows} deleted={f['deleted']:.0f} total_s={f['total_s']:.1f} "
        f"longest_lock_s={f['longest_lock_s']:.3f} single_delete_s={f['single_delete_s']:.3f}"
    )


if __name__ == "__main__":
    main()
