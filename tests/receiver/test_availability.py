"""When Redis is down the receiver says 503, so Trello delivers again, and recovers without a restart."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from tests.support import RedisServer, delivery, encode, signed_headers


async def test_delivery_while_redis_is_down_gets_503_then_200_once_it_is_back(
    make_settings: Any, client_for: Any, own_redis: RedisServer
) -> None:
    body = encode(delivery())
    async with client_for(make_settings(redis_url=own_redis.url, enqueue_timeout_seconds=0.5)) as client:
        own_redis.stop()
        refused = await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
        not_ready = await client.get("/readyz")
        own_redis.start()
        accepted = await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
        ready = await client.get("/readyz")

    assert refused.status_code == 503
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["redis"].startswith("failed")
    assert accepted.status_code == 200
    assert ready.status_code == 200
    redis = Redis.from_url(own_redis.url)
    assert await redis.zcard("trellis:test:queue") == 1
    await redis.aclose()


async def test_redis_that_does_not_answer_in_time_gets_503(make_settings: Any, client_for: Any) -> None:
    # A listening socket that never answers: the enqueue bound, not the OS, must end the wait.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    try:
        async with client_for(make_settings(redis_url=url, enqueue_timeout_seconds=0.3)) as client:
            body = encode(delivery())
            response = await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    finally:
        silent.close()
    assert response.status_code == 503


async def test_healthz_answers_while_redis_is_down(make_settings: Any, client_for: Any) -> None:
    async with client_for(make_settings(redis_url="redis://127.0.0.1:1/0")) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200


async def test_readyz_is_ok_when_redis_and_store_answer(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok", "store": "ok"}


async def test_webhook_route_is_absent_without_secret_and_callback_url(
    make_settings: Any, client_for: Any
) -> None:
    async with client_for(make_settings(trello_secret=None)) as client:
        response = await client.head("/webhooks/trello")
    assert response.status_code == 404
