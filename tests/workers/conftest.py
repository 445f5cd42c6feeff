"""Clients under test talk to the emulator in-process, and share a limiter through the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from emulator.app import EmulatorConfig, create_emulator
from emulator.deliveries import DeliveryPolicy
from emulator.limits import Limits
from tests.emulator.conftest import KEY, SECRET, TOKEN
from workers.outside.limiter import Limiter, LimiterPolicy
from workers.outside.remote import RetryPolicy
from workers.outside.trello import TrelloClient, TrelloLimits

NAMESPACE = "trellis:test"
ClientFactory = Callable[..., Any]


@pytest.fixture
def open_trello(redis_client: Redis) -> ClientFactory:
    """A TrelloClient on a fresh emulator; the emulator's and the client's limits can differ."""

    @asynccontextmanager
    async def start(
        *,
        emulator_limits: Limits | None = None,
        client_limits: TrelloLimits | None = None,
        policy: LimiterPolicy | None = None,
        retry: RetryPolicy | None = None,
        token: str = TOKEN,
        fixture: dict[str, Any] | None = None,
    ) -> AsyncIterator[tuple[TrelloClient, Any]]:
        config = EmulatorConfig(
            key=KEY, token=TOKEN, secret=SECRET, delivery=DeliveryPolicy(retry_base_delay=0.01)
        )
        config.limits = emulator_limits or Limits()
        config.fixture = fixture
        app = create_emulator(config)
        async with app.router.lifespan_context(app):
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=5)
            limiter = Limiter(
                redis_client, NAMESPACE, policy or LimiterPolicy(pause_base=0.05, pause_cap=0.5)
            )
            client = TrelloClient(
                http,
                base_url="http://trello.test/1",
                key=KEY,
                token=token,
                limiter=limiter,
                limits=client_limits,
                retry=retry or RetryPolicy(base=0.01, cap=0.05),
            )
            yield client, app
            await http.aclose()

    return start


@pytest.fixture
async def trello_client(open_trello: ClientFactory) -> AsyncIterator[TrelloClient]:
    async with open_trello() as (client, _):
        yield client
