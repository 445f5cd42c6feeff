"""How a job function runs: context on every log line, and failures mapped to job outcomes in one place.

A plain exception would end an arq job for good. Here an error that may pass (a connection refused, a
timeout, a database that is restarting) becomes ``arq.Retry`` with exponential backoff and full jitter;
an error that will not pass, or the last try, puts the job on the dead-letter list, so nothing is lost
without an operator seeing it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from jobs.deadletters import DeadLetter, DeadLetters
from workers import metrics
from workers.outside.errors import RemoteError
from workers.runtime.config import JobRules
from workers.runtime.context import CONTEXT_KEY
from workers.runtime.contract import violation
from workers.runtime.scopes import LeaseLost

log = structlog.get_logger("workers.runtime")

JobFunction = Callable[..., Coroutine[Any, Any, Any]]


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass, so that the job is tried again later: the one definition."""
    if isinstance(exc, RemoteError):
        return exc.transient  # each error of the Trello and SCIM families says whether it may pass
    if isinstance(exc, OSError | TimeoutError | RedisConnectionError | RedisTimeoutError | LeaseLost):
        return True
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, IntegrityError):
        # A concurrent writer inserted the same row first (two reconciles of one board: a push's and a
        # scope's); tried again, the job reads that row. A bug that always violates a constraint still
        # ends on the dead-letter list, after the last try.
        return True
    # asyncpg's connection errors reach us wrapped in DBAPIError with connection_invalidated set.
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def rules_of(ctx: dict[str, Any]) -> JobRules:
    rules: JobRules = ctx[CONTEXT_KEY].rules
    return rules


def will_retry(ctx: dict[str, Any], exc: BaseException) -> bool:
    """Whether the job failing with `exc` is tried again (else it goes to the dead-letter list)."""
    return is_transient(exc) and ctx.get("job_try", 1) < rules_of(ctx).retry.max_tries


def job(function: JobFunction) -> JobFunction:
    """Wrap an arq job function with logging context, retries and dead-lettering."""

    @functools.wraps(function)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        rules = rules_of(ctx)
        job_try: int = ctx.get("job_try", 1)
        job_id: str = ctx.get("job_id", "")
        with structlog.contextvars.bound_contextvars(job_id=job_id, job=function.__name__, job_try=job_try):
            name, started = function.__name__, time.monotonic()

            async def dead_letter(error: str) -> None:
                await DeadLetters(ctx["redis"]).add(
                    DeadLetter(job_id, name, list(args), kwargs, job_try, error)
                )
                metrics.JOBS.labels(name, "dead_letter").inc()
                notify = getattr(ctx.get(CONTEXT_KEY), "notify", None)  # a test's bare context has none
                if notify is not None:
                    notify(f"dead:{job_id}", f"Trellis gave up on {name} ({job_id}): {error[:300]}. "
                           "See `trellis dead-letters list`.")  # fmt: skip

            if (refused := violation(function, args, kwargs)) is not None:
                # Planted, or queued by a version that no longer fits: never run, kept for a person.
                log.error("job refused: it does not fit the job contract", error=refused)
                await dead_letter(f"ContractViolation: {refused}")
                return f"refused: {refused}"
            # Our own limit, a little inside arq's: a job arq times out is failed for good and silently
            # (no retry, no dead letter); one that times out here is retried like any passing failure.
            running = metrics.RUNNING_JOB.set(name)  # reset below: a job may call another one's function
            try:
                async with asyncio.timeout(rules.limits.get(name)):
                    result = await function(ctx, *args, **kwargs)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if will_retry(ctx, exc):
                    delay = rules.retry.delay(job_try)
                    log.warning("job failed, will retry", error=error, retry_in=round(delay, 2))
                    metrics.JOBS.labels(name, "retry").inc()
                    raise Retry(defer=delay) from exc
                log.error("job failed for good", error=error, exc_info=not is_transient(exc))
                await dead_letter(error)
                raise
            finally:
                metrics.JOB_SECONDS.labels(name).observe(time.monotonic() - started)
                metrics.RUNNING_JOB.reset(running)
            metrics.JOBS.labels(name, "ok").inc()
            return result

    return run
