"""`worker_settings(config)`: everything arq's Worker needs, built from a `WorkerConfig`."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import structlog
from arq.connections import ArqRedis
from arq.cron import CronJob, cron
from arq.worker import Function, func
from prometheus_client import start_http_server
from redis.asyncio import Redis

from jobs import status
from jobs.builders import LEGACY_NAMES
from jobs.connection import connect
from jobs.queue import JobQueue, deserialize, serialize
from jobs.status import StatusBoard
from membership.database import Database, is_sqlite, migrate
from workers import metrics
from workers.outside.clients import build_clients
from workers.outside.limiter import Limiter
from workers.runtime import functions
from workers.runtime.config import JobRules, WorkerConfig
from workers.runtime.context import CONTEXT_KEY, WorkerContext, context_of
from workers.runtime.scopes import Scopes
from workers.runtime.waves import Departures
from workers.runtime.wrapper import JobFunction

log = structlog.get_logger("workers.worker")

# The jobs, each with its time limit in job timeouts (`job_timeout_seconds`). A job lost with a killed
# worker runs again only after arq's longest limit + 10 s: keep the timeout short.
LONG_JOB = 5  # one call a board of a workspace
JOB_TIMEOUTS: dict[JobFunction, int] = {
    functions.apply_event: 1,
    functions.push_member_change: LONG_JOB,
    functions.offboard_member: LONG_JOB,
    functions.reconcile_board: 1,
    functions.reconcile_workspace: 1,
    functions.deactivate_account: 1,
    functions.full_resync: 1,  # marks scopes and queues jobs: quick, however many boards there are
    functions.ensure_webhooks: LONG_JOB,
    functions.sweep_outbox: 1,
    functions.prune_history: LONG_JOB,
}
# apply_event keeps its result an hour: its job id, the action id, dedupes retried deliveries while the
# result is kept. No other job keeps one: reconciles are coalesced by their scope's state in Redis, a
# change's push by its outbox row; and a kept result would outlive a reset store's ids (a new demo's
# store numbers its changes from 1 again) and swallow the new change's job.
KEPT_RESULTS = {"apply_event": 3600}
# arq's own limit sits this far past ours (`workers.runtime.wrapper`), so that ours fires first and retries.
ARQ_GRACE_SECONDS = 5


def job_rules(config: WorkerConfig) -> JobRules:
    """The retry policy, and each job's time limit in seconds (under its current and legacy names)."""
    limits = {job.__name__: config.job_timeout_seconds * n for job, n in JOB_TIMEOUTS.items()}
    limits |= {old: limits[new] for old, new in LEGACY_NAMES.items()}
    return JobRules(config.retry, limits)


def arq_functions(config: WorkerConfig) -> list[Function]:
    """Every job under its name, and under the names older versions queued it with."""
    rules = job_rules(config)
    current = {job.__name__: job for job in JOB_TIMEOUTS}
    by_name = current | {old: current[new] for old, new in LEGACY_NAMES.items()}
    return [
        func(
            job,
            name=name,
            keep_result=KEPT_RESULTS.get(name, 0),
            max_tries=config.retry.max_tries,
            timeout=rules.limits[name] + ARQ_GRACE_SECONDS,
        )
        for name, job in by_name.items()
    ]


def resync_schedule(config: WorkerConfig) -> list[CronJob]:
    """The full resync every `resync_interval_hours`, on the hour; the outbox sweep every minute and as
    the worker starts (after Redis was away, say). arq gives a cron run a job id of its time, so with
    several workers each runs once."""
    hours = set(range(0, 24, config.resync_interval_hours))
    common: dict[str, Any] = {"max_tries": config.retry.max_tries, "timeout": config.job_timeout_seconds}
    return [
        cron(functions.full_resync, name="full_resync", hour=hours, minute=0, run_at_startup=False, **common),
        cron(functions.sweep_outbox, name="sweep_outbox", second=0, run_at_startup=True, **common),
        # Daily, at a quiet minute; in short batches, so it holds the store for moments only.
        cron(
            functions.prune_history, name="prune_history", hour=3, minute=17, run_at_startup=False, **common
        ),
    ]


