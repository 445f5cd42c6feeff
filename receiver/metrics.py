"""The receiver's Prometheus metrics, on a registry of each app's own (tests build many apps).

Besides what the receiver counts itself, a scrape reads the state everyone shares: the queue's depth and
the dead letters in Redis, the approvals waiting in the store. The workers' own metrics (jobs, API
calls, the limiter) are served by each worker: `workers/metrics.py`.
"""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.asyncio import Redis

from jobs.deadletters import DeadLetters
from membership import approvals
from membership.database import Database

log = structlog.get_logger("receiver.metrics")


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Labelled children looked up once each: `labels()` takes a lock and builds a key every call.
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self.webhooks = Counter(
            "trellis_webhooks",
            "Webhook deliveries received, by action type and outcome.",
            ["type", "outcome"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "trellis_webhook_ack_seconds",
            "Time from a delivery's arrival to its answer.",
            ["outcome"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        # Which encoding of the body Trello signed (TRELLO.md, Signature): "utf-8", or the old "binary".
        self.signatures = Counter(
            "trellis_webhook_signatures",
            "Valid webhook signatures, by the encoding of the body they were made over.",
            ["encoding"],
            registry=registry,
        )
        self._signature_children = {
            encoding: self.signatures.labels(encoding) for encoding in ("utf-8", "binary")
        }
        self.queue_depth = Gauge("trellis_queue_depth", "Jobs waiting in the queue.", registry=registry)
        self.dead_letters = Gauge(
            "trellis_dead_letters", "Jobs that failed for good, waiting for an operator.", registry=registry
        )
        self.pending_approvals = Gauge(
            "trellis_pending_approvals",
            "Held plans and account deactivations waiting for an operator.",
            registry=registry,
        )

    async def refresh(self, redis: Redis, queue_name: str, database: Database) -> None:
        """Read the shared state for a scrape; what cannot be read now keeps its last value."""
        try:
            self.queue_depth.set(await redis.zcard(queue_name))
            self.dead_letters.set(await DeadLetters(redis).count())
            async with database.transaction() as session:
                self.pending_approvals.set(len(await approvals.open_approvals(session)))
        except Exception as exc:
            log.warning("metrics: shared state not read", error=type(exc).__name__)

    def signature_matched(self, encoding: str) -> None:
        self._signature_children[encoding].inc()

    def webhook_answered(self, action_type: str, outcome: str, seconds: float) -> None:
        children = self._children.get((action_type, outcome))
        if children is None:
            children = (self.webhooks.labels(action_type, outcome), self.ack_seconds.labels(outcome))
            self._children[(action_type, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)
