"""The worker's connections to the outside: one HTTP pool, one limiter, the Trello and SCIM clients."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from trellis.settings import Settings
from workers.limiter import Limiter, LimiterPolicy
from workers.scim import ScimClient, ScimLimits
from workers.trello import TrelloClient, TrelloLimits

LIMITER_NAMESPACE = "trellis"


@dataclass
class Clients:
    http: httpx.AsyncClient
    limiter: Limiter
    trello: TrelloClient | None  # None without Trello credentials
    scim: ScimClient | None  # None unless a SCIM directory is configured

    async def aclose(self) -> None:
        await self.http.aclose()


def build_clients(settings: Settings, redis: Redis) -> Clients:
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=min(5.0, settings.http_timeout_seconds))
    http = httpx.AsyncClient(
        timeout=timeout, limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
    )
    limiter = Limiter(
        redis,
        LIMITER_NAMESPACE,
        LimiterPolicy(
            safety_margin=settings.limiter_safety_margin,
            bulk_reserve=settings.limiter_bulk_reserve,
            bulk_max_wait=settings.limiter_bulk_max_wait_seconds,
        ),
    )
    trello = None
    if settings.trello_api_key is not None and settings.trello_token is not None:
        trello = TrelloClient(
            http,
            base_url=settings.trello_base_url,
            key=settings.trello_api_key.get_secret_value(),
            token=settings.trello_token.get_secret_value(),
            limiter=limiter,
            limits=TrelloLimits(
                key_max=settings.trello_key_limit,
                token_max=settings.trello_token_limit,
                window=settings.trello_limit_window_seconds,
                members_max=settings.trello_members_limit,
                members_window=settings.trello_members_window_seconds,
            ),
        )
    scim = None
    if settings.scim_directory_id and settings.scim_token is not None:
        scim = ScimClient(
            http,
            base_url=settings.scim_base_url,
            directory_id=settings.scim_directory_id,
            token=settings.scim_token.get_secret_value(),
            limiter=limiter,
            limits=ScimLimits(settings.scim_limit, settings.scim_limit_window_seconds),
        )
    return Clients(http=http, limiter=limiter, trello=trello, scim=scim)
