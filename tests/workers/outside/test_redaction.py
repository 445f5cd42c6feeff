"""An upstream's error text that echoes a secret (Trello's `/tokens/{token}/...` paths carry the token)
is scrubbed where the error is made: dead letters, approvals and `trellis doctor` quote it."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from tests.workers.conftest import NAMESPACE
from workers.outside import errors
from workers.outside.limiter import Limiter, LimiterPolicy
from workers.outside.remote import RetryPolicy
from workers.outside.scim import ScimClient
from workers.outside.trello import TrelloClient

KEY, TOKEN = "k" * 32, "ATTA" + "f" * 64 + "ABCDEF12"


def echoing(request: httpx.Request) -> httpx.Response:
    """An upstream that quotes the request it refuses, secrets and all."""
    return httpx.Response(400, text=f"cannot {request.method} {request.url} (token {TOKEN}, key {KEY})")


async def test_trello_error_text_never_carries_the_token_or_the_key(redis_client: Redis) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(echoing))
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy())
    trello = TrelloClient(http, base_url="http://trello.test/1", key=KEY, token=TOKEN, limiter=limiter,
                          retry=RetryPolicy(attempts=1))  # fmt: skip
    with pytest.raises(errors.TrelloError) as refused:
        await trello.webhooks()
    await http.aclose()
    assert TOKEN not in str(refused.value)
    assert KEY not in str(refused.value)
    assert errors.REDACTED in str(refused.value)
    assert TOKEN not in refused.value.body


async def test_scim_error_text_never_carries_the_bearer_token(redis_client: Redis) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(echoing))
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy())
    scim = ScimClient(http, base_url="http://scim.test", directory_id="d", token=TOKEN, limiter=limiter,
                      retry=RetryPolicy(attempts=1))  # fmt: skip
    with pytest.raises(errors.ScimError) as refused:
        await scim.get_user("3f1c3a9e-8f5b-4b51-9a52-1c3f0d4c2b10")
    await http.aclose()
    assert TOKEN not in str(refused.value)
