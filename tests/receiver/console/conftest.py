"""The console served by the receiver app, on each store of `tests.fixtures.store`, through httpx: the
HTTP contract (sessions, CSRF, refusals). Its flows in a real browser are in `tests/browser/`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import SettingsFactory
from tests.fixtures.store import Person, World
from trellis.settings import Settings
from trellis.wiring import receiver_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def console_client(settings: Settings, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application: Starlette = receiver_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@pytest.fixture
async def console(
    store_url: str, make_settings: SettingsFactory, world: World
) -> AsyncIterator[httpx.AsyncClient]:
    """The console behind an HTTPS public URL (the tests' callback URL), reached over HTTPS."""
    async with console_client(make_settings(database_url=store_url), "https://trellis.test") as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


async def sign_in(console: httpx.AsyncClient, person: Person) -> httpx.Response:
    """A fresh sign-in (whoever was signed in before)."""
    console.cookies.clear()
    form = await console.get("/console/sign-in")
    return await console.post("/console/sign-in", data={"csrf": csrf_of(form), "token": person.token})


async def signed_in_csrf(console: httpx.AsyncClient, person: Person) -> str:
    """Sign `person` in; the CSRF token of their session."""
    answer = await sign_in(console, person)
    assert answer.status_code == 303, answer.text
    return csrf_of(await console.get("/console/members"))
