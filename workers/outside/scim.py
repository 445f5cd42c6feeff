"""The Atlassian SCIM 2.0 client: find, get, create and deactivate users, under the shared limiter.

Deactivating a SCIM user disables the person in every Atlassian product, not only Trello: callers go
through the SCIM policy (never / approve / auto) before they get here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from workers.outside import errors
from workers.outside.ids import scim_path
from workers.outside.limiter import Limit, Limiter, secret_digest
from workers.outside.remote import RemoteApi, RetryPolicy

log = structlog.get_logger("workers.scim")

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ATLASSIAN = "urn:scim:schemas:extension:atlassian-external:1.0"  # its atlassianAccountId: the person


@dataclass(frozen=True)
class ScimLimits:
    # Atlassian publishes no number for SCIM; this one is conservative and configurable.
    maximum: int = 100
    window: float = 60.0


class ScimClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        directory_id: str,
        token: str,
        limiter: Limiter,
        limits: ScimLimits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/scim/directory/{directory_id}"
        self._headers = {"authorization": f"Bearer {token}"}
        self.remote = RemoteApi(
            http,
            limiter,
            retry or RetryPolicy(),
            functools.partial(classify, secrets=(token,)),
            errors.ScimUnavailable,
            errors.ScimRateLimited,
        )
        limits = limits or ScimLimits()
        self._limit = Limit(f"scim:{secret_digest(directory_id + token)}", limits.maximum, limits.window)

    async def find_user_by_email(self, email: str) -> dict[str, Any] | None:
        escaped = email.replace("\\", "\\\\").replace('"', '\\"')
        found = await self.call("GET", "/Users", params={"filter": f'userName eq "{escaped}"', "count": 2})
        resources = found.get("Resources", [])
        return resources[0] if resources else None

    async def find_user_by_account_id(self, account_id: str, *, page: int = 100) -> dict[str, Any] | None:
        """The user whose Atlassian account id (Atlassian's SCIM extension) is `account_id`. Atlassian's
        directory filters on userName and externalId only, so the directory is read page by page."""
        start = 1
        while True:
            found = await self.call("GET", "/Users", params={"startIndex": start, "count": page})
            resources: list[dict[str, Any]] = found.get("Resources", [])
            for user in resources:
                if (user.get(ATLASSIAN) or {}).get("atlassianAccountId") == account_id:
                    return user
            start += len(resources)
            if not resources or start > int(found.get("totalResults", 0)):
                return None

    async def get_user(self, user_id: str) -> dict[str, Any]:
        return await self.call("GET", scim_path("/Users/{}", user_id))

    async def create_user(self, email: str, given_name: str = "", family_name: str = "") -> dict[str, Any]:
        body = {
            "schemas": [USER_SCHEMA],
            "userName": email,
            "name": {"givenName": given_name, "familyName": family_name},
            "emails": [{"value": email, "primary": True}],
            "active": True,
        }
        return await self.call("POST", "/Users", body)

    async def deactivate_user(self, user_id: str) -> dict[str, Any]:
        """Deactivate (never delete: DELETE cannot be undone) with a PatchOp setting `active` to false."""
        body = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "value": {"active": False}}]}
        return await self.call("PATCH", scim_path("/Users/{}", user_id), body)

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        where = f"SCIM {method} {path}"
        response = await self.remote.send(
            method,
            self.base + path,
            where=where,
            limits=[self._limit],
            headers=self._headers,
            params=params,
            body=body,
        )
        value = response.json() if response.content else {}
        if not isinstance(value, dict):
            raise errors.ScimError(f"{where}: expected a JSON object")
        return value


def classify(response: httpx.Response, where: str, secrets: tuple[str, ...] = ()) -> errors.ScimError:
    """The typed error for a failed answer, with the SCIM error's `detail` when there is one."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = str(body.get("detail", "")) if isinstance(body, dict) else response.text[:200]
    detail = errors.redacted(detail, secrets)
    message = f"{where}: {status} {detail}"
    kinds: dict[int, type[errors.ScimError]] = {
        401: errors.ScimUnauthorized,
        403: errors.ScimUnauthorized,
        404: errors.ScimNotFound,
        409: errors.ScimConflict,
        429: errors.ScimRateLimited,
    }
    kind = kinds.get(status, errors.ScimServerError if status >= 500 else errors.ScimError)
    return kind(message, status=status, body=detail)
