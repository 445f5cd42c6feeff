"""The emulator in-process, and a real HTTP receiver for its webhook deliveries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.app import EmulatorConfig, create_emulator
from emulator.deliveries import DeliveryPolicy
from tests.support import free_port

KEY, TOKEN, SECRET = "k-test", "t-test", "s-test"
AUTH = {"key": KEY, "token": TOKEN}


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackRecorder:
    """Records every delivery; answers with the statuses it is told to, then 200."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    head_status: int = 200
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def record(self, delivery: Delivery) -> None:
        async with self.arrived:
            self.deliveries.append(delivery)
            self.arrived.notify_all()

    async def wait_for(self, count: int, within: float = 10.0) -> list[Delivery]:
        async with asyncio.timeout(within), self.arrived:
            await self.arrived.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackRecorder]:
    port = free_port()
    recorder = CallbackRecorder(url=f"http://127.0.0.1:{port}/hook")

    async def hook(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=recorder.head_status)
        await recorder.record(Delivery(dict(request.headers), await request.body()))
        return Response(status_code=recorder.statuses.pop(0) if recorder.statuses else 200)

    app = Starlette(routes=[Route("/hook", hook, methods=["HEAD", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    yield recorder
    server.should_exit = True
    await task


EmulatorFactory = Callable[..., Any]


@pytest.fixture
def open_emulator() -> EmulatorFactory:
    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
        config = EmulatorConfig(
            key=KEY, token=TOKEN, secret=SECRET,
            delivery=DeliveryPolicy(timeout=2, retries=3, retry_base_delay=0.01, failures_to_deactivate=5),
        )  # fmt: skip
        for name, value in overrides.items():
            setattr(config, name, value)
        app = create_emulator(config)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://trello.test") as client:
                yield client, app

    return start


@pytest.fixture
async def trello(open_emulator: EmulatorFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with open_emulator() as (client, _):
        yield client


@pytest.fixture
async def emulator_app(open_emulator: EmulatorFactory) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    async with open_emulator() as pair:
        yield pair


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/_emulator/state")).json()


def member_id(snapshot: dict[str, Any], username: str) -> str:
    return next(m["id"] for m in snapshot["members"] if m["username"] == username)


def board_id(snapshot: dict[str, Any], name: str) -> str:
    return next(b["id"] for b in snapshot["boards"] if b["name"] == name)


@dataclass
class Served:
    """The emulator on a real port, for clients that make their own connections."""

    base: str
    app: Starlette


@pytest.fixture
def served_emulator() -> Iterator[Served]:
    """The emulator under uvicorn in a thread of its own, for synchronous clients (requests, httpx)."""
    config = EmulatorConfig(key=KEY, token=TOKEN, secret=SECRET)
    app = create_emulator(config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield Served(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(10)
