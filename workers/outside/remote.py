"""One way to call an outside API: a permit from the shared limiter, the request, and the retry rules.

Timeouts, dropped connections and 5xx are retried with exponential backoff and full jitter, a bounded
number of times; a 429 sets the pause every worker honours and is tried again after it; any other
failure is raised at once, typed by the API's own `classify`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from workers import metrics
from workers.backoff import full_jitter
from workers.outside.errors import RemoteError
from workers.outside.limiter import Limit, Limiter, Priority

log = structlog.get_logger("workers.remote")

Classify = Callable[[httpx.Response, str], RemoteError]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries for timeouts, dropped connections and 5xx
    rate_limited_attempts: int = 8  # tries for 429s, each after the shared pause
    base: float = 0.5
    cap: float = 30.0


@dataclass(frozen=True)
class RemoteApi:
    http: httpx.AsyncClient
    limiter: Limiter
    retry: RetryPolicy
    classify: Classify
    unavailable: type[RemoteError]
    rate_limited: type[RemoteError]

    async def send(
        self,
        method: str,
        url: str,
        *,
        where: str,
        limits: list[Limit],
        headers: dict[str, str],
        priority: Priority = Priority.EVENT,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The successful response, or the typed error once retrying is over. `where` names the call in
        errors and logs: it must hold no secret."""
        failures = rate_limited = 0
        while True:
            try:
                async with self.limiter.permit(limits, priority):
                    response = await self.http.request(method, url, params=params, json=body, headers=headers)
            except httpx.TransportError as exc:
                metrics.API_CALLS.labels(metrics.endpoint(where), "no_answer").inc()
                error: RemoteError = self.unavailable(f"{where}: no answer ({type(exc).__name__})")
            else:
                metrics.API_CALLS.labels(metrics.endpoint(where), str(response.status_code)).inc()
                if response.is_success:
                    return response
                error = self.classify(response, where)
            if isinstance(error, self.rate_limited):
                metrics.RATE_LIMITED.labels("scim" if where.startswith("SCIM") else "trello").inc()
                rate_limited += 1
                if rate_limited >= self.retry.rate_limited_attempts:
                    raise error
                pause = await self.limiter.pause_for_429()
                log.warning("rate limited: every worker pauses", call=where, pause=round(pause, 2))
                continue
            failures += 1
            if not error.transient or failures >= self.retry.attempts:
                raise error
            delay = full_jitter(self.retry.base, failures - 1, self.retry.cap)
            log.info("call failed, retrying", call=where, error=str(error), retry_in=round(delay, 2))
            await asyncio.sleep(delay)
