"""Atlassian's SCIM 2.0 directory: `/scim/directory/{id}/Users` and `/Groups`.

Filters take one exact `eq` (userName and externalId for users, displayName for groups), paging is
1-based `startIndex` and `count`, PUT replaces, PATCH takes a PatchOp, errors use the SCIM error schema.
Each user carries Atlassian's extension with its `atlassianAccountId`: the account of the Trello member
with that email when there is one (the same person's Atlassian account), a new id otherwise.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import scim_discovery as discovery
from emulator.limits import RateLimiter
from emulator.world import now_iso

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
FILTER = re.compile(r'^\s*(\w+)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
USER_FILTERS = {"username": "userName", "externalid": "externalId"}
GROUP_FILTERS = {"displayname": "displayName"}


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type

    def response(self) -> Response:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return JSONResponse(body, status_code=self.status, media_type="application/scim+json")


@dataclass
class Directory:
    id: str
    token: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The Atlassian account id of the person with this email, when the world knows them.
    account_of: Callable[[str], str | None] = lambda email: None

    def add_user(self, resource: dict[str, Any]) -> dict[str, Any]:
        user_name = resource.get("userName")
        if not isinstance(user_name, str) or not user_name:
            raise ScimError(400, "userName is required", "invalidValue")
        if any(u["userName"].lower() == user_name.lower() for u in self.users.values()):
            raise ScimError(409, f"User with userName {user_name} already exists", "uniqueness")
        user_id = str(uuid.uuid4())
        account = self.account_of(user_name) or uuid.uuid4().hex
        self.users[user_id] = self._user(user_id, resource, created=now_iso(), account=account)
        return self.users[user_id]

    def _user(self, user_id: str, resource: dict[str, Any], created: str, account: str) -> dict[str, Any]:
        return {
            "schemas": [USER_SCHEMA, discovery.ATLASSIAN],
            discovery.ATLASSIAN: {"atlassianAccountId": account},
            "id": user_id,
            "userName": resource["userName"],
            "externalId": resource.get("externalId"),
            "name": resource.get("name", {}),
            "displayName": resource.get("displayName"),
            "emails": resource.get("emails", []),
            "active": resource.get("active", True),
            "meta": {"resourceType": "User", "created": created, "lastModified": now_iso()},
        }


Handler = Callable[[Request, Directory], Awaitable[Any]]


class ScimApi:
    def __init__(self, directories: dict[str, Directory], limiter: RateLimiter) -> None:
        self.directories = directories
        self.limiter = limiter

    def routes(self) -> list[Route]:
        e, base = self.endpoint, "/scim/directory/{directory}"
        return [
            Route(base + "/Users", e(self.list_users), methods=["GET"]),
            Route(base + "/Users", e(self.create_user), methods=["POST"]),
            Route(base + "/Users/{id}", e(self.get_user), methods=["GET"]),
            Route(base + "/Users/{id}", e(self.replace_user), methods=["PUT"]),
            Route(base + "/Users/{id}", e(self.patch_user), methods=["PATCH"]),
            Route(base + "/Users/{id}", e(self.delete_user), methods=["DELETE"]),
            Route(base + "/Groups", e(self.list_groups), methods=["GET"]),
            Route(base + "/Groups", e(self.create_group), methods=["POST"]),
            Route(base + "/Groups/{id}", e(self.get_group), methods=["GET"]),
            Route(base + "/Groups/{id}", e(self.patch_group), methods=["PATCH"]),
            Route(base + "/Groups/{id}", e(self.delete_group), methods=["DELETE"]),
            Route(base + "/ServiceProviderConfig", e(self.service_provider_config), methods=["GET"]),
            Route(base + "/ResourceTypes", e(self.resource_types), methods=["GET"]),
            Route(base + "/ResourceTypes/{id}", e(self.resource_type), methods=["GET"]),
            Route(base + "/Schemas", e(self.schemas), methods=["GET"]),
            Route(base + "/Schemas/{id}", e(self.schema), methods=["GET"]),
        ]

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            directory = self.directories.get(request.path_params["directory"])
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            try:
                if directory is None:
                    raise ScimError(404, "directory not found")
                if scheme.lower() != "bearer" or token != directory.token:
                    raise ScimError(401, "invalid or missing bearer token")
                refusal, _ = self.limiter.check(directory.id, token, request.url.path)
                if refusal is not None:
                    raise ScimError(429, "too many requests")
                result = await handler(request, directory)
            except ScimError as error:
                return error.response()
            if result is None:
                return Response(status_code=204)
            status = 201 if request.method == "POST" else 200
            return JSONResponse(result, status_code=status, media_type="application/scim+json")

        return serve

    # Discovery

    async def service_provider_config(self, request: Request, directory: Directory) -> dict[str, Any]:
        return discovery.service_provider_config(base_of(request))

    async def resource_types(self, request: Request, directory: Directory) -> dict[str, Any]:
        return listed(discovery.resource_types(base_of(request)))

    async def resource_type(self, request: Request, directory: Directory) -> dict[str, Any]:
        by_id = {r["id"]: r for r in discovery.resource_types(base_of(request))}
        return find(by_id, request.path_params["id"], "ResourceType")

    async def schemas(self, request: Request, directory: Directory) -> dict[str, Any]:
        return listed(discovery.schemas(base_of(request)))

    async def schema(self, request: Request, directory: Directory) -> dict[str, Any]:
        by_id = {s["id"]: s for s in discovery.schemas(base_of(request))}
        return find(by_id, request.path_params["id"], "Schema")

    # Users

    async def list_users(self, request: Request, directory: Directory) -> dict[str, Any]:
        return listing(request, list(directory.users.values()), USER_FILTERS)

    async def create_user(self, request: Request, directory: Directory) -> dict[str, Any]:
        return directory.add_user(await resource(request))

    async def get_user(self, request: Request, directory: Directory) -> dict[str, Any]:
        return find(directory.users, request.path_params["id"], "User")

    async def replace_user(self, request: Request, directory: Directory) -> dict[str, Any]:
        user = find(directory.users, request.path_params["id"], "User")
        body = await resource(request)
        if not body.get("userName"):
            raise ScimError(400, "userName is required", "invalidValue")
        account = user[discovery.ATLASSIAN]["atlassianAccountId"]  # Atlassian's, not the caller's
        replaced = directory._user(
            user["id"], body, created=user["meta"]["created"], account=account
        )  # omitted attributes clear
        directory.users[user["id"]] = replaced
        return replaced

    async def patch_user(self, request: Request, directory: Directory) -> dict[str, Any]:
        user = find(directory.users, request.path_params["id"], "User")
        for op, path, value in operations(await resource(request)):
            if op not in ("replace", "add"):
                raise ScimError(400, f"unsupported op {op}", "invalidSyntax")
            changes = {path: value} if path else value
            if not isinstance(changes, dict):
                raise ScimError(400, "value must be an object when no path is given", "invalidValue")
            for name, new in changes.items():
                if name == "active" and not isinstance(new, bool):
                    raise ScimError(400, "active must be a boolean", "invalidValue")
                user[name] = new
        user["meta"]["lastModified"] = now_iso()
        return user

    async def delete_user(self, request: Request, directory: Directory) -> None:
        find(directory.users, request.path_params["id"], "User")
        del directory.users[request.path_params["id"]]

    # Groups

    async def list_groups(self, request: Request, directory: Directory) -> dict[str, Any]:
        return listing(request, list(directory.groups.values()), GROUP_FILTERS)

    async def create_group(self, request: Request, directory: Directory) -> dict[str, Any]:
        body = await resource(request)
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            raise ScimError(400, "displayName is required", "invalidValue")
        if any(g["displayName"] == name for g in directory.groups.values()):
            raise ScimError(409, f"Group {name} already exists", "uniqueness")
        group_id = str(uuid.uuid4())
        directory.groups[group_id] = {
            "schemas": [GROUP_SCHEMA],
            "id": group_id,
            "displayName": name,
            "members": list(body.get("members", [])),
            "meta": {"resourceType": "Group", "created": now_iso(), "lastModified": now_iso()},
        }
        return directory.groups[group_id]

    async def get_group(self, request: Request, directory: Directory) -> dict[str, Any]:
        return find(directory.groups, request.path_params["id"], "Group")

    async def patch_group(self, request: Request, directory: Directory) -> dict[str, Any]:
        group = find(directory.groups, request.path_params["id"], "Group")
        for op, path, value in operations(await resource(request)):
            if path != "members":
                raise ScimError(400, "only members can be patched", "invalidPath")
            ids = {m["value"] for m in value or []} if isinstance(value, list) else set()
            if op == "add":
                known = {m["value"] for m in group["members"]}
                group["members"] += [{"value": i} for i in sorted(ids - known)]
            elif op == "remove":
                group["members"] = [m for m in group["members"] if m["value"] not in ids] if ids else []
            elif op == "replace":
                group["members"] = [{"value": i} for i in sorted(ids)]
            else:
                raise ScimError(400, f"unsupported op {op}", "invalidSyntax")
        return group

    async def delete_group(self, request: Request, directory: Directory) -> None:
        find(directory.groups, request.path_params["id"], "Group")
        del directory.groups[request.path_params["id"]]


async def resource(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ScimError(400, "body is not JSON", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise ScimError(400, "body must be a JSON object", "invalidSyntax")
    return body


def operations(body: dict[str, Any]) -> list[tuple[str, str | None, Any]]:
    if PATCH_SCHEMA not in body.get("schemas", []):
        raise ScimError(400, f"a PATCH body needs the schema {PATCH_SCHEMA}", "invalidSyntax")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    return [(str(o.get("op", "")).lower(), o.get("path"), o.get("value")) for o in ops if isinstance(o, dict)]


def find(resources: dict[str, dict[str, Any]], resource_id: str, kind: str) -> dict[str, Any]:
    if resource_id not in resources:
        raise ScimError(404, f"{kind} {resource_id} not found")
    return resources[resource_id]


def base_of(request: Request) -> str:
    """The directory's base URL, as the request reached it."""
    return str(request.base_url).rstrip("/") + f"/scim/directory/{request.path_params['directory']}"


def listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list response holding every item (discovery lists are short)."""
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": 1,
        "itemsPerPage": len(items),
        "Resources": items,
    }


def listing(request: Request, items: list[dict[str, Any]], filters: dict[str, str]) -> dict[str, Any]:
    expression = request.query_params.get("filter")
    if expression:
        match = FILTER.match(expression)
        if match is None or match.group(1).lower() not in filters:
            raise ScimError(400, f"unsupported filter: {expression}", "invalidFilter")
        attribute, wanted = filters[match.group(1).lower()], match.group(2).replace('\\"', '"')
        items = [i for i in items if str(i.get(attribute) or "").lower() == wanted.lower()]
    try:
        start = max(1, int(request.query_params.get("startIndex", 1)))
        count = max(0, min(100, int(request.query_params.get("count", 100))))
    except ValueError:
        raise ScimError(400, "startIndex and count must be integers", "invalidValue") from None
    page = items[start - 1 : start - 1 + count]
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": len(items),
        "startIndex": start,
        "itemsPerPage": len(page),
        "Resources": page,
    }
