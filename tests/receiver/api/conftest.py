"""The membership API served by the receiver app, on each store of `tests.fixtures.store`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import SettingsFactory
from tests.fixtures.store import World
from trellis.wiring import receiver_app

MEMBERS = "/organizations/me/members"


def member(world: World, name: str) -> str:
    """The path of a person's membership in the API."""
    return f"{MEMBERS}/{world.people[name].member_id}"


@pytest.fixture
async def api(
    store_url: str, make_settings: SettingsFactory, world: World
) -> AsyncIterator[httpx.AsyncClient]:
    application: Starlette = receiver_app(make_settings(database_url=store_url))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://trellis.test") as client:
            yield client
