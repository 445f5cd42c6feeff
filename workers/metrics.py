"""The workers' Prometheus metrics: jobs, calls to Trello and SCIM, the limiter, applied plans.

One registry a process (a worker is one process; `trellis worker` serves it on
`TRELLIS_WORKER_METRICS_PORT`). The receiver's metrics, and the gauges read from Redis and the store
at scrape time, are in `receiver/metrics.py`.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

REGISTRY = CollectorRegistry()

JOBS = Counter(
    "trellis_jobs", "Jobs run, by function and outcome (ok, retry, dead_letter).", ["job", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
JOB_SECONDS = Histogram(
    "trellis_job_seconds", "How long a job ran, by function.", ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=REGISTRY,
)  # fmt: skip
API_CALLS = Counter(
    "trellis_api_calls", "Calls to Trello and SCIM, by endpoint (ids replaced by {id}) and status.",
    ["endpoint", "status"], registry=REGISTRY,
)  # fmt: skip
RATE_LIMITED = Counter(
    "trellis_api_rate_limited", "429 answers, each of which paused every worker.", ["api"], registry=REGISTRY
)
LIMITER_WAIT_SECONDS = Histogram(
    "trellis_limiter_wait_seconds", "Time a call waited for a permit of the shared limiter, by priority.",
    ["priority"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)  # fmt: skip
HELD = Counter(
    "trellis_held", "Held for an operator: plans past the mass-change guard, and waves of departures.",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
WEBHOOKS_REACTIVATED = Counter(
    "trellis_webhooks_reactivated", "Webhooks Trello had switched off (deliveries failing), switched on.",
    registry=REGISTRY,
)  # fmt: skip
LAST_RESYNC = Gauge(
    "trellis_last_resync_timestamp_seconds", "When this worker last ran the full resync (Unix time).",
    registry=REGISTRY,
)  # fmt: skip
TOKEN_EXPIRES = Gauge(
    "trellis_trello_token_expires_timestamp_seconds",
    "When the Trello token expires (Unix time), as the last resync read it; 0: never, or not read yet.",
    registry=REGISTRY,
)  # fmt: skip
PLAN_OPERATIONS = Counter(
    "trellis_plan_operations", "Operations of reconcile plans applied, by scope and operation.",
    ["scope", "operation"], registry=REGISTRY,
)  # fmt: skip

STORE_STATEMENTS = Counter(
    "trellis_store_statements", "SQL statements sent to the store, by the job function that sent them.",
    ["job"], registry=REGISTRY,
)  # fmt: skip

# The job function running in this task ("none" outside a job), set by `workers.runtime.wrapper.job`.
# SQLAlchemy runs a statement in a greenlet that carries the awaiting task's context, so the listener
# below sees the job whose statement it is even with many jobs running at once.
RUNNING_JOB: ContextVar[str] = ContextVar("trellis_running_job", default="none")


def count_statements(engine: AsyncEngine) -> None:
    """Count every statement `engine` sends, under the job that sent it: what a reconcile costs the
    store, and whether that grows with the workspace (it must not)."""
    children: dict[str, Any] = {}

    def counted(*_: Any) -> None:
        name = RUNNING_JOB.get()
        child = children.get(name)
        if child is None:
            child = children[name] = STORE_STATEMENTS.labels(name)
        child.inc()

    event.listen(engine.sync_engine, "before_cursor_execute", counted)


_ID = re.compile(r"/[0-9a-fA-F]{24}(?=/|$)|/Users/[^/?]+|/Groups/[^/?]+")


def endpoint(where: str) -> str:
    """`GET /boards/5f.../members/60...` -> `GET /boards/{id}/members/{id}`: one series an endpoint."""
    return _ID.sub(lambda m: m.group(0).rsplit("/", 1)[0] + "/{id}", where)
