"""`worker_settings(settings)`: everything arq's Worker needs, built from our Settings."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Function, Worker, func
from prometheus_client import start_http_server
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from membership.database import Database, is_sqlite, migrate
from trellis.settings import Settings
from workers import jobs, metrics
from workers.clients import build_clients
from workers.plan import Policy
from workers.queue import JobQueue, deserialize, serialize
from workers.runner import JobFunction, JobRetryPolicy
from workers.scopes import Scopes

log = structlog.get_logger("workers.worker")

# The jobs, each with its time limit in job timeouts (`job_timeout_seconds`). A job lost with a killed
# worker runs again only after arq's longest limit + 10 s: keep the timeout short.
LONG_JOB = 5  # one call a board of a workspace
JOB_TIMEOUTS: dict[JobFunction, int] = {
    jobs.apply_event: 1,
    jobs.push_member_change: LONG_JOB,
    jobs.offboard_member: LONG_JOB,
    jobs.reconcile_board: 1,
    jobs.reconcile_org: 1,
    jobs.deactivate_account: 1,
    jobs.full_resync: 1,  # marks scopes and queues jobs: quick, however many boards there are
    jobs.ensure_webhooks: LONG_JOB,
}
# apply_event keeps its result an hour: its job id, the action id, dedupes retried deliveries while the
# result is kept. No other job keeps one: reconciles are coalesced by their scope's state in Redis, a
# change's push by its outbox row; and a kept result would outlive a reset store's ids (a new demo's
# store numbers its changes from 1 again) and swallow the new change's job.
KEPT_RESULTS = {"apply_event": 3600}
# arq's own limit sits this far past ours (`workers.runner`), so that ours fires first and retries.
ARQ_GRACE_SECONDS = 5


def job_limits(timeout: int) -> dict[str, int]:
    """Each job's time limit, in seconds."""
    return {job.__name__: timeout * timeouts for job, timeouts in JOB_TIMEOUTS.items()}


def functions(policy: JobRetryPolicy, timeout: int) -> list[Function]:
    limits = job_limits(timeout)
    return [
        func(
            job,
            name=job.__name__,
            keep_result=KEPT_RESULTS.get(job.__name__, 0),
            max_tries=policy.max_tries,
            timeout=limits[job.__name__] + ARQ_GRACE_SECONDS,
        )
        for job in JOB_TIMEOUTS
    ]


def resync_schedule(settings: Settings) -> list[CronJob]:
    """The full resync every `resync_interval_hours`, on the hour. arq gives a cron run a job id of its
    time, so with several workers it runs once."""
    hours = set(range(0, 24, settings.resync_interval_hours))
    return [
        cron(
            jobs.full_resync,
            name="full_resync",
            hour=hours,
            minute=0,
            run_at_startup=False,
            max_tries=settings.job_max_tries,
            timeout=settings.job_timeout_seconds,
        )
    ]


def reconcile_policy(settings: Settings) -> Policy:
    """The configured reconcile rules; each workspace brings its own authority and plan."""
    return Policy(
        observer_fallback=settings.observer_fallback,
        guard_members=settings.guard_max_members,
        guard_share=settings.guard_max_share,
    )


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker``."""
    policy = JobRetryPolicy(
        max_tries=settings.job_max_tries,
        base_seconds=settings.job_retry_base_seconds,
        cap_seconds=settings.job_retry_cap_seconds,
    )

    async def on_startup(ctx: dict[str, Any]) -> None:
        if settings.worker_metrics_port:
            try:
                ctx["metrics_server"], _ = start_http_server(
                    settings.worker_metrics_port, addr=settings.host, registry=metrics.REGISTRY
                )
            except OSError as exc:  # a second worker on the machine: it works on, unscraped
                log.warning("metrics not served", port=settings.worker_metrics_port, error=str(exc))
        if is_sqlite(settings.database_url):
            await migrate(settings.database_url)
        ctx["settings"] = settings
        ctx["policy"] = reconcile_policy(settings)
        ctx["retry_policy"] = policy
        ctx["job_limits"] = job_limits(settings.job_timeout_seconds)
        ctx["database"] = Database(settings.database_url)
        ctx["queue"] = JobQueue(ctx["redis"], settings.queue_name)
        ctx["clients"] = build_clients(settings, ctx["redis"])
        # The scope state outlives the longest run by a margin, so a lost job cannot block its scope.
        ctx["scopes"] = Scopes(
            ctx["redis"],
            ctx["queue"],
            debounce=settings.reconcile_debounce_seconds,
            lifetime=settings.job_timeout_seconds * 3,
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if "metrics_server" in ctx:
            ctx["metrics_server"].shutdown()
        if "queue" in ctx:
            await ctx["queue"].aclose()
        if "database" in ctx:
            await ctx["database"].dispose()
        if "clients" in ctx:
            await ctx["clients"].aclose()

    return {
        "functions": functions(policy, settings.job_timeout_seconds),
        "cron_jobs": resync_schedule(settings),
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": settings.worker_concurrency,
        "job_timeout": settings.job_timeout_seconds,
        "health_check_interval": 30,
        "max_tries": policy.max_tries,
        "handle_signals": True,
        # On SIGTERM stop taking jobs and let the running ones finish.
        "job_completion_wait": settings.job_timeout_seconds,
    }


async def run_until_stopped(settings: Settings) -> None:
    """Run an arq worker until a signal stops it. arq's worker dies with its Redis connection; this one
    starts a new worker in the same process, backing off, so that a Redis restart needs no restart of
    ours (the jobs are in Redis: nothing is lost meanwhile)."""
    pause = 0.5
    while True:
        arq_worker = Worker(**worker_settings(settings))
        try:
            await arq_worker.async_run()
            return
        except asyncio.CancelledError:
            return  # a signal stopped it
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("lost Redis: the worker starts again", error=str(exc), retry_in=pause)
        finally:
            with contextlib.suppress(Exception):  # closing a connection to a Redis that is gone
                await arq_worker.close()
        await asyncio.sleep(pause)
        pause = min(pause * 2, 10.0)
