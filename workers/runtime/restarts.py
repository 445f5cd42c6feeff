"""`run_until_stopped(config)`: an arq worker that outlives its Redis going away.

arq's worker dies with its Redis connection. Ours starts a new one in the same process, and lets the
jobs the dead one had started run again at once: arq marks a started job "in progress" until the
longest job limit + 10 s has passed (five minutes by default), and a run that ended with its worker
would otherwise wait that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from redis.exceptions import RedisError

from jobs.connection import RedisTarget, connect
from workers.runtime.config import WorkerConfig
from workers.runtime.worker import worker_settings

log = structlog.get_logger("workers.worker")


class RestartableWorker(Worker):
    """arq's worker, keeping the ids of the runs that ended in an error of arq's own bookkeeping (Redis
    went away while it read the job or recorded its end). arq takes such a run out of its task table
    before it raises the error, so without this list its job would be held back by its mark."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.broken_runs: set[str] = set()

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except BaseException:
            # Our own job functions' errors never get here (arq records them as the job's failure):
            # whatever does left the run half recorded.
            self.broken_runs.add(job_id)
            raise

    def unfinished(self) -> set[str]:
        """The jobs this worker started whose end it did not record: still running, or broken."""
        return set(self.tasks) | self.broken_runs


async def release_unfinished(target: RedisTarget, job_ids: set[str]) -> set[str]:
    """Let the jobs a lost worker had started run again now, not once arq's in-progress mark lapses:
    their runs ended with that worker, and whether arq recorded the end is unknown (it may have reached
    only a primary that died). Jobs are idempotent; a mark already gone is left so. The ids it could not
    release yet (Redis still away)."""
    if not job_ids:
        return job_ids
    redis = connect(target, timeout=2.0)
    try:
        await redis.delete(*(in_progress_key_prefix + job_id for job_id in job_ids))
    except RedisError as exc:
        log.warning("jobs of the lost worker not released yet", jobs=len(job_ids), error=str(exc))
        return job_ids
    finally:
        await redis.aclose()
    log.info("jobs of the lost worker may run again", jobs=len(job_ids))
    return set()


async def run_until_stopped(config: WorkerConfig) -> None:
    """Run an arq worker until a signal stops it, starting a new one, backing off, whenever Redis goes
    away, so that a Redis restart or failover needs no restart of ours (the jobs are in Redis: nothing is
    lost meanwhile). A new worker starts only once the jobs the last one left unfinished are free to run
    again. Between workers, SIGINT and SIGTERM stop it at once: arq's own handlers only reach a worker
    that is running."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pause = 0.5
    unfinished: set[str] = set()
    while not stop.is_set():
        unfinished = await release_unfinished(config.redis, unfinished)
        if not unfinished:
            started = loop.time()
            lost = await run_worker(config, pause)
            if lost is None:
                return
            unfinished = lost
            if loop.time() - started > 60:
                pause = 0.5  # it had been working: a new outage starts its backoff over
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, 10.0)
    log.info("stopped while Redis was away")


async def run_worker(config: WorkerConfig, retry_in: float) -> set[str] | None:
    """Run one arq worker until it stops (None) or loses Redis: then the jobs it left unfinished."""
    settings = worker_settings(config)
    arq_worker = RestartableWorker(**settings)
    redis_lost = False
    try:
        await arq_worker.async_run()
    except asyncio.CancelledError:
        pass  # a signal stopped it
    # Any Redis error that reaches arq's own loop: a connection lost mid-WATCH surfaces as a WatchError,
    # a demoted primary as READONLY. A new worker asks for the primary again.
    except (RedisError, OSError) as exc:
        log.warning("lost Redis: the worker starts again", error=str(exc), retry_in=retry_in)
        redis_lost = True
    finally:
        with contextlib.suppress(Exception):  # closing a connection to a Redis that is gone
            await arq_worker.close()
        if arq_worker.tasks:  # arq's close stops at the first that failed: let them all end
            await asyncio.wait(arq_worker.tasks.values())
        try:
            await settings["on_shutdown"](arq_worker.ctx)  # arq skips it when Redis is gone
        except Exception as exc:  # releasing clients of a Redis or store that are gone
            log.warning("worker not fully released", error=type(exc).__name__)
    return arq_worker.unfinished() if redis_lost else None
