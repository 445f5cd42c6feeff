"""The worker builds its clients from settings: Trello with credentials, SCIM only when configured."""

from __future__ import annotations

from redis.asyncio import Redis

from tests.conftest import SettingsFactory
from trellis.wiring import clients_config
from workers.outside.clients import build_clients


async def test_without_credentials_there_is_no_trello_client(
    make_settings: SettingsFactory, redis_client: Redis
) -> None:
    clients = build_clients(clients_config(make_settings()), redis_client)
    assert (clients.trello, clients.scim) == (None, None)
    await clients.aclose()


async def test_limits_and_policy_come_from_settings(
    make_settings: SettingsFactory, redis_client: Redis
) -> None:
    settings = make_settings(
        trello_base_url="http://emulator.test/1",  # the emulator takes credentials of any shape
        trello_api_key="k",
        trello_token="t",
        trello_token_limit=42,
        limiter_safety_margin=3,
        scim_directory_id="dir",
        scim_token="s",
    )
    clients = build_clients(clients_config(settings), redis_client)
    assert clients.trello is not None
    assert clients.scim is not None
    assert clients.trello._token_limit.maximum == 42
    assert clients.limiter.policy.safety_margin == 3
    assert clients.trello.remote.limiter is clients.scim.remote.limiter is clients.limiter  # one for both
    await clients.aclose()
