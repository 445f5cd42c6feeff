"""`create_emulator(config)`: the Trello and SCIM stand-in as one Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator import fixture
from emulator.admin import AdminApi
from emulator.deliveries import DeliveryPolicy, Dispatcher, Faults
from emulator.limits import Limits, RateLimiter
from emulator.scim import Directory, ScimApi
from emulator.trello import Credentials, TrelloApi
from emulator.world import World


@dataclass
class EmulatorConfig:
    # The credentials the emulator accepts and signs with: stand-ins, not secrets.
    key: str = "emulator-key"
    token: str = "emulator-token"  # noqa: S105
    secret: str = "emulator-secret"  # noqa: S105
    scim_directory: str = "emulator-directory"
    scim_token: str = "emulator-scim-token"  # noqa: S105
    limits: Limits = field(default_factory=Limits)
    # Atlassian publishes no SCIM limit; this one is generous and can be lowered for tests.
    scim_limits: Limits = field(
        default_factory=lambda: Limits(key_max=1000, token_max=1000, key_window=60, token_window=60)
    )
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    signature_encoding: str = "utf-8"  # how deliveries are signed: "utf-8" (Trello today) or "binary"
    fixture: dict[str, Any] | None = None  # None: the built-in sample workspace


class TrailingSlash:
    """Serves a REST path with a trailing slash as the path without it, as Trello does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/1/") and len(path) > 3 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/"), "raw_path": path.rstrip("/").encode()}
        await self.app(scope, receive, send)


def create_emulator(config: EmulatorConfig) -> Starlette:
    world = World()
    scim_users = fixture.load(
        world, config.fixture if config.fixture is not None else fixture.sample(), config.token
    )
    directory = Directory(config.scim_directory, config.scim_token, account_of=world.account_of)
    for user in scim_users:
        directory.add_user(user)
    faults = Faults()
    limiter = RateLimiter(config.limits)
    dispatcher = Dispatcher(world, config.secret, faults, config.delivery, config.signature_encoding)

    trello = TrelloApi(world, Credentials(config.key, config.token), limiter, faults, dispatcher)
    scim = ScimApi({directory.id: directory}, RateLimiter(config.scim_limits))
    admin = AdminApi(world, limiter, faults, dispatcher)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await dispatcher.aclose()

    app = Starlette(routes=trello.routes() + scim.routes() + admin.routes(), lifespan=lifespan)
    # Trello serves `/1/webhooks/{id}/` as `/1/webhooks/{id}` (public clients call both), never a redirect.
    app.router.redirect_slashes = False
    app.add_middleware(TrailingSlash)
    app.state.world = world
    app.state.limiter = limiter
    app.state.faults = faults
    app.state.dispatcher = dispatcher
    app.state.directory = directory
    return app
