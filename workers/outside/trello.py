"""The Trello REST client: typed methods for the calls Trellis makes, under the shared limiter.

Key and token travel in the OAuth header, never in URLs, so they stay out of logs and error messages.
Retries follow `workers.outside.remote`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from workers.outside import errors
from workers.outside.ids import trello_path
from workers.outside.limiter import Limit, Limiter, Priority, secret_digest
from workers.outside.remote import RemoteApi, RetryPolicy

log = structlog.get_logger("workers.trello")

RATE_HEADERS = ("x-rate-limit-api-token-remaining", "x-rate-limit-api-key-remaining")


@dataclass(frozen=True)
class TrelloLimits:
    key_max: int = 300
    token_max: int = 100
    window: float = 10.0
    members_max: int = 100
    members_window: float = 900.0


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
        self.base_url = base_url.rstrip("/")
        self._headers = {"authorization": f'OAuth oauth_consumer_key="{key}", oauth_token="{token}"'}
        self._token = token
        self.remote = RemoteApi(
            http,
            limiter,
            retry or RetryPolicy(),
            functools.partial(classify, secrets=(key, token)),
            errors.TrelloUnavailable,
            errors.TrelloRateLimited,
        )
        limits = limits or TrelloLimits()
        self._key_limit = Limit(f"trello:key:{secret_digest(key)}", limits.key_max, limits.window)
        self._token_limit = Limit(f"trello:token:{secret_digest(token)}", limits.token_max, limits.window)
        self._members_limit = Limit(
            f"trello:members:{secret_digest(token)}", limits.members_max, limits.members_window
        )

    # The calls

    async def me(self) -> dict[str, Any]:
        return as_object(await self.get("/members/me"))

    async def my_organizations(self) -> list[dict[str, Any]]:
        return as_list(await self.get("/members/me/organizations"))

    async def token_info(self) -> dict[str, Any]:
        return as_object(await self.get(f"/tokens/{self._token}", describe="/tokens/{token}"))

    async def member_account_id(self, member_id: str) -> str | None:
        """The member's Atlassian account id (`aaId`), or None when Trello does not show it to this token
        (it shows it, it seems, only to an enterprise's admins: undocumented)."""
        member = as_object(await self.get(trello_path("/members/{}", member_id), {"fields": "id,aaId"}))
        account = member.get("aaId")
        return account if isinstance(account, str) and account else None

    async def organization(self, org_id: str, *, priority: Priority = Priority.EVENT) -> dict[str, Any]:
        fields = {"fields": "id,name,displayName,premiumFeatures"}
        return as_object(await self.get(trello_path("/organizations/{}", org_id), fields, priority=priority))

    async def organization_memberships(
        self, org_id: str, *, priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        return as_list(
            await self.get(
                trello_path("/organizations/{}/memberships", org_id), {"member": "true"}, priority=priority
            )
        )

    async def organization_boards(
        self, org_id: str, *, filter: str = "open", priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        params = {"filter": filter, "fields": "id,name,closed"}
        return as_list(
            await self.get(trello_path("/organizations/{}/boards", org_id), params, priority=priority)
        )

    async def member_boards(self, member_id: str) -> list[dict[str, Any]]:
        """The open boards a member is on that this token can see (`GET /members/{id}/boards`)."""
        params = {"filter": "open", "fields": "id,name,idOrganization"}
        return as_list(await self.get(trello_path("/members/{}/boards", member_id), params))

    async def board_state(self, board_id: str, *, priority: Priority = Priority.EVENT) -> dict[str, Any]:
        """The board as a reconcile reads it, in one call: where it lives (`idOrganization`), whether it
        is closed, and its memberships (`GET /boards/{id}?memberships=all`)."""
        params = {"fields": "id,name,closed,idOrganization", "memberships": "all"}
        return as_object(await self.get(trello_path("/boards/{}", board_id), params, priority=priority))

    async def board_memberships(
        self, board_id: str, *, priority: Priority = Priority.EVENT
    ) -> list[dict[str, Any]]:
        return as_list(
            await self.get(
                trello_path("/boards/{}/memberships", board_id), {"member": "true"}, priority=priority
            )
        )

    async def set_board_member(self, board_id: str, member_id: str, member_type: str) -> dict[str, Any]:
        return as_object(
            await self.call(
                "PUT", trello_path("/boards/{}/members/{}", board_id, member_id), {"type": member_type}
            )
        )

    async def remove_board_member(self, board_id: str, member_id: str) -> dict[str, Any]:
        return as_object(await self.call("DELETE", trello_path("/boards/{}/members/{}", board_id, member_id)))

    async def set_organization_member(self, org_id: str, member_id: str, member_type: str) -> dict[str, Any]:
        return as_object(
            await self.call(
                "PUT", trello_path("/organizations/{}/members/{}", org_id, member_id), {"type": member_type}
            )
        )

    async def invite_to_organization(
        self, org_id: str, email: str, full_name: str, member_type: str = "normal"
    ) -> dict[str, Any]:
        body = {"email": email, "fullName": full_name, "type": member_type}
        return as_object(await self.call("PUT", trello_path("/organizations/{}/members", org_id), body))

    async def remove_organization_member_everywhere(self, org_id: str, member_id: str) -> dict[str, Any]:
        """Out of the workspace and every one of its boards, in one call."""
        return as_object(
            await self.call("DELETE", trello_path("/organizations/{}/members/{}/all", org_id, member_id))
        )

    async def webhooks(self, *, priority: Priority = Priority.EVENT) -> list[dict[str, Any]]:
        path, describe = f"/tokens/{self._token}/webhooks", "/tokens/{token}/webhooks"
        return as_list(await self.get(path, priority=priority, describe=describe))

    async def create_webhook(self, callback_url: str, id_model: str, description: str = "") -> dict[str, Any]:
        body = {"callbackURL": callback_url, "idModel": id_model, "description": description}
        return as_object(await self.call("POST", "/webhooks", body))

    async def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        return as_object(await self.call("PUT", trello_path("/webhooks/{}", webhook_id), fields))

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.call("DELETE", trello_path("/webhooks/{}", webhook_id))

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
        """One call. `describe` names the path in errors and logs when the path holds a secret."""
        limits = [self._key_limit, self._token_limit]
        if path.startswith("/members/"):
            limits.append(self._members_limit)
        response = await self.remote.send(
            method,
            self.base_url + path,
            where=f"{method} {describe or path}",
            limits=limits,
            headers=self._headers,
            priority=priority,
            params=params,
            body=body,
        )
        self._note_headers(response)
        return response.json() if response.content else None

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


def classify(response: httpx.Response, where: str, secrets: tuple[str, ...] = ()) -> errors.TrelloError:
    """The typed error for a failed answer. Trello's bodies are often plain text; the text decides."""
    status, text = response.status_code, errors.redacted(response.text.strip(), secrets)
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


def has_observers(organization: dict[str, Any]) -> bool:
    """Whether a workspace's plan has board observers: Trello lists it among its premium features."""
    return "observers" in organization.get("premiumFeatures", [])
