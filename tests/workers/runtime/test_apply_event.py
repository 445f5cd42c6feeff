"""`apply_event`: jobs the receiver queues are run by a real arq worker and recorded once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from arq.worker import Worker
from redis.asyncio import Redis

from jobs.deadletters import DeadLetters
from membership.database import Database, migrate
from membership.events import count_events, newest_events
from tests.support import delivery, encode, signed_headers
from trellis.settings import Settings
from trellis.wiring import worker_settings
from workers.runtime.config import JobRules
from workers.runtime.context import CONTEXT_KEY


async def run_worker_until_idle(settings: Settings) -> Worker:
    worker = Worker(**{**worker_settings(settings), "burst": True, "poll_delay": 0.05})
    await worker.main()
    await worker.close()
    return worker


async def test_real_arq_worker_records_a_queued_action_in_the_event_log(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    payload = delivery("addMemberToBoard")
    body = encode(payload)
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))

    worker = await run_worker_until_idle(settings)

    assert worker.jobs_complete == 1 + 1  # the delivery's, and the outbox sweep a worker starts with
    database = Database(settings.database_url)
    async with database.transaction() as session:
        [entry] = await newest_events(session)
    await database.dispose()
    assert entry.action_id == payload["action"]["id"]
    assert entry.type == "addMemberToBoard"
    assert entry.model_id == payload["model"]["id"]
    assert entry.action_date is not None
    assert entry.action_date.year == 2026
    assert entry.payload == payload


async def test_apply_event_run_twice_records_the_action_once(settings: Settings) -> None:
    await migrate(settings.database_url)
    from workers.runtime.functions import apply_event

    database = Database(settings.database_url)
    no_trello = SimpleNamespace(trello=None)  # without credentials apply_event only records
    context = SimpleNamespace(database=database, clients=no_trello, rules=JobRules())
    ctx: dict[str, Any] = {CONTEXT_KEY: context, "job_id": "x", "job_try": 1}
    payload = delivery()

    outcomes = [await apply_event(ctx, payload), await apply_event(ctx, payload)]

    async with database.transaction() as session:
        assert await count_events(session) == 1
    await database.dispose()
    assert outcomes == ["recorded", "duplicate"]


async def test_job_that_cannot_succeed_lands_in_the_dead_letter_list(
    settings: Settings, redis_client: Redis
) -> None:
    from jobs.queue import Job, JobQueue

    queue = JobQueue(redis_client, settings.queue_name)
    await queue.enqueue(Job("apply_event", ({"action": "not an action"},), job_id="broken-job"))

    worker = await run_worker_until_idle(settings)

    assert worker.jobs_failed == 1
    [letter] = await DeadLetters(redis_client).list()
    assert letter.job_id == "broken-job"
    assert letter.function == "apply_event"
    assert "InvalidDelivery" in letter.error


async def test_every_line_a_job_writes_carries_its_job_id(settings: Settings, redis_client: Redis) -> None:
    import io
    import json
    import logging

    from jobs.queue import Job, JobQueue
    from trellis.logging import configure_logging

    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    try:
        payload = delivery()
        await JobQueue(redis_client, settings.queue_name).enqueue(
            Job("apply_event", (payload,), job_id=payload["action"]["id"])
        )
        await run_worker_until_idle(settings)
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if '"workers.' in line]
    job_lines = [line for line in lines if line.get("job") != "sweep_outbox"]  # the worker's own job
    assert job_lines, "the job logged nothing"
    assert all(line["job_id"] == payload["action"]["id"] for line in job_lines)
    assert all(line["action_id"] == payload["action"]["id"] for line in job_lines)
