"""`/webhooks/trello`: Trello's callback.

`HEAD` answers 200 (Trello's check when a webhook is created). A `POST` is verified, classified and, if it
touches membership, queued for `apply_event` under its action id, so that a retried delivery queues
nothing. The 2xx goes out only once Redis holds the job; when Redis cannot take it the answer is 503 and
Trello delivers again.

This route carries nearly all the traffic, so it is a plain ASGI app, reached before Starlette's
middleware and router (`receiver.app.ReceiverApp`): it reads `receive()` and writes `send()` itself
instead of building a Request and a Response object for every delivery, and answers every method itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from jobs import builders
from jobs.actions import Delivery, parse_delivery
from jobs.queue import JobQueue, RawJSON
from receiver.bodies import BodyTooLarge, ClientGone, read_bounded
from receiver.metrics import WebhookCounts
from receiver.signature import SignatureChecker

log = structlog.get_logger("receiver.webhooks")

WEBHOOK_PATH = "/webhooks/trello"
SIGNATURE_HEADER = b"x-trello-webhook"
JSON_HEADERS = [(b"content-type", b"application/json")]
NOT_ALLOWED_HEADERS = [(b"allow", b"HEAD, POST"), (b"content-type", b"text/plain; charset=utf-8")]


@dataclass(frozen=True)
class WebhookConfig:
    secret: str
    callback_url: str
    max_body_bytes: int


class Outcome(NamedTuple):
    """What became of one delivery: the answer's status, and the name it is counted and logged under.
    (A NamedTuple, as the other records made for every delivery: a frozen dataclass costs twice the
    time to build.)"""

    status: int
    name: str
    detail: str
    action_type: str = "unknown"
    action_id: str | None = None


class TrelloWebhookEndpoint:
    """The ASGI app behind `/webhooks/trello`, holding what it needs rather than reading globals."""

    def __init__(self, config: WebhookConfig, queue: JobQueue, counts: WebhookCounts) -> None:
        self.config = config
        self.queue = queue
        self.counts = counts
        self.signatures = SignatureChecker(config.secret, config.callback_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method != "POST":
            allowed = method == "HEAD"
            headers = [] if allowed else NOT_ALLOWED_HEADERS
            await send({"type": "http.response.start", "status": 200 if allowed else 405, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if allowed else b"Method Not Allowed"})
            return
        started = time.perf_counter()
        try:
            outcome = await self.handle(scope, receive)
        except ClientGone:
            return  # nobody is left to answer
        self.counts.webhook_answered(outcome.action_type, outcome.name, time.perf_counter() - started)
        content = {"status": outcome.name, "detail": outcome.detail}
        if outcome.action_id is not None:
            content["action_id"] = outcome.action_id
        body = orjson.dumps(content)
        headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def handle(self, scope: Scope, receive: Receive) -> Outcome:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        try:
            body = await read_bounded(headers, receive, self.config.max_body_bytes)
        except BodyTooLarge:
            log.warning("webhook rejected", reason="body too large", limit=self.config.max_body_bytes)
            return Outcome(413, "too_large", "body too large")

        signatures = [value for name, value in headers if name == SIGNATURE_HEADER]
        if len(signatures) != 1 or not signatures[0]:
            reason = "several signatures" if len(signatures) > 1 else "missing signature"
            log.warning("webhook rejected", reason=reason, **_sender(scope))
            return Outcome(401, "bad_signature", reason)
        encoding = self.signatures.match(body, signatures[0])
        if encoding is None:
            log.warning("webhook rejected", reason="signature mismatch", **_sender(scope))
            return Outcome(401, "bad_signature", "signature mismatch")
        self.counts.signature_matched(encoding)

        try:
            delivery = parse_delivery(orjson.loads(body))
        except ValueError as exc:  # orjson's JSONDecodeError (bad JSON or UTF-8) and InvalidDelivery alike
            log.warning("webhook rejected", reason="malformed", detail=str(exc))
            return Outcome(400, "malformed", f"malformed delivery: {exc}")

        known = (delivery.type, delivery.action_id)
        if not delivery.is_membership:
            return Outcome(200, "ignored", "not a membership action", *known)
        # The body was just parsed, so it is valid JSON: the job carries it as it came, not re-encoded.
        job = builders.apply_event(RawJSON(body), delivery.action_id)
        try:
            queued = await self.queue.enqueue(job)
        except Exception as exc:  # Redis down, slow or refusing: Trello must deliver again
            log.error("webhook not queued", **_named(delivery), error=type(exc).__name__, detail=str(exc))
            return Outcome(503, "unavailable", "queue unavailable, retry later", *known)
        if not queued:
            log.info("webhook already queued", **_named(delivery))
            return Outcome(200, "duplicate", "already queued", *known)
        # No log line for the common case: it is counted in metrics, and at full load a line per
        # delivery would cost more than the rest of the request.
        return Outcome(200, "queued", "queued", *known)


def _named(delivery: Delivery) -> dict[str, str]:
    # Named on the few lines that need it rather than bound to the context for every delivery.
    return {"action_id": delivery.action_id, "action_type": delivery.type}


def _sender(scope: Scope) -> dict[str, str | None]:
    """Who sent a rejected delivery: the peer, and what a proxy in front said of the client (this route
    is served before the proxy-headers middleware, so the header is logged as it came, not believed)."""
    client = scope.get("client")
    forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return {"client": str(client[0]) if client else None, "forwarded_for": ", ".join(forwarded) or None}
