"""`/webhooks/trello`: Trello's callback.

`HEAD` answers 200 (Trello's check when a webhook is created). A `POST` is verified, classified and, if it
touches membership, queued for `apply_event` under its action id, so that a retried delivery queues
nothing. The 2xx goes out only once Redis holds the job; when Redis cannot take it the answer is 503 and
Trello delivers again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from receiver import signature
from receiver.metrics import ReceiverMetrics
from workers.actions import parse_delivery
from workers.queue import Job, JobQueue

log = structlog.get_logger("receiver.webhooks")

SIGNATURE_HEADER = "x-trello-webhook"


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class WebhookConfig:
    secret: str
    callback_url: str
    max_body_bytes: int
    enqueue_timeout: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery: the answer's status, and the name it is counted and logged under."""

    status: int
    name: str
    detail: str
    action_type: str = "unknown"


class TrelloWebhookEndpoint:
    """The ASGI endpoint behind `/webhooks/trello`, holding what it needs rather than reading globals."""

    def __init__(self, config: WebhookConfig, queue: JobQueue, metrics: ReceiverMetrics) -> None:
        self.config = config
        self.queue = queue
        self.metrics = metrics

    async def respond(self, request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        started = time.perf_counter()
        outcome = await self.handle(request)
        self.metrics.webhooks.labels(outcome.action_type, outcome.name).inc()
        self.metrics.ack_seconds.labels(outcome.name).observe(time.perf_counter() - started)
        return JSONResponse({"status": outcome.name, "detail": outcome.detail}, status_code=outcome.status)

    async def handle(self, request: Request) -> Outcome:
        try:
            body = await read_bounded(request, self.config.max_body_bytes)
        except BodyTooLarge:
            log.warning("webhook rejected", reason="body too large", limit=self.config.max_body_bytes)
            return Outcome(413, "too_large", "body too large")
        except ClientDisconnect:
            return Outcome(400, "disconnected", "client went away")

        signatures = request.headers.getlist(SIGNATURE_HEADER)
        if len(signatures) != 1 or not signatures[0]:
            reason = "several signatures" if len(signatures) > 1 else "missing signature"
            log.warning("webhook rejected", reason=reason, client=_client(request))
            return Outcome(401, "bad_signature", reason)
        if not signature.is_valid(self.config.secret, body, self.config.callback_url, signatures[0]):
            log.warning("webhook rejected", reason="signature mismatch", client=_client(request))
            return Outcome(401, "bad_signature", "signature mismatch")

        try:
            delivery = parse_delivery(json.loads(body))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and InvalidDelivery alike
            log.warning("webhook rejected", reason="malformed", detail=str(exc))
            return Outcome(400, "malformed", f"malformed delivery: {exc}")

        with structlog.contextvars.bound_contextvars(action_id=delivery.action_id, action_type=delivery.type):
            if not delivery.is_membership:
                return Outcome(200, "ignored", "not a membership action", delivery.type)
            job = Job("apply_event", (delivery.body,), job_id=delivery.action_id)
            try:
                async with asyncio.timeout(self.config.enqueue_timeout):
                    queued = await self.queue.enqueue(job)
            except Exception as exc:  # Redis down, slow or refusing: Trello must deliver again
                log.error("webhook not queued", error=type(exc).__name__, detail=str(exc))
                return Outcome(503, "unavailable", "queue unavailable, retry later", delivery.type)
            if not queued:
                log.info("webhook already queued")
                return Outcome(200, "duplicate", "already queued", delivery.type)
            log.debug("webhook queued")
            return Outcome(200, "queued", "queued", delivery.type)


async def read_bounded(request: Request, limit: int) -> bytes:
    """The raw body, refusing at once anything past `limit` bytes rather than reading it into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
