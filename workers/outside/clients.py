"""The worker's connections to the outside: one HTTP pool, one limiter, the Trello and SCIM clients.

Built from `ClientsConfig`, a small typed value the shell (`trellis`) makes from its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis

from workers.outside.limiter import Limiter, LimiterPolicy
from workers.outside.notify import Notifier
from workers.outside.scim import ScimClient, ScimLimits
from workers.outside.trello import TrelloClient, TrelloLimits

LIMITER_NAMESPACE = "trellis"


@dataclass(frozen=True)
class TrelloConfig:
    base_url: str
    key: str = field(repr=False)
    token: str = field(repr=False)
    limits: TrelloLimits = field(default_factory=TrelloLimits)


@dataclass(frozen=True)
class ScimConfig:
    base_url: str
    directory_id: str
    token: str = field(repr=False)
    limits: ScimLimits = field(default_factory=ScimLimits)


@dataclass(frozen=True)
class ClientsConfig:
    http_timeout: float = 10.0
    limiter: LimiterPolicy = field(default_factory=LimiterPolicy)
    trello: TrelloConfig | None = None  # None without Trello credentials
    scim: ScimConfig | None = None  # None unless a SCIM directory is configured
    notify_url: str | None = field(default=None, repr=False)  # an incoming webhook: its URL is a secret


@dataclass
class Clients:
    http: httpx.AsyncClient
    limiter: Limiter
    trello: TrelloClient | None
    scim: ScimClient | None
    notifier: Notifier | None = None

    async def aclose(self) -> None:
        await self.limiter.aclose()
        await self.http.aclose()


def build_clients(config: ClientsConfig, redis: Redis) -> Clients:
    timeout = httpx.Timeout(config.http_timeout, connect=min(5.0, config.http_timeout))
    http = httpx.AsyncClient(
        timeout=timeout, limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
    )
    limiter = Limiter(redis, LIMITER_NAMESPACE, config.limiter)
    trello = scim = None
    if config.trello is not None:
        trello = TrelloClient(
            http,
            base_url=config.trello.base_url,
            key=config.trello.key,
            token=config.trello.token,
            limiter=limiter,
            limits=config.trello.limits,
        )
    if config.scim is not None:
        scim = ScimClient(
            http,
            base_url=config.scim.base_url,
            directory_id=config.scim.directory_id,
            token=config.scim.token,
            limiter=limiter,
            limits=config.scim.limits,
        )
    notifier = Notifier(http, config.notify_url, redis) if config.notify_url else None
    return Clients(http=http, limiter=limiter, trello=trello, scim=scim, notifier=notifier)
