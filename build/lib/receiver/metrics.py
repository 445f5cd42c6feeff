"""The receiver's Prometheus metrics, on a registry of each app's own (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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

    def webhook_answered(self, action_type: str, outcome: str, seconds: float) -> None:
        children = self._children.get((action_type, outcome))
        if children is None:
            children = (self.webhooks.labels(action_type, outcome), self.ack_seconds.labels(outcome))
            self._children[(action_type, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)
