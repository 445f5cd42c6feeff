"""The SCIM client against the emulator's directory: find, get, create, deactivate, and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from emulator.app import EmulatorConfig, create_emulator
from emulator.fixture import sample
from emulator.limits import Limits
from tests.workers.conftest import NAMESPACE
from workers.outside import errors
from workers.outside.limiter import Limiter, LimiterPolicy
from workers.outside.remote import RetryPolicy
from workers.outside.scim import ScimClient, ScimLimits


@pytest.fixture
async def emulator_http() -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_emulator(EmulatorConfig(fixture=sample()))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http,
    ):
        yield http, app


def client(http: httpx.AsyncClient, redis: Redis, token: str = EmulatorConfig.scim_token) -> ScimClient:
    return ScimClient(
        http,
        base_url="http://scim.test",
        directory_id=EmulatorConfig.scim_directory,
        token=token,
        limiter=Limiter(redis, NAMESPACE, LimiterPolicy(pause_base=0.01, pause_cap=0.05)),
        retry=RetryPolicy(attempts=3, base=0.01, cap=0.05),
    )


async def test_finds_a_user_by_email_whatever_the_case(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    scim = client(emulator_http[0], redis_client)
    user = await scim.find_user_by_email("Ken.Thompson@acme.example")
    assert user is not None
    assert (await scim.get_user(user["id"]))["userName"] == "ken.thompson@acme.example"


async def test_unknown_email_finds_nobody(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    assert await client(emulator_http[0], redis_client).find_user_by_email('nobody"@acme.example') is None


async def test_creates_a_user_and_refuses_a_second(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    scim = client(emulator_http[0], redis_client)
    created = await scim.create_user("new@acme.example", "New", "Person")
    assert created["active"] is True
    with pytest.raises(errors.ScimConflict, match="already exists"):
        await scim.create_user("new@acme.example")


async def test_deactivates_with_a_patch_op(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    scim = client(emulator_http[0], redis_client)
    user = await scim.find_user_by_email("ken.thompson@acme.example")
    assert user is not None
    assert (await scim.deactivate_user(user["id"]))["active"] is False
    assert (await scim.get_user(user["id"]))["active"] is False


async def test_unknown_user_is_not_found(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    with pytest.raises(errors.ScimNotFound):
        await client(emulator_http[0], redis_client).get_user("no-such-user")


async def test_bad_token_is_unauthorized_and_not_in_the_message(
    emulator_http: tuple[httpx.AsyncClient, object], redis_client: Redis
) -> None:
    with pytest.raises(errors.ScimUnauthorized) as raised:
        await client(emulator_http[0], redis_client, token="wrong-scim-token").get_user("x")
    assert "wrong-scim-token" not in str(raised.value)


async def test_directory_rate_limit_pauses_and_retries(redis_client: Redis) -> None:
    app = create_emulator(
        EmulatorConfig(
            fixture=sample(), scim_limits=Limits(key_max=2, token_max=2, key_window=0.2, token_window=0.2)
        )
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http,
    ):
        scim = ScimClient(
            http,
            base_url="http://scim.test",
            directory_id=EmulatorConfig.scim_directory,
            token=EmulatorConfig.scim_token,
            limiter=Limiter(redis_client, NAMESPACE, LimiterPolicy(pause_base=0.1, pause_cap=0.3)),
            limits=ScimLimits(maximum=100, window=0.2),  # believes in more than the directory allows
            retry=RetryPolicy(attempts=6, rate_limited_attempts=10, base=0.01, cap=0.05),
        )
        found = [await scim.find_user_by_email("ken.thompson@acme.example") for _ in range(5)]
    assert all(user is not None for user in found)
