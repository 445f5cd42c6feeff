"""The Trello REST client: typed methods for the calls Trellis makes, under the shared limiter.

Key and token travel in the OAuth header, never in URLs, so they stay out of logs and error messages.
Timeouts, dropped connections and 5xx are retried with exponential backoff and full jitter, a bounded
number of times; a 429 pauses every worker through the limiter and is tried again; other 4xx are raised
as typed errors at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from workers import errors
from workers.limiter import Limit, Limiter, Priority, jitter, secret_digest

log = structlog.get_logger("workers.trello")

RATE_HEADERS = ("x-rate-limit-api-token-remaining", "x-rate-limit-api-key-remaining")


@dataclass(frozen=True)
class TrelloLimits:
    key_max: int = 300
    token_max: int = 100
    window: float = 10.0
    members_max: int = 100
    members_window: float = 900.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries for timeouts, dropped connections and 5xx
    rate_limited_attempts: int = 8  # tries for 429s, each after the shared pause
    base: float = 0.5
    cap: float = 30.0


class TrelloClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        key: str,
        token: str,
        limiter: Limiter,
        limits: TrelloLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._auth = f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'
        self._token = token
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        limits = limits or TrelloLimits()
        self._key_limit = Limit(f"trello:key:{secret_digest(key)}", limits.key_max, limits.window)
        self._token_limit = Limit(f"trello:token:{secret_digest(token)}", limits.token_max, limits.window)
        self._members_limit = Limit(
            f"trello:members:{secret_digest(token)}", limits.members_max, limits.members_window
        )

    # The calls

    async def me(self) -> dict[str, Any]:
        return as_object(await self.get("/members/me"))

    async def my_boards(self) -> list[dict[str, Any]]:
        return as_list(await self.get("/members/me/boards"))

    async def my_organizations(self) -> list[dict[str, Any]]:
        return as_list(await self.get("/members/me/organizations"))

    async def token_info(self) -> dict[str, Any]:
        return as_object(await self.get(f"/tokens/{self._token}", describe="/tokens/{token}"))

    async def organization_memberships(
        self, org_id: str, *, priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        return as_list(
            await self.get(f"/organizations/{org_id}/memberships", {"member": "true"}, priority=priority)
        )

    async def organization_members(self, org_id: str) -> list[dict[str, Any]]:
        return as_list(await self.get(f"/organizations/{org_id}/members"))

    async def organization_boards(
        self, org_id: str, *, filter: str = "open", priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        params = {"filter": filter, "fields": "id,name,closed"}
        return as_list(await self.get(f"/organizations/{org_id}/boards", params, priority=priority))

    async def board_memberships(
        self, board_id: str, *, priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        return as_list(
            await self.get(f"/boards/{board_id}/memberships", {"member": "true"}, priority=priority)
        )

    async def board_members(self, board_id: str) -> list[dict[str, Any]]:
        return as_list(await self.get(f"/boards/{board_id}/members"))

    async def set_board_member(self, board_id: str, member_id: str, member_type: str) -> dict[str, Any]:
        return as_object(
            await self.call("PUT", f"/boards/{board_id}/members/{member_id}", {"type": member_type})
        )

    async def remove_board_member(self, board_id: str, member_id: str) -> dict[str, Any]:
        return as_object(await self.call("DELETE", f"/boards/{board_id}/members/{member_id}"))

    async def set_organization_member(self, org_id: str, member_id: str, member_type: str) -> dict[str, Any]:
        return as_object(
            await self.call("PUT", f"/organizations/{org_id}/members/{member_id}", {"type": member_type})
        )

    async def invite_to_organization(
        self, org_id: str, email: str, full_name: str, member_type: str = "normal"
    ) -> dict[str, Any]:
        body = {"email": email, "fullName": full_name, "type": member_type}
        return as_object(await self.call("PUT", f"/organizations/{org_id}/members", body))

    async def remove_organization_member(self, org_id: str, member_id: str) -> dict[str, Any]:
        """Out of the workspace only: Trello leaves their direct board memberships in place."""
        return as_object(await self.call("DELETE", f"/organizations/{org_id}/members/{member_id}"))

    async def remove_organization_member_everywhere(self, org_id: str, member_id: str) -> dict[str, Any]:
        """Out of the workspace and every one of its boards, in one call."""
        return as_object(await self.call("DELETE", f"/organizations/{org_id}/members/{member_id}/all"))

    async def set_deactivated(self, org_id: str, member_id: str, value: bool) -> dict[str, Any]:
        path = f"/organizations/{org_id}/members/{member_id}/deactivated"
        return as_object(await self.call("PUT", path, {"value": "true" if value else "false"}))

    async def board_actions(
        self, board_id: str, *, filter: str = "all", since: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every action of the board (newest first), following `before` from page to page to the end."""
        before: str | None = None
        while True:
            params: dict[str, Any] = {"filter": filter, "limit": page_size}
            if since:
                params["since"] = since
            if before:
                params["before"] = before
            page = as_list(await self.get(f"/boards/{board_id}/actions", params))
            for action in page:
                yield action
            if len(page) < page_size:
                return
            before = page[-1]["id"]

    async def webhooks(self) -> list[dict[str, Any]]:
        return as_list(await self.get(f"/tokens/{self._token}/webhooks", describe="/tokens/{token}/webhooks"))

    async def create_webhook(self, callback_url: str, id_model: str, description: str = "") -> dict[str, Any]:
        body = {"callbackURL": callback_url, "idModel": id_model, "description": description}
        return as_object(await self.call("POST", "/webhooks", body))

    async def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        return as_object(await self.call("PUT", f"/webhooks/{webhook_id}", fields))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.call("DELETE", f"/webhooks/{webhook_id}")

    # The machinery

    async def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        priority: Priority = Priority.EVENT,
        describe: str = "",
    ) -> Any:
        return await self.call("GET", path, params=params, priority=priority, describe=describe)

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        priority: Priority = Priority.EVENT,
        describe: str = "",
    ) -> Any:
        """One call, retried as the policy says. `describe` names the path in errors if it holds a secret."""
        where = f"{method} {describe or path}"
        limits = [self._key_limit, self._token_limit]
        if path.startswith("/members/"):
            limits.append(self._members_limit)
        failures = rate_limited = 0
        while True:
            try:
                async with self.limiter.permit(limits, priority):
                    response = await self.http.request(
                        method,
                        self.base_url + path,
                        params=params,
                        json=body,
                        headers={"authorization": self._auth},
                    )
            except httpx.TransportError as exc:
                error: errors.TrelloError = errors.TrelloUnavailable(
                    f"{where}: no answer ({type(exc).__name__})"
                )
            else:
                self._note_headers(response)
                if response.is_success:
                    return response.json() if response.content else None
                error = classify(response, where)
            if isinstance(error, errors.TrelloRateLimited):
                rate_limited += 1
                if rate_limited >= self.retry.rate_limited_attempts:
                    raise error
                pause = await self.limiter.pause_for_429()
                log.warning("trello said 429: every worker pauses", call=where, pause=round(pause, 2))
                continue
            failures += 1
            if not error.transient or failures >= self.retry.attempts:
                raise error
            delay = jitter(self.retry.base, failures - 1, self.retry.cap)
            log.info("trello call failed, retrying", call=where, error=str(error), retry_in=round(delay, 2))
            await asyncio.sleep(delay)

    def _note_headers(self, response: httpx.Response) -> None:
        # Read, never relied on: Trello does not promise these headers.
        remaining = {h: response.headers[h] for h in RATE_HEADERS if h in response.headers}
        if remaining.get("x-rate-limit-api-token-remaining") == "0":
            log.debug("trello reports the token's window full", **remaining)


def as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.TrelloError(f"expected a JSON object from Trello, got {type(value).__name__}")
    return value


def as_list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise errors.TrelloError(f"expected a JSON array from Trello, got {type(value).__name__}")
    return value


def classify(response: httpx.Response, where: str) -> errors.TrelloError:
    """The typed error for a failed answer. Trello's bodies are often plain text; the text decides."""
    status, text = response.status_code, response.text.strip()
    message = f"{where}: {status} {text[:200]}"
    if status == 429:
        return errors.TrelloRateLimited(message, status=status, body=text)
    if status >= 500:
        return errors.TrelloServerError(message, status=status, body=text)
    if "Not enough admins" in text:
        return errors.LastAdmin(message, status=status, body=text)
    if "observer" in text.lower() and status in (400, 403):
        return errors.ObserversNotAllowed(message, status=status, body=text)
    if status == 401:
        kind = errors.TrelloTokenExpired if "expired" in text.lower() else errors.TrelloUnauthorized
        return kind(message, status=status, body=text)
    if status == 403:
        return errors.TrelloForbidden(message, status=status, body=text)
    if status == 404:
        return errors.TrelloNotFound(message, status=status, body=text)
    return errors.TrelloBadRequest(message, status=status, body=text)
