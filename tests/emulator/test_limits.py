"""The emulator's rate limits hold to the request, over a rolling window, as Trello's do."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.limits import Limits, RateLimiter
from tests.emulator.conftest import AUTH, KEY, EmulatorFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**limits: Any) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(Limits(**limits), clock=clock), clock


def test_token_limit_allows_exactly_its_maximum_in_a_window() -> None:
    rl, _ = limiter(token_max=100, token_window=10)
    outcomes = [rl.check("k", "t", "/1/boards/x")[0] for _ in range(101)]
    assert outcomes[:100] == [None] * 100
    assert outcomes[100] is not None
    assert outcomes[100].error == "API_TOKEN_LIMIT_EXCEEDED"


def test_window_rolls_rather_than_resetting() -> None:
    rl, clock = limiter(token_max=10, token_window=10)
    for step in range(10):  # one request a second
        clock.now = 1000.0 + step
        assert rl.check("k", "t", "/1/x")[0] is None
    clock.now = 1009.5
    assert rl.check("k", "t", "/1/x")[0] is not None  # ten in the last ten seconds
    clock.now = 1010.01
    assert rl.check("k", "t", "/1/x")[0] is None  # the first one has left the window


def test_key_limit_is_shared_by_every_token_of_the_key() -> None:
    rl, _ = limiter(key_max=300, token_max=100)
    accepted = sum(rl.check("k", f"t{i % 4}", "/1/x")[0] is None for i in range(400))
    assert accepted == 300
    assert rl.check("k", "t9", "/1/x")[0].error == "API_KEY_LIMIT_EXCEEDED"  # type: ignore[union-attr]


def test_members_paths_have_their_own_long_window() -> None:
    rl, clock = limiter(members_max=100, members_window=900, token_max=10_000, key_max=10_000)
    assert all(rl.check("k", "t", "/1/members/me")[0] is None for _ in range(100))
    clock.now += 600
    refusal = rl.check("k", "t", "/1/members/me")[0]
    assert refusal is not None
    assert refusal.error == "RATE_LIMIT_EXCEEDED"
    assert "/1/members/me" in refusal.message
    assert rl.check("k", "t", "/1/boards/x")[0] is None  # other paths are not held


def test_refused_requests_do_not_count_against_the_window() -> None:
    rl, clock = limiter(token_max=5, token_window=10)
    for _ in range(50):
        rl.check("k", "t", "/1/x")
    clock.now += 10.01
    assert [rl.check("k", "t", "/1/x")[0] is None for _ in range(6)] == [True] * 5 + [False]


def test_key_that_keeps_hammering_after_429s_is_refused_for_the_rest_of_the_window() -> None:
    rl, clock = limiter(token_max=1, key_max=1000, key_window=10, block_after_429s=200)
    rl.check("k", "t", "/1/x")
    for _ in range(201):
        rl.check("k", "t", "/1/x")
    # Another token of the same key, with room in its own window, is refused all the same.
    assert rl.check("k", "fresh", "/1/x")[0] is not None
    clock.now += 10.01
    assert rl.check("k", "fresh", "/1/x")[0] is None


def test_remaining_headers_count_down() -> None:
    rl, _ = limiter(token_max=3)
    remaining = [rl.check("k", "t", "/1/x")[1]["x-rate-limit-api-token-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]


async def test_429_over_http_carries_trellos_json_body_and_is_counted(open_emulator: EmulatorFactory) -> None:
    async with open_emulator(limits=Limits(token_max=3, token_window=60)) as (client, _):
        statuses = [(await client.get("/1/members/me", params=AUTH)).status_code for _ in range(4)]
        refused = await client.get("/1/members/me", params=AUTH)
        counters = (await client.get("/_emulator/counters")).json()
    assert statuses == [200, 200, 200, 429]
    assert refused.json()["error"] == "API_TOKEN_LIMIT_EXCEEDED"
    assert counters["requests"][f"key:{KEY}"] == 5
    assert counters["rejected"][f"key:{KEY}"] == 2


async def test_limits_can_be_changed_for_a_run(trello: httpx.AsyncClient) -> None:
    await trello.put("/_emulator/limits", json={"token_max": 1})
    assert [(await trello.get("/1/members/me", params=AUTH)).status_code for _ in range(2)] == [200, 429]
