"""Trello's rate limits, exactly: rolling windows per API key, per token, and on `/1/members/` paths.

A request is allowed only if every limit that applies has room in the window that ends now; only allowed
requests count. Past 200 refusals for one key inside a window, every request of that key is refused
until that window has run out, as Trello does to a client that hammers after a 429.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    key_max: int = 300
    key_window: float = 10.0
    token_max: int = 100
    token_window: float = 10.0
    members_max: int = 100
    members_window: float = 900.0
    block_after_429s: int = 200

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: Trello's error code and message."""

    error: str
    message: str


@dataclass
class Counters:
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Requests being answered at once, by "METHOD path", and the most ever: with latency injected, two
    # clients working on one board at the same time show here.
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "rejected": dict(self.rejected),
            "most_in_flight": dict(self.most_in_flight),
        }

    @contextlib.contextmanager
    def answering(self, request: str) -> Iterator[None]:
        self.in_flight[request] += 1
        self.most_in_flight[request] = max(self.most_in_flight[request], self.in_flight[request])
        try:
            yield
        finally:
            self.in_flight[request] -= 1


class RateLimiter:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)  # accepted requests by bucket
        self._refused: dict[str, deque[float]] = defaultdict(deque)  # 429s by key
        self._blocked_until: dict[str, float] = {}
        self.counters = Counters()

    def check(self, key: str, token: str, path: str) -> tuple[Refusal | None, dict[str, str]]:
        """Take a permit for one request, or say why not; also the rate-limit headers to send."""
        now = self.clock()
        limits = self.limits
        buckets = [
            (f"key:{key}", limits.key_max, limits.key_window, "API_KEY_LIMIT_EXCEEDED"),
            (f"token:{token}", limits.token_max, limits.token_window, "API_TOKEN_LIMIT_EXCEEDED"),
        ]
        if path.startswith("/1/members/"):
            buckets.append(
                (f"members:{token}", limits.members_max, limits.members_window, "RATE_LIMIT_EXCEEDED")
            )
        self.counters.requests[f"key:{key}"] += 1
        self.counters.requests[f"token:{token}"] += 1

        refusal = None
        if self._blocked_until.get(key, 0.0) > now:
            refusal = Refusal(
                "API_KEY_LIMIT_EXCEEDED", "Key blocked for the rest of the window: too many 429s"
            )
        else:
            for bucket, maximum, window, error in buckets:
                if self._count(self._seen[bucket], now, window) >= maximum:
                    message = f"Rate limit exceeded for {path}" if error == "RATE_LIMIT_EXCEEDED" else error
                    refusal = Refusal(error, message)
                    break
        if refusal is None:
            for bucket, _, _, _ in buckets:
                self._seen[bucket].append(now)
        else:
            self._refuse(key, token, now)
        return refusal, self._headers(key, token, now)

    def _refuse(self, key: str, token: str, now: float) -> None:
        self.counters.rejected[f"key:{key}"] += 1
        self.counters.rejected[f"token:{token}"] += 1
        refused = self._refused[key]
        refused.append(now)
        if self._count(refused, now, self.limits.key_window) > self.limits.block_after_429s:
            self._blocked_until[key] = now + self.limits.key_window

    def _headers(self, key: str, token: str, now: float) -> dict[str, str]:
        limits = self.limits
        key_left = limits.key_max - self._count(self._seen[f"key:{key}"], now, limits.key_window)
        token_left = limits.token_max - self._count(self._seen[f"token:{token}"], now, limits.token_window)
        return {
            "x-rate-limit-api-key-interval-ms": str(int(limits.key_window * 1000)),
            "x-rate-limit-api-key-max": str(limits.key_max),
            "x-rate-limit-api-key-remaining": str(max(0, key_left)),
            "x-rate-limit-api-token-interval-ms": str(int(limits.token_window * 1000)),
            "x-rate-limit-api-token-max": str(limits.token_max),
            "x-rate-limit-api-token-remaining": str(max(0, token_left)),
        }

    @staticmethod
    def _count(stamps: deque[float], now: float, window: float) -> int:
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        return len(stamps)

    def reset(self) -> None:
        self._seen.clear()
        self._refused.clear()
        self._blocked_until.clear()
        self.counters = Counters()
