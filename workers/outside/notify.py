"""Telling a person: a message to a Slack-compatible incoming webhook (`TRELLIS_NOTIFY_URL`).

Slack, Mattermost and Teams workflows all take `{"text": ...}`. Each occurrence is sent once however
many workers see it (its key is claimed in Redis first, for a day), retried with backoff, and never
in a job's way: `notify` returns at once and the sending happens beside the job. A notification that
still fails after its tries is logged and dropped: the metrics and `trellis doctor` say the same.
"""

from __future__ import annotations

import asyncio

import httpx
import structlog
from redis.asyncio import Redis

from workers.backoff import full_jitter

log = structlog.get_logger("workers.notify")

CLAIM_SECONDS = 24 * 3600


class Notifier:
    def __init__(self, http: httpx.AsyncClient, url: str, redis: Redis, *, tries: int = 5) -> None:
        self.http = http
        self.url = url
        self.redis = redis
        self.tries = tries
        self._sending: set[asyncio.Task[None]] = set()

    def notify(self, occurrence: str, text: str, *, remember: int = CLAIM_SECONDS) -> None:
        """Send `text` once for `occurrence` (a stable name: `held:approval:12`), in the background;
        the occurrence is remembered `remember` seconds."""
        task = asyncio.create_task(self._send_once(occurrence, text, remember))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self) -> None:
        """Wait for the notifications under way (a worker shutting down, a test)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send_once(self, occurrence: str, text: str, remember: int) -> None:
        failure = "not tried"
        try:
            if not await self.redis.set(f"trellis:notified:{occurrence}", "1", nx=True, ex=remember):
                return  # another worker, or an earlier run, told them already
        except Exception as exc:
            log.warning(
                "notification not claimed, so not sent", occurrence=occurrence, error=type(exc).__name__
            )
            return
        for attempt in range(self.tries):
            try:
                response = await self.http.post(self.url, json={"text": text})
                if response.status_code < 300:
                    return
                failure = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                failure = type(exc).__name__
            await asyncio.sleep(full_jitter(0.5, attempt, 30.0))
        log.warning("notification not delivered", occurrence=occurrence, error=failure)
