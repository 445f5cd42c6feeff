"""`WorkerConfig`: everything a worker needs to know, as one small typed value.

The shell (`trellis.wiring`) builds it from the settings it read once; nothing on the worker side reads
the environment or imports the shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from jobs.connection import RedisTarget
from workers.backoff import full_jitter
from workers.outside.clients import ClientsConfig
from workers.reconcile.plan import DEFAULT_POLICY, Policy
from workers.runtime.waves import WaveRules
from workers.workflows.accounts import ScimPolicy


@dataclass(frozen=True)
class JobRetryPolicy:
    max_tries: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, job_try: int) -> float:
        return full_jitter(self.base_seconds, job_try - 1, self.cap_seconds)


@dataclass(frozen=True)
class JobRules:
    """How every job runs: its retries, and each function's time limit in seconds (by name)."""

    retry: JobRetryPolicy = field(default_factory=JobRetryPolicy)
    limits: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerConfig:
    redis: RedisTarget
    database_url: str = field(repr=False)
    queue_name: str = "trellis:queue"
    clients: ClientsConfig = field(default_factory=ClientsConfig)
    policy: Policy = DEFAULT_POLICY  # the configured reconcile rules; authority is each workspace's own
    retry: JobRetryPolicy = field(default_factory=JobRetryPolicy)
    # What offboarding does to the person's Atlassian account: nothing, ask an operator, or deactivate.
    scim_deactivate: ScimPolicy = "never"
    callback_url: str | None = None  # where Trello calls us back: the webhooks `ensure_webhooks` keeps
    # An action older than this (by its own date) starts no offboarding by itself: only reconciles.
    max_event_age_seconds: float = 6 * 3600
    job_timeout_seconds: int = 60
    concurrency: int = 16
    reconcile_debounce_seconds: float = 1.0
    scope_lease_seconds: float = 20.0
    waves: WaveRules = field(default_factory=WaveRules)  # the guard on waves of departures
    event_retention_days: int = 90  # the event log keeps this long, the audit log the next
    audit_retention_days: int = 400
    resync_interval_hours: int = 6
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no metrics served

    @property
    def has_trello(self) -> bool:
        return self.clients.trello is not None
