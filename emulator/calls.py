"""Reading a request as Trello does: credentials and parameters from wherever a client put them.

Key and token may come in the `Authorization: OAuth oauth_consumer_key="…", oauth_token="…"` header, the
query string, a form body or a JSON body; every other parameter from the query string and the body
alike (the body wins). Errors are Trello's own words, mostly as plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from emulator.world import Member, TrelloError

OAUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Credentials:
    key: str
    token: str


@dataclass
class Call:
    """One authenticated request: who makes it, and its parameters from query and body alike."""

    request: Request
    member: Member
    token: str
    params: dict[str, Any]

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text not in ("true", "false"):
            raise TrelloError(400, f"invalid value for {name}")
        return text == "true"

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name, default)
        return None if value is None else str(value)


async def read_request(request: Request) -> tuple[str | None, str | None, dict[str, Any]]:
    """The key, the token and every other parameter of a request."""
    params: dict[str, Any] = dict(request.query_params)
    params.update(await body_params(request))
    key, token = params.pop("key", None), params.pop("token", None)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("oauth "):
        fields = dict(OAUTH_FIELD.findall(header))
        key, token = fields.get("oauth_consumer_key", key), fields.get("oauth_token", token)
    return (None if key is None else str(key)), (None if token is None else str(token)), params


async def body_params(request: Request) -> dict[str, Any]:
    if request.method not in ("POST", "PUT", "DELETE"):
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise TrelloError(400, "invalid json") from None
        return data if isinstance(data, dict) else {}
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return {}
