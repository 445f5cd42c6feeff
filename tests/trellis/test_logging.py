"""Logs: JSON lines carrying the request's action id, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog

from tests.support import TEST_SECRET, delivery, encode, signed_headers
from trellis.logging import REDACTED, SecretScrubber, configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(level="debug", fmt="json", secrets=[TEST_SECRET, "trello-token-xyz"], stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_known_secret_in_a_log_line_is_replaced(log_stream: io.StringIO) -> None:
    structlog.get_logger("t").error("call failed", url="https://api/1/members/me?token=trello-token-xyz")
    [line] = lines(log_stream)
    assert "trello-token-xyz" not in json.dumps(line)
    assert REDACTED in str(line["url"])


def test_secret_inside_an_exception_is_replaced(log_stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"bad secret {TEST_SECRET}")
    except RuntimeError:
        structlog.get_logger("t").exception("boom")
    assert TEST_SECRET not in log_stream.getvalue()


def test_scrubber_reaches_nested_values() -> None:
    scrub = SecretScrubber(["s3cr3t-value"])
    event = scrub(None, "info", {"event": "x", "data": {"list": ["a s3cr3t-value b"], "n": 1}})
    assert event == {"event": "x", "data": {"list": [f"a {REDACTED} b"], "n": 1}}


def test_values_too_short_to_be_secrets_never_mangle_words() -> None:
    scrub = SecretScrubber(["t"])  # a one-letter "token" (only the emulator takes one)
    event = scrub(None, "info", {"event": "Waiting for application shutdown."})
    assert event == {"event": "Waiting for application shutdown."}


async def test_every_line_of_a_webhook_request_carries_its_action_id(
    log_stream: io.StringIO, client: httpx.AsyncClient
) -> None:
    payload = delivery()
    body = encode(payload)
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    await client.post("/webhooks/trello", content=body, headers=signed_headers(body))

    request_lines = [line for line in lines(log_stream) if line.get("logger") == "receiver.webhooks"]
    assert request_lines, "the receiver logged nothing"
    assert all(line["action_id"] == payload["action"]["id"] for line in request_lines)


async def test_rejected_signature_is_logged_with_its_reason_and_no_secret(
    log_stream: io.StringIO, client: httpx.AsyncClient
) -> None:
    body = encode(delivery())
    await client.post("/webhooks/trello", content=body, headers={"x-trello-webhook": "forged"})
    rejected = [line for line in lines(log_stream) if line.get("event") == "webhook rejected"]
    assert rejected[0]["reason"] == "signature mismatch"
    assert TEST_SECRET not in log_stream.getvalue()
