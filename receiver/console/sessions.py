"""The console's session: one signed cookie, HttpOnly, SameSite=Strict, Secure behind HTTPS, that ends a
fixed time after sign-in (it is signed once, at sign-in, and its signature carries the time).

It holds the id of the API token the operator signed in with, never the token: revoking the token ends
the session at the next request. It also holds the CSRF token every form must carry; before sign-in it
holds only that, for the sign-in form itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "trellis_console"
PATH = "/console"


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    token_id: int | None = None  # None: not signed in yet

    @property
    def signed_in(self) -> bool:
        return self.token_id is not None


def anonymous() -> ConsoleSession:
    return ConsoleSession(csrf=secrets.token_urlsafe(32))


class Sessions:
    def __init__(self, secret: str, lifetime: timedelta, *, always_secure: bool) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="trellis-console-session")
        self.lifetime = lifetime
        self.always_secure = always_secure

    def read(self, request: Request) -> ConsoleSession | None:
        """The request's session; None when it has none, or one that is forged, tampered with or over."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self.serializer.loads(raw, max_age=int(self.lifetime.total_seconds()))
            return ConsoleSession(csrf=str(data["csrf"]), token_id=data.get("token"))
        except (BadSignature, KeyError, TypeError):
            return None

    def write(self, response: Response, request: Request, session: ConsoleSession) -> None:
        data: dict[str, object] = {"csrf": session.csrf}
        if session.token_id is not None:
            data["token"] = session.token_id
        response.set_cookie(
            COOKIE,
            self.serializer.dumps(data),
            max_age=int(self.lifetime.total_seconds()),
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=self.always_secure or request.url.scheme == "https",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
