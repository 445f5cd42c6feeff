"""The webhook endpoint's counters, as a Prometheus scrape reads them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from receiver.metrics import ReceiverMetrics


def scrape(metrics: ReceiverMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the scrape's text, parsed back: (name, sorted labels) -> value."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_answers_are_counted_by_action_type_and_outcome() -> None:
    metrics = ReceiverMetrics(CollectorRegistry())
    for _ in range(3):
        metrics.webhooks.webhook_answered("addMemberToBoard", "queued", 0.001)
    metrics.webhooks.webhook_answered("addMemberToBoard", "duplicate", 0.001)

    samples = scrape(metrics)

    assert samples[("trellis_webhooks_total", (("outcome", "queued"), ("type", "addMemberToBoard")))] == 3
    assert samples[("trellis_webhooks_total", (("outcome", "duplicate"), ("type", "addMemberToBoard")))] == 1


def test_answer_times_fill_cumulative_buckets_whose_bound_is_inclusive() -> None:
    metrics = ReceiverMetrics(CollectorRegistry())
    for seconds in (0.002, 0.0021, 0.03, 9.0):
        metrics.webhooks.webhook_answered("addMemberToBoard", "queued", seconds)

    samples = scrape(metrics)
    queued = (("outcome", "queued"),)
    buckets = {
        le: samples[("trellis_webhook_ack_seconds_bucket", (("le", le), *queued))]
        for le in ("0.001", "0.002", "0.005", "0.05", "5.0", "+Inf")
    }

    assert buckets == {"0.001": 0, "0.002": 1, "0.005": 2, "0.05": 3, "5.0": 3, "+Inf": 4}
    assert samples[("trellis_webhook_ack_seconds_count", queued)] == 4
    assert samples[("trellis_webhook_ack_seconds_sum", queued)] == 0.002 + 0.0021 + 0.03 + 9.0


def test_signatures_are_counted_by_encoding_and_both_are_always_exported() -> None:
    metrics = ReceiverMetrics(CollectorRegistry())
    metrics.webhooks.signature_matched("binary")

    samples = scrape(metrics)

    assert samples[("trellis_webhook_signatures_total", (("encoding", "binary"),))] == 1
    assert samples[("trellis_webhook_signatures_total", (("encoding", "utf-8"),))] == 0
