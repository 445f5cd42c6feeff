"""Prometheus metrics: the receiver's scrape reads the shared state; each worker serves its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from arq.worker import Worker
from redis.asyncio import Redis

from jobs.deadletters import DeadLetter, DeadLetters
from tests.conftest import SettingsFactory
from tests.support import delivery, encode, free_port, signed_headers
from trellis.settings import Settings
from trellis.wiring import worker_settings
from workers.metrics import REGISTRY, endpoint


async def test_a_scrape_of_the_receiver_reads_queue_depth_and_dead_letters(
    client: httpx.AsyncClient, redis_client: Redis
) -> None:
    body = encode(delivery("addMemberToBoard"))
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    await DeadLetters(redis_client).add(DeadLetter("job-1", "reconcile_board", ["b"], {}, 8, "boom"))

    metrics = (await client.get("/metrics")).text

    assert "trellis_queue_depth 1.0" in metrics
    assert "trellis_dead_letters 1.0" in metrics
    assert "trellis_pending_approvals 0.0" in metrics


async def test_a_worker_serves_its_jobs_by_name_and_outcome(
    client: httpx.AsyncClient, make_settings: SettingsFactory
) -> None:
    body = encode(delivery("addMemberToBoard"))
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    port = free_port()
    worker = Worker(
        **{**worker_settings(make_settings(worker_metrics_port=port)), "burst": True, "poll_delay": 0.05}
    )
    try:
        await worker.main()
        async with httpx.AsyncClient() as scraper:
            scraped = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await worker.close()

    assert 'trellis_jobs_total{job="apply_event",outcome="ok"}' in scraped
    assert 'trellis_job_seconds_count{job="apply_event"}' in scraped


async def test_a_worker_counts_the_store_statements_of_each_job_under_its_name(
    client: httpx.AsyncClient, make_settings: SettingsFactory
) -> None:
    body = encode(delivery("addMemberToBoard"))
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    worker = Worker(**{**worker_settings(make_settings()), "burst": True, "poll_delay": 0.05})
    before = _statements("apply_event")
    try:
        await worker.main()
    finally:
        await worker.close()

    assert _statements("apply_event") > before  # the event is recorded in the store


def _statements(job: str) -> float:
    return REGISTRY.get_sample_value("trellis_store_statements_total", {"job": job}) or 0.0


def test_api_call_series_name_endpoints_without_ids() -> None:
    assert endpoint("PUT /boards/5f0a1b2c3d4e5f6a7b8c9d0e/members/60a1b2c3d4e5f6a7b8c9d0e1") == (
        "PUT /boards/{id}/members/{id}"
    )
    assert endpoint("SCIM PATCH /Users/8f14e45f-ceea-4e1b") == "SCIM PATCH /Users/{id}"
    assert endpoint("GET /tokens/{token}/webhooks") == "GET /tokens/{token}/webhooks"


async def test_metrics_behind_a_token_answer_only_its_bearer(
    make_settings: SettingsFactory, client_for: Callable[[Settings], Any]
) -> None:
    async with client_for(make_settings(metrics_token="scrape-me")) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer guess"})
        scraper = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert (anonymous.status_code, wrong.status_code, scraper.status_code) == (401, 401, 200)
    assert "trellis_queue_depth" in scraper.text
