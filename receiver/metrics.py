"""The receiver's Prometheus metrics, on a registry of each app's own (tests build many apps).

What the webhook endpoint counts is kept in plain integers and floats and turned into Prometheus
families only when scraped (`WebhookCounts`): prometheus_client's Counter and Histogram take a lock and
walk the buckets in Python on every update, which came to about 4 % of the receiver's CPU a delivery.
Plain counters need no lock because one thread, the event loop's, both updates and scrapes them.

Besides what the receiver counts itself, a scrape reads the state everyone shares: the queue's depth and
the dead letters in Redis, the approvals waiting in the store. The workers' own metrics (jobs, API
calls, the limiter) are served by each worker: `workers/metrics.py`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

import structlog
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from redis.asyncio import Redis

from jobs.deadletters import DeadLetters
from membership import approvals
from membership.database import Database

log = structlog.get_logger("receiver.metrics")

ACK_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Which encoding of the body Trello signed (TRELLO.md, Signature): "utf-8", or the old "binary".
SIGNATURE_ENCODINGS = ("utf-8", "binary")


class _AckTimes:
    """One outcome's answer times: a count a bucket (not yet cumulative), their sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(ACK_BUCKETS) + 1)  # the last is +Inf
        self.total = 0.0


class WebhookCounts(Collector):
    """What became of the webhook deliveries: by action type and outcome, how long their answers took,
    which encoding their signatures were made over."""

    def __init__(self) -> None:
        self._answered: dict[tuple[str, str], int] = {}
        self._ack_times: dict[str, _AckTimes] = {}
        self._signatures = dict.fromkeys(SIGNATURE_ENCODINGS, 0)

    def signature_matched(self, encoding: str) -> None:
        self._signatures[encoding] += 1

    def webhook_answered(self, action_type: str, outcome: str, seconds: float) -> None:
        key = (action_type, outcome)
        self._answered[key] = self._answered.get(key, 0) + 1
        times = self._ack_times.get(outcome)
        if times is None:
            times = self._ack_times[outcome] = _AckTimes()
        times.buckets[bisect_left(ACK_BUCKETS, seconds)] += 1  # the first bound >= seconds: "le"
        times.total += seconds

    def collect(self) -> Iterator[Metric]:
        answered = CounterMetricFamily(
            "trellis_webhooks", "Webhook deliveries received, by action type and outcome.",
            labels=["type", "outcome"],
        )  # fmt: skip
        for (action_type, outcome), count in sorted(self._answered.items()):
            answered.add_metric([action_type, outcome], count)
        yield answered
        ack_seconds = HistogramMetricFamily(
            "trellis_webhook_ack_seconds", "Time from a delivery's arrival to its answer.", labels=["outcome"]
        )
        bounds = [*map(floatToGoString, ACK_BUCKETS), "+Inf"]
        for outcome, times in sorted(self._ack_times.items()):
            buckets = list(zip(bounds, accumulate(times.buckets), strict=True))
            ack_seconds.add_metric([outcome], buckets, times.total)
        yield ack_seconds
        signatures = CounterMetricFamily(
            "trellis_webhook_signatures",
            "Valid webhook signatures, by the encoding of the body they were made over.",
            labels=["encoding"],
        )
        for encoding, count in self._signatures.items():
            signatures.add_metric([encoding], count)
        yield signatures


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.webhooks = WebhookCounts()
        registry.register(self.webhooks)
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
