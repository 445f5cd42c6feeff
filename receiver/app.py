"""`create_app(config)`: the receiver's Starlette application, from a small typed `ReceiverConfig`."""

from __future__ import annotations

import gc
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from jobs.connection import RedisTarget, connect
from jobs.queue import JobQueue
from membership.database import Database, is_sqlite, migrate
from receiver.api.errors import EXCEPTION_HANDLERS
from receiver.api.handlers import MembershipApi
from receiver.api.openapi import openapi_document
from receiver.console.app import Console, ConsoleConfig
from receiver.console.headers import SecurityHeaders
from receiver.health import Readiness, healthz
from receiver.metrics import ReceiverMetrics
from receiver.webhooks import WEBHOOK_PATH, TrelloWebhookEndpoint, WebhookConfig

log = structlog.get_logger("receiver")


class ReceiverApp(Starlette):
    """Starlette, except that Trello's deliveries go straight to their endpoint.

    They are nearly all the traffic, and the endpoint answers every request itself (405 for a wrong
    method included), so Starlette's error and exception middleware and its router would only cost time
    (about a tenth of the CPU a delivery, in a profile). An error the endpoint does not expect still
    ends as a 500, from uvicorn. So would the proxy headers (X-Forwarded-For, -Proto), which only the
    other routes read (a webhook's rejections log the header as it came): uvicorn's middleware for
    them runs in Starlette's stack, not in front of every delivery.
    """

    def __init__(self, *, webhook: ASGIApp | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.webhook is not None and scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


@dataclass(frozen=True)
class ReceiverConfig:
    redis: RedisTarget
    database_url: str = field(repr=False)
    queue_name: str = "trellis:queue"
    enqueue_timeout_seconds: float = 2.0
    webhook: WebhookConfig | None = None  # None: no webhook endpoint (no secret or callback URL)
    invite_ttl: timedelta = timedelta(days=14)  # an invite older than this answers as an unknown one
    metrics_token: str | None = field(default=None, repr=False)  # set: /metrics wants it as a bearer token
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    forwarded_allow_ips: str = "127.0.0.1"  # the proxies whose X-Forwarded-* headers are believed


def create_app(config: ReceiverConfig) -> ReceiverApp:
    """Build the app and the clients it uses; they connect on first use and close with the app."""
    redis = connect(config.redis, timeout=config.enqueue_timeout_seconds)
    queue = JobQueue(
        redis,
        config.queue_name,
        timeout=config.enqueue_timeout_seconds,
        min_replicas=config.redis.min_replicas,
    )
    database = Database(config.database_url)
    registry = CollectorRegistry()
    metrics = ReceiverMetrics(registry)

    async def metrics_endpoint(request: Request) -> Response:
        if config.metrics_token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, f"Bearer {config.metrics_token}".encode()):
                return Response("metrics need the bearer token (TRELLIS_METRICS_TOKEN)", status_code=401,
                                headers={"www-authenticate": "Bearer"})  # fmt: skip
        await metrics.refresh(redis, config.queue_name, database)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    webhook = config.webhook
    endpoint = None if webhook is None else TrelloWebhookEndpoint(webhook, queue, metrics.webhooks)
    document = openapi_document()

    async def openapi_endpoint(request: Request) -> Response:
        return JSONResponse(document)

    console = Console(config.console, database, queue, redis, config.invite_ttl)
    routes: list[BaseRoute] = list(MembershipApi(database, queue, invite_ttl=config.invite_ttl).routes())
    routes += [
        Mount("/console", app=SecurityHeaders(console.app())),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", Readiness({"redis": redis.ping, "store": database.ping}).respond, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if webhook is None:
            log.warning(
                "webhooks disabled", reason="TRELLIS_TRELLO_SECRET and TRELLIS_CALLBACK_URL are both needed"
            )
        if config.console.secret is None:
            log.warning(
                "console sessions end when this receiver stops",
                reason="TRELLIS_CONSOLE_SECRET is not set (set it, the same for every receiver)",
            )
        if is_sqlite(config.database_url):
            await migrate(config.database_url)
        # Everything alive now lives as long as the process. Freezing it keeps the cyclic GC from walking
        # that whole heap again and again: those walks were the receiver's worst latency tail.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await queue.aclose()
            await redis.aclose()
            await database.dispose()

    return ReceiverApp(
        webhook=endpoint,
        routes=routes,
        middleware=[Middleware(ProxyHeadersMiddleware, trusted_hosts=config.forwarded_allow_ips)],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