async def repair_lapsed_scopes(scopes: Scopes) -> None:
    """Every half lease, queue again the scopes whose run died with its worker (its lease lapsed)."""
    while True:
        await asyncio.sleep(scopes.lease / 2)
        try:
            await scopes.repair_lapsed()
        except Exception as exc:  # Redis away for a moment: the next round tries again
            log.warning("lapsed scopes not checked", error=type(exc).__name__)


LIMITER_USE_EVERY = 5.0  # seconds between two reports of the limiter's use to the status board


async def publish_limiter_use(limiter: Limiter, redis: Redis, every: float = LIMITER_USE_EVERY) -> None:
    """Tell the status board how much of each limit the window holds, every few seconds, for the console.
    Every worker writes the same figures (the window is shared): the latest write is as good as any."""
    board = StatusBoard(redis)
    while True:
        await asyncio.sleep(every)
        try:
            uses = await limiter.use()
            if uses:
                await board.publish(status.LIMITER, limits=[asdict(use) for use in uses])
        except Exception as exc:  # Redis away for a moment: the next round tries again
            log.warning("limiter use not published", error=type(exc).__name__)


def arq_pool(config: WorkerConfig) -> ArqRedis:
    """arq's client, made by our `connect` so that it follows a Sentinel failover like every other part;
    it encodes the jobs arq enqueues itself (cron runs) as JSON, as ours are."""
    pool = connect(config.redis, timeout=None, redis_class=ArqRedis)
    pool.job_serializer = serialize
    pool.job_deserializer = deserialize
    pool.default_queue_name = config.queue_name
    return pool


def worker_settings(config: WorkerConfig) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker``."""
    metrics_server: list[Any] = []
    background: list[asyncio.Task[None]] = []

    async def on_startup(ctx: dict[str, Any]) -> None:
        if config.metrics_port:
            try:
                server, _ = start_http_server(
                    config.metrics_port, addr=config.metrics_host, registry=metrics.REGISTRY
                )
                metrics_server.append(server)
            except OSError as exc:  # a second worker on the machine: it works on, unscraped
                log.warning("metrics not served", port=config.metrics_port, error=str(exc))
        if is_sqlite(config.database_url):
            await migrate(config.database_url)
        queue = JobQueue(ctx["redis"], config.queue_name, min_replicas=config.redis.min_replicas)
        database = Database(config.database_url)
        metrics.count_statements(database.engine)
        ctx[CONTEXT_KEY] = WorkerContext(
            config=config,
            rules=job_rules(config),
            database=database,
            queue=queue,
            clients=build_clients(config.clients, ctx["redis"]),
            # A queued scope's state outlives the longest run by a margin, so a lost job cannot block its
            # scope; the lease, not this lifetime, keeps two runs of a scope apart.
            scopes=Scopes(
                ctx["redis"],
                queue,
                debounce=config.reconcile_debounce_seconds,
                lifetime=config.job_timeout_seconds * 3,
                lease=config.scope_lease_seconds,
            ),
            departures=Departures(ctx["redis"], config.waves),
        )
        background.append(asyncio.create_task(repair_lapsed_scopes(context_of(ctx).scopes)))
        limiter = context_of(ctx).clients.limiter
        background.append(asyncio.create_task(publish_limiter_use(limiter, ctx["redis"])))

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        """Release what on_startup made; safe to call twice (arq skips it when Redis is gone, and
        `run_until_stopped` then calls it)."""
        while background:
            background.pop().cancel()
        while metrics_server:
            metrics_server.pop().shutdown()
        if CONTEXT_KEY in ctx:
            await ctx.pop(CONTEXT_KEY).aclose()

    return {
        "functions": arq_functions(config),
        "cron_jobs": resync_schedule(config),
        "redis_pool": arq_pool(config),
        "queue_name": config.queue_name,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": config.concurrency,
        "job_timeout": config.job_timeout_seconds,
        "health_check_interval": 30,
        "max_tries": config.retry.max_tries,
        # A job that fails before its function runs (its key gone, as a failover can leave it; its name
        # unknown) keeps no result: a kept one would swallow the delivery of the same action again.
        "keep_result": 0,
        "handle_signals": True,
        # On SIGTERM stop taking jobs and let the running ones finish.
        "job_completion_wait": config.job_timeout_seconds,
    }
