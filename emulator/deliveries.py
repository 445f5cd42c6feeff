"""Webhook deliveries as Trello makes them: signed POSTs, retried with growing delays, counted as
consecutive failures, and the webhook deactivated after too many; plus the faults a run switches on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from emulator.world import Action, Webhook, World, now_iso


@dataclass
class Faults:
    """Switched per run. Rates are shares from 0 to 1."""

    latency_ms: float = 0.0  # added to every REST answer
    latency_spread_ms: float = 0.0  # and a uniform share of up to this more
    error_rate: float = 0.0  # REST requests answered 500
    drop_rate: float = 0.0  # deliveries never sent
    duplicate_rate: float = 0.0  # deliveries sent twice
    reorder_rate: float = 0.0  # deliveries held back by up to reorder_max_ms
    reorder_max_ms: float = 500.0

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault {name!r}")
            setattr(self, name, float(value))

    def as_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout: float = 30.0
    retries: int = 3
    retry_base_delay: float = 5.0
    failures_to_deactivate: int = 20


@dataclass
class Attempt:
    webhook_id: str
    action_id: str
    action_type: str
    attempt: int
    status: int | None  # None: no answer (refused, timed out)


SIGNATURE_ENCODINGS = ("utf-8", "binary")


def signature(secret: str, body: bytes, callback_url: str, encoding: str = "utf-8") -> str:
    """Trello's X-Trello-Webhook: base64(HMAC-SHA1(app secret, body + callback URL)).

    `utf-8` signs the bytes sent, as Trello does today; `binary` signs the text as its 2015 webhook guide
    described, each UTF-16 code unit cut to its low 8 bits (what older integrations still compute)."""
    if encoding not in SIGNATURE_ENCODINGS:
        raise ValueError(f"unknown signature encoding {encoding!r}")
    message = body + callback_url.encode()
    if encoding == "binary":
        message = message.decode().encode("utf-16-le")[0::2]
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha1).digest()).decode()


@dataclass
class Dispatcher:
    world: World
    secret: str
    faults: Faults
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    signature_encoding: str = "utf-8"  # or "binary": see `signature`
    # The last attempts, for tests and operators; bounded so that a long run does not grow without end.
    attempts: deque[Attempt] = field(default_factory=lambda: deque(maxlen=100_000))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.world.listeners.append(self.on_action)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.policy.timeout)
        return self._client

    def on_action(self, action: Action) -> None:
        for webhook in list(self.world.webhooks.values()):
            if webhook.active and webhook.id_model in action.model_ids:
                if random.random() < self.faults.drop_rate:
                    continue
                copies = 2 if random.random() < self.faults.duplicate_rate else 1
                for _ in range(copies):
                    self._spawn(self._deliver(webhook, action))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, webhook: Webhook, action: Action) -> None:
        if random.random() < self.faults.reorder_rate:
            await asyncio.sleep(random.uniform(0, self.faults.reorder_max_ms / 1000))
        try:
            model = self.world.model(webhook.id_model)
        except Exception:
            model = {"id": webhook.id_model}
        body = json.dumps(
            {"action": action.body, "model": model, "webhook": webhook.as_json()}, ensure_ascii=False
        )
        raw = body.encode()
        headers = {
            "content-type": "application/json",
            "x-trello-webhook": signature(self.secret, raw, webhook.callback_url, self.signature_encoding),
            "user-agent": "Trello-Emulator",
        }
        for attempt in range(1, self.policy.retries + 2):
            if webhook.id not in self.world.webhooks or not webhook.active:
                return
            status = await self._post(webhook.callback_url, raw, headers)
            self.attempts.append(Attempt(webhook.id, action.id, action.body["type"], attempt, status))
            if status is not None and 200 <= status < 300:
                webhook.consecutive_failures = 0
                webhook.first_consecutive_fail_date = None
                return
            if status == 410:  # Gone: the receiver asks for the webhook to be deleted
                self.world.webhooks.pop(webhook.id, None)
                return
            self._failed(webhook)
            if attempt <= self.policy.retries:
                await asyncio.sleep(self.policy.retry_base_delay * 2 ** (attempt - 1))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        try:
            return (await self.client.post(url, content=body, headers=headers)).status_code
        except httpx.HTTPError:
            return None

    def _failed(self, webhook: Webhook) -> None:
        webhook.consecutive_failures += 1
        webhook.first_consecutive_fail_date = webhook.first_consecutive_fail_date or now_iso()
        if webhook.consecutive_failures >= self.policy.failures_to_deactivate:
            webhook.active = False

    async def check_callback(self, url: str) -> int | None:
        """Trello's check when a webhook is created: a HEAD to the callback, which must answer 200."""
        try:
            return (await self.client.head(url)).status_code
        except httpx.HTTPError:
            return None

    async def settle(self, within: float = 30.0) -> bool:
        """Wait until no delivery is in flight (retries included); False if `within` seconds ran out first."""
        try:
            async with asyncio.timeout(within):
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
